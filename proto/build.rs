//! Compiles proto/strom/v1/*.proto with protox (pure Rust): no system protoc needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["strom/v1/cluster.proto", "strom/v1/control.proto"];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let descriptors = protox::compile(files, ["."])?;
    tonic_prost_build::configure()
        // Relayed updates fan out to every worker: share the buffer instead of copying it.
        .bytes(".strom.v1.Update.payload")
        .compile_fds(descriptors)?;
    Ok(())
}
