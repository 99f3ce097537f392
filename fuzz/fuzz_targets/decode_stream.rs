//! `decode_stream`: see `echowire_codec::fuzzing::decode_stream` (the same harness replays in `cargo test`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| echowire_codec::fuzzing::decode_stream(data));
