//! Files and directories only the service's own user may read. What the service writes to disk
//! holds secrets (the database, keys, delivered verification codes in `.eml` files), and the
//! process umask is whatever the environment left: so modes are set explicitly after creation
//! (0700 directories, 0600 files) instead of trusting the umask.
//!
//! Only what the service creates is made private. A directory that already exists may be
//! shared on purpose (a mail pickup directory, `--data-dir /tmp`), so it is left alone and a
//! warning says when others can read it.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

pub const PRIVATE_DIR: u32 = 0o700;
pub const PRIVATE_FILE: u32 = 0o600;

/// Creates `path` and any missing parents, each one this call creates with mode 0700.
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    let mut missing: Vec<PathBuf> = Vec::new();
    let mut at = Some(path);
    while let Some(p) = at.filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
        missing.push(p.to_path_buf());
        at = p.parent();
    }
    for dir in missing.iter().rev() {
        match std::fs::create_dir(dir) {
            Ok(()) => set_mode(dir, PRIVATE_DIR)?,
            // Another process (a replica sharing the directory) made it meanwhile.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    if missing.is_empty() {
        warn_if_shared(path);
    }
    Ok(())
}

/// Creates a new file (failing if it exists) that only the owner may read or write.
pub fn create_new_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, PRIVATE_FILE);
    let file = options.open(path)?;
    // The open mode was reduced by the umask; this sets it exactly.
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(PRIVATE_FILE))?;
    Ok(file)
}

/// Makes an existing file of the service's own (its database) private, whatever its mode was.
pub fn restrict_file(path: &Path) -> io::Result<()> {
    set_mode(path, PRIVATE_FILE)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

/// Logs a warning when a directory the service writes secrets into is open to other users.
pub fn warn_if_shared(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{mode:o}"),
                    "directory is open to other users; the service keeps secrets here (chmod 700 it)"
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(all(test, unix))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn created_directories_and_files_are_private_and_existing_ones_left_alone() {
        let root = tempfile::tempdir().unwrap();
        let shared = root.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();

        let deep = shared.join("a").join("b");
        create_dir_all(&deep).unwrap();
        assert_eq!(mode(&shared.join("a")), 0o700);
        assert_eq!(mode(&deep), 0o700);
        assert_eq!(mode(&shared), 0o755, "not ours to change");
        create_dir_all(&deep).unwrap();

        let f = deep.join("secret");
        create_new_file(&f).unwrap().write_all(b"x").unwrap();
        assert_eq!(mode(&f), 0o600);
        assert!(create_new_file(&f).is_err(), "never reuses a file");

        let db = deep.join("db");
        std::fs::write(&db, b"").unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        restrict_file(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
    }
}
