//! GOODBYE (0x0B, either direction, request ID 0): graceful close (spec §4.9).
//!
//! The sender will start no new requests (client) or accept none (server); every request already
//! received is still answered; then the connection closes.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::octets::{FromOctets, Str};
use crate::error::ErrorCode;

/// | field     | type   | meaning                                               |
/// |-----------|--------|-------------------------------------------------------|
/// | `code`    | u16    | why: NO_ERROR, SHUTTING_DOWN, IDLE_TIMEOUT, …          |
/// | `message` | string | human-readable detail, may be empty                    |
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "B: FromOctets<'de>", serialize = "B: AsRef<[u8]>"))]
pub struct Goodbye<B = Bytes> {
    /// Reason code.
    pub code: ErrorCode,
    /// Detail text.
    pub message: Str<B>,
}

super::octets_body!(Goodbye { code, message: Str });
