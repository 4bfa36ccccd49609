//! Arbitrary bytes as submission content, validated: no panic, every error names a field.
#![no_main]
use std::sync::LazyLock;

use cbm_hub::{domain::catalogue::Catalogue, fuzzing, pb};
use libfuzzer_sys::fuzz_target;
use prost::Message;

static CATALOGUE: LazyLock<Catalogue> = LazyLock::new(Catalogue::builtin);

fuzz_target!(|data: &[u8]| {
    if let Ok(content) = pb::SubmissionContent::decode(data) {
        fuzzing::validate_content(&fuzzing::sample_registry(), &CATALOGUE, &content);
    }
});
