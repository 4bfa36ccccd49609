//! Arbitrary bytes as every request message the hub decodes; what decodes is checked.
#![no_main]
use std::sync::LazyLock;

use cbm_hub::{domain::catalogue::Catalogue, fuzzing};
use libfuzzer_sys::fuzz_target;

static CATALOGUE: LazyLock<Catalogue> = LazyLock::new(Catalogue::builtin);

fuzz_target!(|data: &[u8]| {
    fuzzing::decode_all(&fuzzing::sample_registry(), &CATALOGUE, data);
});
