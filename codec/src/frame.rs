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

/// The 8 bytes a client sends before its first frame (spec §3.1).
///
/// The first byte is not ASCII, so a text protocol (HTTP, SMTP, a stray `telnet`) is detected on
/// the very first byte; `\r\n` and `\x1a` catch line-ending and text-mode mangling, as in PNG.
pub const PREFACE: [u8; 8] = [0x89, b'E', b'W', b'R', b'\r', b'\n', 0x1A, b'\n'];

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

macro_rules! define_message_type {
    ($($code:literal $variant:ident $name:literal $dir:ident $since:literal $kind:ident $id:ident
       [$($answer:ident $(<$ab:ident>)?)?] [$($archived:ident)?] $body:ident $(<$b:ident>)?
       [$(fn $method:ident $(/ $archived_method:ident)?)?];)*) => {
        /// The message type (spec §4.1), generated from the message table (`table.rs`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
        pub enum MessageType {
            $(
                #[doc = concat!("`", stringify!($code), "` ", $name, ": ", stringify!($kind),
                                ", sent by ", stringify!($dir), ", since version ", $since, ".")]
                $variant,
            )*
            /// 0x80..=0xFF, reserved for applications' own message types (spec §4.1).
            Application(u8),
            /// 0x00 and 0x10..=0x7F: reserved, unknown to this implementation.
            Unknown(u8),
        }

        impl MessageType {
            /// Classifies a type code.
            pub fn from_u8(code: u8) -> Self {
                match code {
                    $($code => MessageType::$variant,)*
                    c if c >= Self::APPLICATION_START => MessageType::Application(c),
                    c => MessageType::Unknown(c),
                }
            }

            /// The wire code.
            pub fn to_u8(self) -> u8 {
                match self {
                    $(MessageType::$variant => $code,)*
                    MessageType::Application(c) | MessageType::Unknown(c) => c,
                }
            }

            /// The spec's name of the type (`"ECHO_REPLY"`), or `None` for unknown and
            /// application codes.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $(MessageType::$variant => Some($name),)*
                    MessageType::Application(_) | MessageType::Unknown(_) => None,
                }
            }

            /// Every type the spec defines, in code order.
            pub const DEFINED: &'static [MessageType] = &[$(MessageType::$variant),*];

            /// The lowest protocol version that defines this type (spec §5.2), `None` if no
            /// version does.
            pub fn since_version(self) -> Option<u8> {
                match self {
                    $(MessageType::$variant => Some($since),)*
                    MessageType::Application(_) => Some(1),
                    MessageType::Unknown(_) => None,
                }
            }

            /// Who may send the type (spec §4.1).
            pub fn direction(self) -> Direction {
                match self {
                    $(MessageType::$variant => Direction::$dir,)*
                    MessageType::Application(_) | MessageType::Unknown(_) => Direction::Both,
                }
            }

            /// The type's role in the protocol (spec §4.1).
            pub fn kind(self) -> Kind {
                match self {
                    $(MessageType::$variant => Kind::$kind,)*
                    // From a client a request, from a server a response (§4.1).
                    MessageType::Application(_) => Kind::Request,
                    MessageType::Unknown(_) => Kind::Control,
                }
            }

            /// Whether the type is a request that carries a non-zero request ID and expects
            /// exactly one response (spec §2.5).
            pub fn is_request(self) -> bool {
                self.kind() == Kind::Request
            }

            /// The type that answers this request when it succeeds (ERROR answers any request);
            /// `None` for a type that is not a request, or an application type (any
            /// application type may answer it, §4.1).
            pub fn answered_by(self) -> Option<MessageType> {
                match self {
                    $($(MessageType::$variant => Some(MessageType::$answer),)?)*
                    _ => None,
                }
            }

            /// The request-ID rule of the type (spec §2.5).
            pub fn id_rule(self) -> IdRule {
                match self {
                    $(MessageType::$variant => IdRule::$id,)*
                    // From a client a request (§4.1); a server's answer names one too.
                    MessageType::Application(_) => IdRule::NonZero,
                    MessageType::Unknown(_) => IdRule::Any,
                }
            }

            /// Whether the spec defines an archived form of this type's body (spec §6.9).
            pub fn has_rkyv_form(self) -> bool {
                match self {
                    $($(MessageType::$variant => { let _ = stringify!($archived); true })?)*
                    _ => false,
                }
            }
        }
    };
}

crate::table::for_each_message!(define_message_type);

impl MessageType {
    /// The first type code of the application range.
    pub const APPLICATION_START: u8 = 0x80;

    /// Parses a spec name (`"ECHO"`) or a hex code (`"0x85"`).
    pub fn from_name(name: &str) -> Option<Self> {
        if let Some(hex) = name.strip_prefix("0x") {
            return u8::from_str_radix(hex, 16).ok().map(Self::from_u8);
        }
        Self::DEFINED
            .iter()
            .copied()
            .find(|t| t.name() == Some(name))
    }
}

/// Which request IDs a message type may carry (spec §2.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdRule {
    /// ID 0 only: HELLO, WELCOME, GOODBYE.
    Zero,
    /// A non-zero ID: requests, their responses, CANCEL.
    NonZero,
    /// Any ID: ERROR (0 for the connection).
    Any,
}

impl IdRule {
    /// Whether `id` satisfies the rule.
    pub fn allows(self, id: u32) -> bool {
        match self {
            IdRule::Zero => id == 0,
            IdRule::NonZero => id != 0,
            IdRule::Any => true,
        }
    }
}

/// The role of a message type (spec §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// HELLO and WELCOME.
    Handshake,
    /// Carries a non-zero ID and is answered exactly once.
    Request,
    /// Answers a request.
    Response,
    /// CANCEL, ERROR, GOODBYE: about the connection or another frame.
    Control,
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
        // A fixed-size read: the 8 octets are all there, nothing for a parser combinator to do.
        let h = input.first_chunk::<8>()?;
        Some(FrameHeader {
            length,
            version: h[0],
            msg_type: MessageType::from_u8(h[1]),
            flags: Flags(u16::from_be_bytes([h[2], h[3]])),
            request_id: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
        })
    }

    /// Reads the length prefix and header from the first 12 octets of `octets`, whatever they
    /// claim (no limit is checked): for tools that look at a stream rather than receive it — a
    /// wire log, a proxy, a dissector. `None` with fewer than 12 octets. A receiver decodes with
    /// [`crate::decoder::FrameDecoder`], which checks the Length first.
    pub fn peek(octets: &[u8]) -> Option<Self> {
        let head = octets.first_chunk::<FRAME_OVERHEAD>()?;
        let length = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        Self::parse(length, &head[LENGTH_PREFIX_LEN..])
    }

    /// The `Length` field at the start of `octets`, if its 4 octets are there (no limit
    /// checked; see [`FrameHeader::peek`]).
    pub fn peek_length(octets: &[u8]) -> Option<u32> {
        octets
            .first_chunk::<LENGTH_PREFIX_LEN>()
            .map(|b| u32::from_be_bytes(*b))
    }

    /// Writes the length prefix and the header (12 bytes), in one `put_slice`: five `put_u*`
    /// calls cost a capacity check and an out-of-line copy of 1-4 octets each (bench/count.sh
    /// counts the difference).
    pub fn encode<B: BufMut + ?Sized>(&self, dst: &mut B) {
        dst.put_slice(&self.to_bytes());
    }

    /// The 12 encoded bytes.
    pub fn to_bytes(&self) -> [u8; FRAME_OVERHEAD] {
        let mut out = [0u8; FRAME_OVERHEAD];
        out[..4].copy_from_slice(&self.length.to_be_bytes());
        out[4] = self.version;
        out[5] = self.msg_type.to_u8();
        out[6..8].copy_from_slice(&self.flags.0.to_be_bytes());
        out[8..].copy_from_slice(&self.request_id.to_be_bytes());
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
