//! Compiles the .proto files with protox (no protoc needed) and generates
//! prost messages and tonic clients and servers.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/senatus/v1/senatus.proto",
        "proto/senatus/v1/errors.proto",
    ];
    for p in &protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .codec_path("crate::codec::StrictCodec")
        // Ordered, so an encoded ErrorInfo is the same bytes every time.
        .btree_map(".senatus.v1.ErrorInfo.metadata")
        .compile_fds(fds)?;
    Ok(())
}
