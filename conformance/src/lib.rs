//! The Echowire conformance runner. **Not built yet** (issue 4): this crate is an empty placeholder.
#![forbid(unsafe_code)]
