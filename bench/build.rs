//! Compiles etcd's KV service (client only) with protox (no protoc
//! needed): the benchmark's baseline. Generated here rather than in
//! senatus-proto so that only this binary carries etcd's definitions.
//! Stock prost codec, since senatus-proto's strict codec's status mapping
//! is about senatus servers.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let etcd = ["proto/etcd/kv.proto"];
    for p in &etcd {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(etcd, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
