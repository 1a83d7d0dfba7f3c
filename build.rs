use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A fresh machine has no protoc: use the vendored binary unless the user points PROTOC elsewhere.
    if std::env::var_os("PROTOC").is_none() {
        let protoc = protoc_bin_vendored::protoc_bin_path()?;
        // SAFETY: build scripts are single-threaded; nothing else reads the environment concurrently.
        unsafe { std::env::set_var("PROTOC", protoc) };
    }
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let files = [
        "proto/entitlement/v1/types.proto",
        "proto/entitlement/v1/errors.proto",
        "proto/entitlement/v1/access.proto",
        "proto/entitlement/v1/entitlement.proto",
        "proto/entitlement/v1/account_admin.proto",
    ];
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("entitlement_descriptor.bin"))
        .compile_protos(
            &files.map(PathBuf::from),
            &[PathBuf::from("proto"), protoc_bin_vendored::include_path()?],
        )?;
    println!("cargo:rerun-if-changed=proto");
    // A PostgreSQL test skipped on purpose must show as "ignored", never as "ok": libtest can
    // only mark a test ignored at compile time, so the opt-out becomes a cfg the tests read.
    println!("cargo::rustc-check-cfg=cfg(skip_postgres)");
    println!("cargo:rerun-if-env-changed=ENTITLEMENTS_SKIP_POSTGRES");
    if std::env::var("ENTITLEMENTS_SKIP_POSTGRES").is_ok_and(|v| v == "1") {
        println!("cargo:rustc-cfg=skip_postgres");
        println!(
            "cargo:warning=ENTITLEMENTS_SKIP_POSTGRES=1: PostgreSQL tests are compiled as ignored and will NOT run"
        );
    }
    Ok(())
}
