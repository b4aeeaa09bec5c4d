//! Generates the tunnel's gRPC code from the top-level `proto/tunnel.proto`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "../../proto/tunnel.proto";
    println!("cargo:rerun-if-changed={proto}");
    // No transport helpers: their `TunnelClient::connect(endpoint)` constructor would clash
    // with the `Connect` rpc's method; callers build the channel themselves.
    tonic_prost_build::configure()
        .build_transport(false)
        .bytes(".skiff.tunnel.v1.Data.data")
        .compile_protos(&[proto], &["../../proto"])?;
    Ok(())
}
