//! ERROR (0x0A, either direction): a request or the connection failed (spec §4.8, §7).
//!
//! The header's request ID is the request the error answers, 0 for the connection.
//! Version 2 adds `retry_after_ms` (spec §5.2); a version-1 body has no such field and decodes
//! with `retry_after_ms = 0`, and encoding in version 1 leaves it out.

use std::borrow::Cow;

use bytes::BufMut;
use serde::{Deserialize, Serialize};

use super::Body;
use crate::body;
use crate::error::{BodyError, ErrorCode};

/// | field            | type   | versions | meaning                                       |
/// |------------------|--------|----------|-----------------------------------------------|
/// | `code`           | u16    | 1, 2     | the error code (§7.1)                          |
/// | `message`        | string | 1, 2     | human-readable detail, may be empty            |
/// | `retry_after_ms` | u32    | 2        | BUSY/SHUTTING_DOWN: when to retry; 0: no hint  |
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Error<'a> {
    /// Error code.
    pub code: ErrorCode,
    /// Detail text.
    #[serde(borrow)]
    pub message: Cow<'a, str>,
    /// Retry hint in milliseconds (version 2; 0 in version 1).
    pub retry_after_ms: u32,
}

#[derive(Serialize, Deserialize)]
struct ErrorV1<'a> {
    code: ErrorCode,
    #[serde(borrow)]
    message: Cow<'a, str>,
}

impl<'a> Body<'a> for Error<'a> {
    type Static = Error<'static>;

    fn into_static(self) -> Error<'static> {
        Error {
            code: self.code,
            message: super::cow_owned(self.message),
            retry_after_ms: self.retry_after_ms,
        }
    }

    fn decode(version: u8, input: &'a [u8]) -> Result<Self, BodyError> {
        if version >= 2 {
            return body::from_bytes(input);
        }
        let v1: ErrorV1<'a> = body::from_bytes(input)?;
        Ok(Error {
            code: v1.code,
            message: v1.message,
            retry_after_ms: 0,
        })
    }

    fn body_len(&self, version: u8) -> Result<usize, BodyError> {
        let v2 = body::encoded_len(self)?;
        Ok(if version >= 2 { v2 } else { v2 - 4 })
    }

    fn encode_body<B: BufMut>(&self, version: u8, dst: &mut B) -> Result<(), BodyError> {
        if version >= 2 {
            return body::to_buf(self, dst);
        }
        body::to_buf(
            &ErrorV1 {
                code: self.code,
                message: Cow::Borrowed(&self.message),
            },
            dst,
        )
    }
}
