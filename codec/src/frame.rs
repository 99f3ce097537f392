//! The frame layer (spec §2): length prefix, fixed header, body.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +---------------------------------------------------------------+
//! |                        Length (u32 BE)                        |
//! +---------------+---------------+-------------------------------+
//! |    Version    |     Type      |          Flags (u16 BE)       |
//! +---------------+---------------+-------------------------------+
//! |                      Request ID (u32 BE)                      |
//! +---------------------------------------------------------------+
//! |                  Body (Length - 8 bytes) ...                  |
//! +---------------------------------------------------------------+
//! ```
//!
//! `Length` counts every byte that follows the length field: the 8-byte header plus the body
//! (spec §2.2). A frame is therefore `4 + Length` bytes on the wire and `Length` is never below 8.
//!
//! This module only knows the layout. Whether a version, type or flag is acceptable in a given
//! connection state is decided by [`crate::message::decode`] and [`crate::session`].

use bytes::{BufMut, Bytes};
use nom::Parser;
use nom::number::complete::{be_u8, be_u16, be_u32};

/// The 8 bytes a client sends before its first frame (spec §3.1).
///
/// The first byte is not ASCII, so a text protocol (HTTP, SMTP, a stray `telnet`) is detected on
/// the very first byte; `\r\n` and `\x1a` catch line-ending and text-mode mangling, as in PNG.
pub const PREFACE: [u8; 8] = [0x89, b'E', b'W', b'R', b'\r', b'\n', 0x1A, b'\n'];

/// Compares `input` with the preface, `matched` bytes of which were already received and
/// correct. Returns how many bytes of `input` belong to the preface (all of them, up to its end),
/// or the offset of the first wrong byte (spec §3.1).
pub fn match_preface(matched: usize, input: &[u8]) -> Result<usize, crate::error::DecodeError> {
    let take = input.len().min(PREFACE.len().saturating_sub(matched));
    for (i, &found) in input[..take].iter().enumerate() {
        let expected = PREFACE[matched + i];
        if found != expected {
            return Err(crate::error::DecodeError::BadPreface {
                offset: (matched + i) as u64,
                found,
                expected,
            });
        }
    }
    Ok(take)
}

/// Size of the length prefix in bytes.
pub const LENGTH_PREFIX_LEN: usize = 4;
/// Size of the fixed header that follows the length prefix (version, type, flags, request ID).
pub const HEADER_LEN: usize = 8;
/// Bytes of a frame that are not body: prefix plus header.
pub const FRAME_OVERHEAD: usize = LENGTH_PREFIX_LEN + HEADER_LEN;

/// Smallest legal `Length` value: a header with an empty body.
pub const MIN_LENGTH: u32 = HEADER_LEN as u32;
/// Default receive limit on `Length` (spec §8.1): 1 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 1 << 20;
/// Smallest receive limit a peer may announce (spec §8.1).
pub const MIN_MAX_FRAME_SIZE: u32 = 4096;
/// Largest receive limit any peer may announce (spec §8.1): 16 MiB. Larger announcements are
/// treated as this value.
pub const MAX_MAX_FRAME_SIZE: u32 = 16 << 20;

/// The protocol versions this crate implements (spec §5).
pub const SUPPORTED_VERSIONS: std::ops::RangeInclusive<u8> = 1..=2;
/// The version carried in the header of HELLO, WELCOME and any frame sent before the handshake
/// completes (spec §3.2).
pub const BASE_VERSION: u8 = 1;

/// Message type codes (spec §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum MessageType {
    /// 0x01, client → server, opens the handshake.
    Hello,
    /// 0x02, server → client, completes the handshake.
    Welcome,
    /// 0x03, client → server.
    Ping,
    /// 0x04, server → client.
    Pong,
    /// 0x05, client → server.
    Echo,
    /// 0x06, server → client.
    EchoReply,
    /// 0x07, client → server, heavy.
    Compute,
    /// 0x08, server → client.
    ComputeResult,
    /// 0x09, client → server.
    Cancel,
    /// 0x0A, either direction.
    Error,
    /// 0x0B, either direction.
    Goodbye,
    /// 0x0C, client → server; standard or rkyv body.
    Sum,
    /// 0x0D, server → client.
    SumResult,
    /// 0x0E, client → server, version 2 only.
    Stats,
    /// 0x0F, server → client, version 2 only.
    StatsReply,
    /// 0x80..=0xFF, reserved for applications' own message types (spec §4.1).
    Application(u8),
    /// 0x00 and 0x10..=0x7F: reserved, unknown to this implementation.
    Unknown(u8),
}

impl MessageType {
    /// The first type code of the application range.
    pub const APPLICATION_START: u8 = 0x80;

    /// Classifies a type code.
    pub fn from_u8(code: u8) -> Self {
        use MessageType::*;
        match code {
            0x01 => Hello,
            0x02 => Welcome,
            0x03 => Ping,
            0x04 => Pong,
            0x05 => Echo,
            0x06 => EchoReply,
            0x07 => Compute,
            0x08 => ComputeResult,
            0x09 => Cancel,
            0x0A => Error,
            0x0B => Goodbye,
            0x0C => Sum,
            0x0D => SumResult,
            0x0E => Stats,
            0x0F => StatsReply,
            c if c >= Self::APPLICATION_START => Application(c),
            c => Unknown(c),
        }
    }

    /// The wire code.
    pub fn to_u8(self) -> u8 {
        use MessageType::*;
        match self {
            Hello => 0x01,
            Welcome => 0x02,
            Ping => 0x03,
            Pong => 0x04,
            Echo => 0x05,
            EchoReply => 0x06,
            Compute => 0x07,
            ComputeResult => 0x08,
            Cancel => 0x09,
            Error => 0x0A,
            Goodbye => 0x0B,
            Sum => 0x0C,
            SumResult => 0x0D,
            Stats => 0x0E,
            StatsReply => 0x0F,
            Application(c) | Unknown(c) => c,
        }
    }

    /// The spec's name of the type (`"ECHO_REPLY"`), or `None` for unknown and application codes.
    pub fn name(self) -> Option<&'static str> {
        use MessageType::*;
        Some(match self {
            Hello => "HELLO",
            Welcome => "WELCOME",
            Ping => "PING",
            Pong => "PONG",
            Echo => "ECHO",
            EchoReply => "ECHO_REPLY",
            Compute => "COMPUTE",
            ComputeResult => "COMPUTE_RESULT",
            Cancel => "CANCEL",
            Error => "ERROR",
            Goodbye => "GOODBYE",
            Sum => "SUM",
            SumResult => "SUM_RESULT",
            Stats => "STATS",
            StatsReply => "STATS_REPLY",
            Application(_) | Unknown(_) => return None,
        })
    }

    /// Parses a spec name (`"ECHO"`) or a hex code (`"0x85"`).
    pub fn from_name(name: &str) -> Option<Self> {
        if let Some(hex) = name.strip_prefix("0x") {
            return u8::from_str_radix(hex, 16).ok().map(Self::from_u8);
        }
        (1u8..=0x0F)
            .map(Self::from_u8)
            .find(|t| t.name() == Some(name))
    }

    /// The lowest protocol version that defines this type (spec §5.2), `None` if no version does.
    pub fn since_version(self) -> Option<u8> {
        match self {
            MessageType::Stats | MessageType::StatsReply => Some(2),
            MessageType::Unknown(_) => None,
            _ => Some(1),
        }
    }

    /// Who may send the type (spec §4.1).
    pub fn direction(self) -> Direction {
        use MessageType::*;
        match self {
            Hello | Ping | Echo | Compute | Cancel | Sum | Stats => Direction::ToServer,
            Welcome | Pong | EchoReply | ComputeResult | SumResult | StatsReply => {
                Direction::ToClient
            }
            Error | Goodbye | Application(_) | Unknown(_) => Direction::Both,
        }
    }

    /// Whether the type is a request that carries a non-zero request ID and expects exactly one
    /// response (spec §2.5).
    pub fn is_request(self) -> bool {
        use MessageType::*;
        matches!(self, Ping | Echo | Compute | Sum | Stats | Application(_))
    }

    /// Whether the spec defines an rkyv-archived form of this type's body (spec §6.9).
    pub fn has_rkyv_form(self) -> bool {
        matches!(self, MessageType::Sum)
    }
}

impl std::fmt::Display for MessageType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "0x{:02X}", self.to_u8()),
        }
    }
}

/// Which peer may send a message type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Only a client sends it.
    ToServer,
    /// Only a server sends it.
    ToClient,
    /// Either peer.
    Both,
}

/// The header's flag bits (spec §2.4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Flags(pub u16);

impl Flags {
    /// No flag set.
    pub const NONE: Flags = Flags(0);
    /// Bit 0: the body is an rkyv archive (spec §6.9), not the standard encoding.
    pub const RKYV: Flags = Flags(0x0001);
    /// Every bit this version of the spec defines. The others MUST be zero.
    pub const DEFINED: u16 = 0x0001;

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The bits that the spec does not define.
    pub fn undefined_bits(self) -> u16 {
        self.0 & !Self::DEFINED
    }
}

/// The fixed header of a frame, with the length it was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameHeader {
    /// The length field: header plus body bytes.
    pub length: u32,
    /// Protocol version the frame is written in.
    pub version: u8,
    /// Message type.
    pub msg_type: MessageType,
    /// Flag bits.
    pub flags: Flags,
    /// Request ID (0: connection-level).
    pub request_id: u32,
}

impl FrameHeader {
    /// A header for a body of `body_len` bytes.
    ///
    /// # Panics
    /// Never for bodies that fit a frame; `body_len` above `u32::MAX - 8` saturates and the peer's
    /// limit check rejects it. Encoders check the limit before they build a header.
    pub fn new(
        version: u8,
        msg_type: MessageType,
        flags: Flags,
        request_id: u32,
        body_len: usize,
    ) -> Self {
        let length = u32::try_from(body_len)
            .ok()
            .and_then(|b| b.checked_add(MIN_LENGTH))
            .unwrap_or(u32::MAX);
        FrameHeader {
            length,
            version,
            msg_type,
            flags,
            request_id,
        }
    }

    /// Body length in bytes.
    pub fn body_len(&self) -> usize {
        (self.length - MIN_LENGTH.min(self.length)) as usize
    }

    /// Parses the 8 header bytes that follow the length prefix. `input` must hold at least 8
    /// bytes; the caller (the decoder) has already checked `length`.
    pub(crate) fn parse(length: u32, input: &[u8]) -> Option<Self> {
        let parsed: nom::IResult<&[u8], (u8, u8, u16, u32)> =
            (be_u8, be_u8, be_u16, be_u32).parse(input);
        let (_, (version, ty, flags, request_id)) = parsed.ok()?;
        Some(FrameHeader {
            length,
            version,
            msg_type: MessageType::from_u8(ty),
            flags: Flags(flags),
            request_id,
        })
    }

    /// Writes the length prefix and the header (12 bytes).
    pub fn encode<B: BufMut + ?Sized>(&self, dst: &mut B) {
        dst.put_u32(self.length);
        dst.put_u8(self.version);
        dst.put_u8(self.msg_type.to_u8());
        dst.put_u16(self.flags.0);
        dst.put_u32(self.request_id);
    }

    /// The 12 encoded bytes.
    pub fn to_bytes(&self) -> [u8; FRAME_OVERHEAD] {
        let mut out = [0u8; FRAME_OVERHEAD];
        let mut dst = &mut out[..];
        self.encode(&mut dst);
        out
    }
}

/// One complete frame: its header and its body, which shares the receive buffer's memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The parsed header.
    pub header: FrameHeader,
    /// The body bytes (`Length - 8` of them), zero-copy.
    pub body: Bytes,
    /// Offset of the frame's first byte (its length prefix) in the stream it was decoded from.
    pub offset: u64,
}

impl Frame {
    /// Builds a frame around a body (for encoding raw frames, e.g. in tests and the conformance
    /// runner).
    pub fn new(
        version: u8,
        msg_type: MessageType,
        flags: Flags,
        request_id: u32,
        body: Bytes,
    ) -> Self {
        let header = FrameHeader::new(version, msg_type, flags, request_id, body.len());
        Frame {
            header,
            body,
            offset: 0,
        }
    }

    /// Encoded size in bytes.
    pub fn encoded_len(&self) -> usize {
        FRAME_OVERHEAD + self.body.len()
    }

    /// Writes prefix, header and body.
    pub fn encode<B: BufMut + ?Sized>(&self, dst: &mut B) {
        self.header.encode(dst);
        dst.put_slice(&self.body);
    }
}
