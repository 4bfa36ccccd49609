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
    tonic_prost_build::configure()
        // Submission files (JSON/YAML) and `--json` output are the proto messages themselves:
        // serde keeps one model for the wire, the CLI and the files. Unknown fields are refused
        // so that a typo in a submission file is an error, not silently dropped data.
        .message_attribute(
            ".cbm.v1",
            "#[derive(serde::Serialize, serde::Deserialize)] #[serde(default, deny_unknown_fields)]",
        )
        .enum_attribute(
            ".cbm.v1",
            "#[derive(serde::Serialize, serde::Deserialize)] #[serde(rename_all = \"snake_case\")]",
        )
        .field_attribute(
            ".cbm.v1.Attachment.content",
            "#[serde(with = \"crate::pb::base64_bytes\")]",
        )
        .field_attribute(
            ".cbm.v1.AuditEntry.chain_hash",
            "#[serde(with = \"crate::pb::base64_bytes\")]",
        )
        .field_attribute(
            ".cbm.v1.Checkpoint.signature",
            "#[serde(with = \"crate::pb::base64_bytes\")]",
        )
        .field_attribute(
            ".cbm.v1.ExportItem.public_key",
            "#[serde(with = \"crate::pb::base64_bytes\")]",
        )
        // Feed events are encoded once and shared by every subscriber: the stream's message type
        // is our own, which writes pre-encoded bytes on the server and decodes normally on
        // clients (see src/feed/wire.rs). The wire format is the FeedEvent of feed.proto.
        .extern_path(".cbm.v1.FeedEvent", "crate::feed::wire::FeedEvent")
        // Byte fields as `bytes::Bytes`: one encoded value can be shared without copies.
        .bytes(".")
        .compile_fds(fds)?;
    Ok(())
}
