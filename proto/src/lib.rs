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
