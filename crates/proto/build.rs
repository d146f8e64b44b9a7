//! gRPC codegen without a system `protoc`: protox (pure Rust) parses the
//! `.proto` files into a descriptor set, tonic-prost-build generates the code,
//! and the descriptor set is kept for gRPC reflection.
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest.join("../../proto");
    let files: Vec<PathBuf> = ["common", "auth", "billing", "router"]
        .iter()
        .map(|svc| root.join(format!("oneflow/{svc}/v1/{svc}.proto")))
        .collect();
    println!("cargo:rerun-if-changed={}", root.display());
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let fds = protox::compile(&files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("oneflow_descriptor.bin"), prost::Message::encode_to_vec(&fds))?;
    let client = std::env::var_os("CARGO_FEATURE_CLIENT").is_some();
    let server = std::env::var_os("CARGO_FEATURE_SERVER").is_some();
    tonic_prost_build::configure()
        .build_client(client)
        .build_server(server)
        .compile_fds(fds)?;
    Ok(())
}
