//! GOODBYE (0x0B, either direction, request ID 0): graceful close (spec §4.9).
//!
//! The sender will start no new requests (client) or accept none (server); every request already
//! received is still answered; then the connection closes.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::Body;
use crate::error::ErrorCode;

/// | field     | type   | meaning                                               |
/// |-----------|--------|-------------------------------------------------------|
/// | `code`    | u16    | why: NO_ERROR, SHUTTING_DOWN, IDLE_TIMEOUT, …          |
/// | `message` | string | human-readable detail, may be empty                    |
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Goodbye<'a> {
    /// Reason code.
    pub code: ErrorCode,
    /// Detail text.
    #[serde(borrow)]
    pub message: Cow<'a, str>,
}

impl<'a> Body<'a> for Goodbye<'a> {
    type Static = Goodbye<'static>;

    fn into_static(self) -> Goodbye<'static> {
        Goodbye {
            code: self.code,
            message: super::cow_owned(self.message),
        }
    }
}
