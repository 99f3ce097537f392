//! `session`: see `echowire_codec::fuzzing::session` (the same harness replays in `cargo test`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| echowire_codec::fuzzing::session(data));
