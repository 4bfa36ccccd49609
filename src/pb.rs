//! Generated protobuf and gRPC types of the `cbm.v1` package, plus the serde helpers the
//! generated code refers to.
#![allow(clippy::all, missing_docs)]

tonic::include_proto!("cbm.v1");

/// The encoded file descriptor set of `proto/`, served through gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("cbm_descriptor");

/// Attachment content as standard base64 in JSON and YAML files instead of an array of numbers.
pub mod base64_bytes {
    use base64::{Engine, engine::general_purpose::STANDARD};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &bytes::Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<bytes::Bytes, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD
            .decode(text.trim())
            .map(bytes::Bytes::from)
            .map_err(|e| serde::de::Error::custom(format!("attachment content is not base64: {e}")))
    }
}
