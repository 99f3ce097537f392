//! `body_serde`: see `echowire_codec::fuzzing::body_serde` (the same harness replays in `cargo test`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| echowire_codec::fuzzing::body_serde(data));
