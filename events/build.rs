//! With the `grpc` feature: compiles `proto/eventpulse/v1/events.proto` into
//! the EventService messages, client and server (tonic + prost), and saves
//! the encoded descriptor set that the server's reflection service answers
//! with. protox parses the .proto in Rust, so no `protoc` is needed.

fn main() {
    #[cfg(feature = "grpc")]
    if let Err(e) = grpc::compile() {
        panic!("compiling proto/eventpulse/v1/events.proto: {e}");
    }
}

#[cfg(feature = "grpc")]
mod grpc {
    use std::error::Error;
    use std::path::PathBuf;

    use prost::Message as _;

    const PROTO_ROOT: &str = "../proto";
    const PROTO: &str = "eventpulse/v1/events.proto";

    pub fn compile() -> Result<(), Box<dyn Error>> {
        println!("cargo:rerun-if-changed={PROTO_ROOT}");
        let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
        // Imports included, so reflection can describe Struct and Timestamp.
        let descriptors = protox::compile([PROTO], [PROTO_ROOT])?;
        std::fs::write(
            out_dir.join("eventpulse_v1_descriptor.bin"),
            descriptors.encode_to_vec(),
        )?;
        tonic_prost_build::configure()
            .build_server(true)
            .build_client(true)
            .compile_fds(descriptors)?;
        Ok(())
    }
}
