//! ERROR (0x0A, either direction): a request or the connection failed (spec §4.8, §7).
//!
//! The header's request ID is the request the error answers, 0 for the connection.
//! Version 2 adds `retry_after_ms` (spec §5.2); a version-1 body has no such field and decodes
//! with `retry_after_ms = 0`, and encoding in version 1 leaves it out.

use bytes::{BufMut, Bytes};
use serde::{Deserialize, Serialize};

use super::octets::{FromOctets, Str};
use crate::body;
use crate::error::{BodyError, ErrorCode};

/// | field            | type   | versions | meaning                                       |
/// |------------------|--------|----------|-----------------------------------------------|
/// | `code`           | u16    | 1, 2     | the error code (§7.1)                          |
/// | `message`        | string | 1, 2     | human-readable detail, may be empty            |
/// | `retry_after_ms` | u32    | 2        | BUSY/SHUTTING_DOWN: when to retry; 0: no hint  |
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "B: FromOctets<'de>", serialize = "B: AsRef<[u8]>"))]
pub struct Error<B = Bytes> {
    /// Error code.
    pub code: ErrorCode,
    /// Detail text.
    pub message: Str<B>,
    /// Retry hint in milliseconds (version 2; 0 in version 1).
    pub retry_after_ms: u32,
}

/// The version-1 layout: no `retry_after_ms`.
#[derive(Serialize, Deserialize)]
#[serde(bound(deserialize = "B: FromOctets<'de>", serialize = "B: AsRef<[u8]>"))]
struct ErrorV1<B> {
    code: ErrorCode,
    message: Str<B>,
}

super::octets_map!(Error {
    code,
    message: Str,
    retry_after_ms
});

impl Error<Bytes> {
    /// An ERROR with `code` and a detail text, no retry hint.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: Str::from(message.into()),
            retry_after_ms: 0,
        }
    }
}

impl<B: AsRef<[u8]>> super::Body for Error<B> {
    fn body_len(&self, version: u8) -> Result<usize, BodyError> {
        let v2 = body::encoded_len(self)?;
        Ok(if version >= 2 { v2 } else { v2 - 4 })
    }

    fn encode_body<W: BufMut>(&self, version: u8, dst: &mut W) -> Result<(), BodyError> {
        if version >= 2 {
            return body::to_buf(self, dst);
        }
        body::to_buf(
            &ErrorV1 {
                code: self.code,
                message: Str::<&[u8]>::from(self.message.as_str()),
            },
            dst,
        )
    }
}

impl<'a> super::DecodeBody<'a> for Error<&'a [u8]> {
    fn decode(version: u8, input: &'a [u8]) -> Result<Self, BodyError> {
        if version >= 2 {
            return body::from_bytes(input);
        }
        let v1: ErrorV1<&'a [u8]> = body::from_bytes(input)?;
        Ok(Error {
            code: v1.code,
            message: v1.message,
            retry_after_ms: 0,
        })
    }
}
