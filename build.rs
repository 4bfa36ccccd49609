//! Compiles `proto/` with `protox` (a pure-Rust protobuf compiler), so a fresh machine needs
//! nothing but cargo: no system `protoc`.
use std::{env, path::PathBuf};

const PROTOS: &[&str] = &[
    "proto/cbm/v1/submission.proto",
    "proto/cbm/v1/hub.proto",
    "proto/cbm/v1/admin.proto",
    "proto/cbm/v1/feed.proto",
    "proto/cbm/v1/audit.proto",
    "proto/cbm/v1/directory.proto",
    "proto/cbm/v1/catalogue.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    for p in PROTOS {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(PROTOS, ["proto"])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    // The encoded descriptor set feeds gRPC server reflection.
    std::fs::write(
        out.join("cbm_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    // Submission files (JSON/YAML), `--json` output and `get --content` are the proto messages in
    // the canonical proto3 JSON mapping, so that files written by any protobuf library
    // (Python's MessageToJson, Go's protojson) are read, and what the CLI writes is read by
    // them. pbjson-build generates that mapping from the same descriptors: oneof members
    // directly in their message, 64-bit integers as strings, bytes as base64, defaults left
    // out; both proto and lowerCamelCase names read, unknown fields refused (a typo is an
    // error, not silently dropped data). Output keeps the proto field names, as YAML files
    // and the README write them (`preserving_proto_field_name` in Python, `UseProtoNames` in
    // Go). FeedEvent is our own type (below); its mapping is written by hand beside it.
    pbjson_build::Builder::new()
        .register_descriptors(&prost::Message::encode_to_vec(&fds))?
        .preserve_proto_field_names()
        .exclude([".cbm.v1.FeedEvent"])
        .out_dir(&out)
        .build(&[".cbm.v1"])?;
    tonic_prost_build::configure()
        // Feed events are encoded once and shared by every subscriber: the stream's message type
        // is our own, which writes pre-encoded bytes on the server and decodes normally on
        // clients (see src/feed/wire.rs). The wire format is the FeedEvent of feed.proto.
        .extern_path(".cbm.v1.FeedEvent", "crate::feed::wire::FeedEvent")
        // Byte fields as `bytes::Bytes`: one encoded value can be shared without copies.
        .bytes(".")
        .compile_fds(fds)?;
    Ok(())
}
