//! Errors, layered (spec §7).
//!
//! * [`BodyError`]: what the body decoder found wrong, with the body offset and field.
//! * [`DecodeError`]: what is wrong with a frame as received — frame layer, header, or body —
//!   with the stream offset. `Clone + PartialEq`, so tests compare errors directly.
//! * [`ErrorCode`]: the wire error code. [`DecodeError::code`] is the *one* place that maps a
//!   decode failure to a wire code; [`DecodeError::is_connection_error`] is the one place that
//!   decides whether a failure ends the connection or only rejects one frame.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::frame::MessageType;

/// A wire error code (spec §7.1). Codes `0x8000..=0xFFFF` belong to applications.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ErrorCode(pub u16);

/// The scope of an error code (spec §7.1): what an ERROR or GOODBYE with it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// "C": a connection error — ERROR with request ID 0, then the sender closes (§3.10).
    Connection,
    /// "R": a request error — ERROR with the frame's ID; the connection continues.
    Request,
    /// "G": a GOODBYE reason.
    Goodbye,
    /// "D": end of input inside a frame — ERROR with ID 0; the requests received before it are
    /// still answered and the connection drains (§3.9).
    Truncated,
}

impl Scope {
    /// Its name in `spec/registry.json`.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Connection => "connection",
            Scope::Request => "request",
            Scope::Goodbye => "goodbye",
            Scope::Truncated => "truncated",
        }
    }
}

/// The error-code table (spec §7.1): one row per code, `NAME = CODE [SCOPES],` with the scope
/// letters of the spec (C, R, G, D). Checked against `spec/registry.json` by the codec's tests;
/// adding a code is one row here and one in the registry.
macro_rules! error_codes {
    ($( $(#[$doc:meta])* $name:ident = $value:literal [$($scope:ident)+], )*) => {
        impl ErrorCode {
            $( $(#[$doc])* pub const $name: ErrorCode = ErrorCode($value); )*

            /// Every code the spec defines, in registry order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name),*];

            /// The registry name (`"FRAME_TOO_LARGE"`), or `None` for codes the spec does not define.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some(stringify!($name)), )*
                    _ => None,
                }
            }

            /// The scopes the spec gives the code (§7.1); empty for codes it does not define.
            pub fn scopes(self) -> &'static [Scope] {
                match self.0 {
                    $( $value => &[$(scope_letter!($scope)),+], )*
                    _ => &[],
                }
            }

            /// Looks a registry name up, or parses `"0x8001"`.
            pub fn from_name(name: &str) -> Option<Self> {
                if let Some(hex) = name.strip_prefix("0x") {
                    return u16::from_str_radix(hex, 16).ok().map(ErrorCode);
                }
                match name {
                    $( stringify!($name) => Some(ErrorCode::$name), )*
                    _ => None,
                }
            }
        }
    };
}

macro_rules! scope_letter {
    (C) => {
        Scope::Connection
    };
    (R) => {
        Scope::Request
    };
    (G) => {
        Scope::Goodbye
    };
    (D) => {
        Scope::Truncated
    };
}

error_codes! {
    /// Not an error: the reason in a normal GOODBYE.
    NO_ERROR = 0x0000 [G],
    /// A violation with no more specific code.
    PROTOCOL_ERROR = 0x0001 [C],
    /// The first bytes of the connection are not the preface (§3.1).
    BAD_PREFACE = 0x0002 [C],
    /// No protocol version in common (§3.3).
    UNSUPPORTED_VERSION = 0x0003 [C],
    /// A frame other than HELLO before the handshake completed (§3.2).
    HANDSHAKE_REQUIRED = 0x0004 [C],
    /// The handshake did not complete in time (§8.3).
    HANDSHAKE_TIMEOUT = 0x0005 [C],
    /// No complete frame for the idle timeout (§8.3); the reason in a GOODBYE.
    IDLE_TIMEOUT = 0x0006 [G],
    /// `Length` below 8 (§2.2).
    FRAME_TOO_SHORT = 0x0007 [C],
    /// `Length` above the receiver's announced limit (§2.2).
    FRAME_TOO_LARGE = 0x0008 [C],
    /// The peer closed its write side in the middle of a frame (§3.9).
    TRUNCATED_FRAME = 0x0009 [D],
    /// Header version differs from the negotiated one (§5.4).
    VERSION_MISMATCH = 0x000A [C],
    /// A type code this version does not define (§5.4).
    UNKNOWN_TYPE = 0x000B [R],
    /// A type the receiver's role never receives, e.g. WELCOME sent to a server (§4.1).
    UNEXPECTED_MESSAGE = 0x000C [R],
    /// Undefined flag bits set, or RKYV where not allowed (§2.4).
    INVALID_FLAGS = 0x000D [R],
    /// The body does not decode as its type's layout (§6).
    MALFORMED_BODY = 0x000E [R],
    /// Bytes left after a complete body (§5.4).
    TRAILING_BYTES = 0x000F [R],
    /// A string field is not UTF-8 (§6.3).
    INVALID_UTF8 = 0x0010 [R],
    /// A request with ID 0, or a connection-level frame with a non-zero ID (§2.5).
    INVALID_REQUEST_ID = 0x0011 [R],
    /// A request reuses the ID of one still outstanding (§2.5).
    DUPLICATE_REQUEST_ID = 0x0012 [C],
    /// More outstanding requests than WELCOME's `max_outstanding` (§8.4).
    TOO_MANY_OUTSTANDING = 0x0013 [R],
    /// A field value outside its allowed range, e.g. COMPUTE cost 0 (§4.6).
    INVALID_ARGUMENT = 0x0014 [R],
    /// The response would exceed the client's `max_frame_size` (§3.4).
    RESPONSE_TOO_LARGE = 0x0015 [R],
    /// The server is overloaded; retry later (§8.4).
    BUSY = 0x0016 [R],
    /// The request was cancelled before it ran (§3.7).
    CANCELLED = 0x0017 [R],
    /// The request arrived after GOODBYE (§3.8).
    SHUTTING_DOWN = 0x0018 [R G],
    /// The peer's credentials are not allowed (§8.5).
    UNAUTHORIZED = 0x0019 [C],
    /// The server is at its connection limit (§8.4).
    CONNECTION_LIMIT = 0x001A [C],
    /// The receiver failed for a reason of its own.
    INTERNAL_ERROR = 0x001B [C R],
}

impl ErrorCode {
    /// Whether an ERROR with request ID 0 and this code, received by a client after WELCOME,
    /// ends the connection (scope "C" in spec §7.1, and every unknown reserved code). Before
    /// WELCOME every ERROR does. TRUNCATED_FRAME (scope "D") does not: the server still answers
    /// what it received (§3.9). A server ends the connection on any client ERROR with ID 0
    /// (§3.10), whatever this says.
    pub fn is_connection_scope(self) -> bool {
        self.scopes().contains(&Scope::Connection) || (self.0 >= 0x001C && self.0 < 0x8000)
    }

    /// Whether the code is in the application range.
    pub fn is_application(self) -> bool {
        self.0 >= 0x8000
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}"),
            None => write!(f, "ErrorCode(0x{:04X})", self.0),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n} (0x{:04X})", self.0),
            None => write!(f, "0x{:04X}", self.0),
        }
    }
}

/// Binary formats carry the `u16`; human-readable ones (JSON vectors) carry the registry name, or
/// the number when the code is not in the registry.
impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match (s.is_human_readable(), self.name()) {
            (true, Some(name)) => s.serialize_str(name),
            _ => s.serialize_u16(self.0),
        }
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ErrorCode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an error code (u16 or registry name)")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ErrorCode, E> {
                u16::try_from(v)
                    .map(ErrorCode)
                    .map_err(|_| E::custom("error code above 0xFFFF"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ErrorCode, E> {
                ErrorCode::from_name(v)
                    .ok_or_else(|| E::custom(format!("unknown error code name {v:?}")))
            }
        }
        if d.is_human_readable() {
            d.deserialize_any(V)
        } else {
            d.deserialize_u16(V)
        }
    }
}

/// What the body decoder found wrong (spec §6).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyErrorKind {
    /// The body ended inside a value.
    #[error("body ends after {remaining} more byte(s) but {needed} are needed")]
    UnexpectedEnd {
        /// Bytes the value needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A length or count prefix claims more than the rest of the body holds; rejected before
    /// anything is allocated for it (§6.8).
    #[error("length {length} exceeds the {remaining} byte(s) left in the body")]
    LengthExceedsInput {
        /// The claimed length or element count.
        length: u64,
        /// Bytes left in the body.
        remaining: usize,
    },
    /// Bytes left after the complete body (§5.4).
    #[error("{count} trailing byte(s) after the body")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// A string is not UTF-8.
    #[error("string is not valid UTF-8 (first bad byte at string offset {valid_up_to})")]
    InvalidUtf8 {
        /// Length of the valid prefix.
        valid_up_to: usize,
    },
    /// A bool byte other than 0 or 1.
    #[error("invalid bool byte 0x{0:02X}")]
    InvalidBool(u8),
    /// An option tag other than 0 or 1.
    #[error("invalid option tag 0x{0:02X}")]
    InvalidOptionTag(u8),
    /// A `char` that is not a Unicode scalar value.
    #[error("invalid char 0x{0:08X}")]
    InvalidChar(u32),
    /// Nesting deeper than the decoder's limit.
    #[error("nesting deeper than {0} levels")]
    DepthLimit(usize),
    /// The data model asked for something the format cannot express (`deserialize_any`, a
    /// sequence of unknown length).
    #[error("unsupported by the body encoding: {0}")]
    Unsupported(&'static str),
    /// A value the type rejected (an enum variant index, a fixed-size field of the wrong size).
    #[error("{0}")]
    Invalid(String),
    /// The archived body breaks a validation rule of spec §6.9.3 (numbered 1 to 5).
    #[error(
        "archived body breaks rule {rule} of spec section 6.9.3: {}",
        ARCHIVE_RULES[usize::from(rule.clamp(&1, &5) - 1)]
    )]
    InvalidArchive {
        /// The rule's number.
        rule: u8,
    },
}

/// What each rule of spec §6.9.3 requires, by rule number.
pub const ARCHIVE_RULES: [&str; 5] = [
    "the body is at least 8 octets (room for the root)",
    "the root, the last 8 octets, starts at a multiple of 4",
    "the values start inside the body (root offset + rel_off >= 0)",
    "the values start at a multiple of 8",
    "the values end at or before the root",
];

/// A body decoding failure: what, at which body offset, in which field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BodyError {
    /// What was wrong.
    pub kind: BodyErrorKind,
    /// Offset within the body where decoding failed.
    pub offset: usize,
    /// The innermost struct field being decoded, if any.
    pub field: Option<&'static str>,
}

impl BodyError {
    /// An error not yet positioned; the deserializer fills in offset and field where it surfaces.
    pub(crate) fn new(kind: BodyErrorKind) -> Self {
        BodyError {
            kind,
            offset: usize::MAX,
            field: None,
        }
    }

    pub(crate) fn at(kind: BodyErrorKind, offset: usize) -> Self {
        BodyError {
            kind,
            offset,
            field: None,
        }
    }

    /// The wire error code for this failure (§7.2).
    pub fn code(&self) -> ErrorCode {
        match self.kind {
            BodyErrorKind::TrailingBytes { .. } => ErrorCode::TRAILING_BYTES,
            BodyErrorKind::InvalidUtf8 { .. } => ErrorCode::INVALID_UTF8,
            _ => ErrorCode::MALFORMED_BODY,
        }
    }
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if self.offset != usize::MAX {
            write!(f, " at body offset {}", self.offset)?;
        }
        if let Some(field) = self.field {
            write!(f, " (field `{field}`)")?;
        }
        Ok(())
    }
}

impl std::error::Error for BodyError {}

impl serde::de::Error for BodyError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        BodyError::new(BodyErrorKind::Invalid(msg.to_string()))
    }
}

impl serde::ser::Error for BodyError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        BodyError::new(BodyErrorKind::Invalid(msg.to_string()))
    }
}

/// Why a received frame (or the bytes before it) was rejected. Offsets are stream offsets: byte 0
/// is the first byte the peer sent on the connection.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Byte `offset` of the connection does not match the preface (§3.1).
    #[error("bad preface: byte {offset} is 0x{found:02X}, expected 0x{expected:02X}")]
    BadPreface {
        /// Offset of the first wrong byte.
        offset: u64,
        /// The byte received.
        found: u8,
        /// The preface byte expected.
        expected: u8,
    },
    /// `Length` below 8 (§2.2).
    #[error("frame at offset {offset}: length {length} is below the 8-byte header")]
    FrameTooShort {
        /// Offset of the length prefix.
        offset: u64,
        /// The length claimed.
        length: u32,
    },
    /// `Length` above the receiver's limit; nothing was reserved for it (§2.2).
    #[error("frame at offset {offset}: length {length} exceeds the limit of {limit}")]
    FrameTooLarge {
        /// Offset of the length prefix.
        offset: u64,
        /// The length claimed.
        length: u32,
        /// The receiver's limit.
        limit: u32,
    },
    /// The stream ended inside a frame (§3.9).
    #[error(
        "stream ended inside the frame at offset {offset} ({buffered} of {needed} byte(s) received)"
    )]
    Truncated {
        /// Offset of the incomplete frame.
        offset: u64,
        /// Bytes of it received.
        buffered: usize,
        /// Bytes it needs (4 when the length prefix itself is incomplete).
        needed: usize,
    },
    /// The header's version is not the negotiated one (§5.4).
    #[error("frame at offset {offset}: version {found}, but {expected} was negotiated")]
    VersionMismatch {
        /// Offset of the frame.
        offset: u64,
        /// Request ID of the frame.
        request_id: u32,
        /// Version in the header.
        found: u8,
        /// Negotiated version.
        expected: u8,
    },
    /// A type code the negotiated version does not define (§5.4).
    #[error(
        "frame at offset {offset}: unknown message type 0x{type_code:02X} in version {version}"
    )]
    UnknownType {
        /// Offset of the frame.
        offset: u64,
        /// Request ID of the frame.
        request_id: u32,
        /// The type code.
        type_code: u8,
        /// The version it was checked against.
        version: u8,
    },
    /// A type this side never receives (§4.1).
    #[error("frame at offset {offset}: {msg_type} is not sent in this direction")]
    UnexpectedMessage {
        /// Offset of the frame.
        offset: u64,
        /// Request ID of the frame.
        request_id: u32,
        /// The type.
        msg_type: MessageType,
    },
    /// Undefined flags, or RKYV where it is not allowed (§2.4).
    #[error("frame at offset {offset}: invalid flags 0x{flags:04X} on {msg_type}: {reason}")]
    InvalidFlags {
        /// Offset of the frame.
        offset: u64,
        /// Request ID of the frame.
        request_id: u32,
        /// The type.
        msg_type: MessageType,
        /// The flags field.
        flags: u16,
        /// Which rule.
        reason: &'static str,
    },
    /// A request with ID 0 or a connection-level frame with a non-zero ID (§2.5).
    #[error("frame at offset {offset}: {msg_type} may not carry request ID {request_id}")]
    InvalidRequestId {
        /// Offset of the frame.
        offset: u64,
        /// The ID.
        request_id: u32,
        /// The type.
        msg_type: MessageType,
    },
    /// The body failed to decode (§6).
    #[error("frame at offset {offset}: {msg_type} body: {error}")]
    Body {
        /// Offset of the frame.
        offset: u64,
        /// Request ID of the frame.
        request_id: u32,
        /// The type.
        msg_type: MessageType,
        /// What and where in the body.
        error: BodyError,
    },
}

impl DecodeError {
    /// The wire error code (spec §7.2). The one place that maps decode failures to codes.
    pub fn code(&self) -> ErrorCode {
        match self {
            DecodeError::BadPreface { .. } => ErrorCode::BAD_PREFACE,
            DecodeError::FrameTooShort { .. } => ErrorCode::FRAME_TOO_SHORT,
            DecodeError::FrameTooLarge { .. } => ErrorCode::FRAME_TOO_LARGE,
            DecodeError::Truncated { .. } => ErrorCode::TRUNCATED_FRAME,
            DecodeError::VersionMismatch { .. } => ErrorCode::VERSION_MISMATCH,
            DecodeError::UnknownType { .. } => ErrorCode::UNKNOWN_TYPE,
            DecodeError::UnexpectedMessage { .. } => ErrorCode::UNEXPECTED_MESSAGE,
            DecodeError::InvalidFlags { .. } => ErrorCode::INVALID_FLAGS,
            DecodeError::InvalidRequestId { .. } => ErrorCode::INVALID_REQUEST_ID,
            DecodeError::Body { error, .. } => error.code(),
        }
    }

    /// Whether the failure ends the connection (spec §7.2): the framing itself is broken, or the
    /// peer is speaking another version. Otherwise the frame's boundaries are intact and only that
    /// frame is rejected with an ERROR carrying its request ID.
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self,
            DecodeError::BadPreface { .. }
                | DecodeError::FrameTooShort { .. }
                | DecodeError::FrameTooLarge { .. }
                | DecodeError::Truncated { .. }
                | DecodeError::VersionMismatch { .. }
        )
    }

    /// The request ID the ERROR for this failure refers to: the frame's own ID for request-level
    /// failures, 0 for connection-level ones (spec §7.2).
    pub fn request_id(&self) -> u32 {
        if self.is_connection_error() {
            return 0;
        }
        match self {
            DecodeError::UnknownType { request_id, .. }
            | DecodeError::UnexpectedMessage { request_id, .. }
            | DecodeError::InvalidFlags { request_id, .. }
            | DecodeError::Body { request_id, .. } => *request_id,
            // An invalid ID is answered on the connection (ID 0): echoing it would be ambiguous.
            _ => 0,
        }
    }

    /// Stream offset of the offending frame or byte.
    pub fn offset(&self) -> u64 {
        match self {
            DecodeError::BadPreface { offset, .. }
            | DecodeError::FrameTooShort { offset, .. }
            | DecodeError::FrameTooLarge { offset, .. }
            | DecodeError::Truncated { offset, .. }
            | DecodeError::VersionMismatch { offset, .. }
            | DecodeError::UnknownType { offset, .. }
            | DecodeError::UnexpectedMessage { offset, .. }
            | DecodeError::InvalidFlags { offset, .. }
            | DecodeError::InvalidRequestId { offset, .. }
            | DecodeError::Body { offset, .. } => *offset,
        }
    }
}

impl From<DecodeError> for std::io::Error {
    fn from(e: DecodeError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidData, e)
    }
}
