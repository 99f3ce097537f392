//! The Echowire reference server. **Not built yet** (issue 3): this crate is an empty placeholder.
#![forbid(unsafe_code)]
