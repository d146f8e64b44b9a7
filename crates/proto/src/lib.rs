//! The gRPC contracts between OneFlow's services, generated from the `.proto`
//! files under `proto/` (the single source of truth). The `client` and `server`
//! features select which stubs are generated.
#![allow(clippy::all, missing_docs)]

/// `oneflow.common.v1`: usage, operations, error details, key limits.
pub mod common {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("oneflow.common.v1");
    }
}

/// `oneflow.auth.v1`: credential validation, users, keys, audit.
pub mod auth {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("oneflow.auth.v1");
    }
}

/// `oneflow.billing.v1`: authorize/settle, ledger, prices, usage.
pub mod billing {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("oneflow.billing.v1");
    }
}

/// `oneflow.router.v1`: chat, embeddings, audio, models, provider health.
pub mod router {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("oneflow.router.v1");
    }
}

/// Encoded `FileDescriptorSet` of every OneFlow proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/oneflow_descriptor.bin"));

mod status;
pub use status::{error_info, status_with_info};
