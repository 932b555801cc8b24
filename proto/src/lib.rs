//! senatus wire definitions: generated prost messages and tonic services.
//!
//! Only generated code, the codec and the error reasons live here; every
//! field is validated by the node's conversions into domain types.

pub mod codec;
pub mod reason;

#[allow(missing_docs, clippy::all, clippy::pedantic, unreachable_pub)]
pub mod v1 {
    tonic::include_proto!("senatus.v1");
}

/// A client-only subset of etcd's v3 `KV` service (`etcdserverpb.KV/Put`),
/// used by the benchmark to drive an etcd cluster as a baseline.
#[allow(missing_docs, clippy::all, clippy::pedantic, unreachable_pub)]
pub mod etcd {
    tonic::include_proto!("etcdserverpb");
}
