//! Code generated from `proto/entitlement/v1` (see build.rs).

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    tonic::include_proto!("entitlement.v1");
}

/// For server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("entitlement_descriptor");
