//! Message types (spec §4), one file per type, all in the same shape:
//!
//! * a body struct named as in the spec, deriving `Serialize`/`Deserialize` in the body encoding,
//!   borrowing its byte and string fields from the frame when decoded;
//! * an impl of [`Body`] giving its type code and, where versions differ, its per-version layout;
//! * a variant of [`Message`].
//!
//! [`decode`] is the one function that applies the header rules of spec §2.7 in the order the
//! spec gives (version, type, direction, flags, request ID, body) and turns a [`Frame`] into a
//! [`Message`]; [`Message::encode`] writes a whole frame with its length computed first.

mod cancel;
mod compute;
mod echo;
mod error;
mod goodbye;
mod hello;
pub mod octets;
mod ping;
mod stats;
mod sum;
mod welcome;

use bytes::{BufMut, Bytes};
use serde::{Deserialize, Serialize};

pub use cancel::Cancel;
pub use compute::{Compute, ComputeResult, MAX_COMPUTE_COST, compute_digest};
pub use echo::{Echo, EchoReply};
pub use error::Error;
pub use goodbye::Goodbye;
pub use hello::Hello;
pub use octets::{FromOctets, Octets, Str};
pub use ping::{Ping, Pong};
pub use stats::{StatEntry, Stats, StatsReply};
#[cfg(feature = "rkyv")]
pub use sum::ArchivedSum;
pub use sum::{Sum, SumResult};
pub use welcome::Welcome;

use crate::body;
use crate::decoder::FrameRef;
use crate::error::{BodyError, DecodeError, ErrorCode};
use crate::frame::{
    BASE_VERSION, Direction, FRAME_OVERHEAD, Flags, Frame, FrameHeader, MessageType,
};

/// Capability bit 0 (spec §3.4, §6.9): SUM may carry the archived body of §6.9 (little-endian
/// values, aligned, a 32-bit relative pointer).
pub const CAP_RKYV: u32 = 0x0000_0001;
/// Every capability bit the spec defines.
pub const CAP_DEFINED: u32 = CAP_RKYV;

/// A message body: its encoding in each protocol version (the defaults: the body encoding of
/// spec §6, the same in every version).
pub trait Body: Serialize {
    /// The exact encoded body length in `version`.
    fn body_len(&self, version: u8) -> Result<usize, BodyError> {
        let _ = version;
        body::encoded_len(self)
    }

    /// Writes the body as `version` lays it out.
    fn encode_body<W: BufMut>(&self, version: u8, dst: &mut W) -> Result<(), BodyError> {
        let _ = version;
        body::to_buf(self, dst)
    }
}

/// Decoding a body from a frame's octets, borrowing its byte and string fields.
pub trait DecodeBody<'a>: Sized + Deserialize<'a> {
    /// Decodes the body as written in `version`.
    fn decode(version: u8, input: &'a [u8]) -> Result<Self, BodyError> {
        let _ = version;
        body::from_bytes(input)
    }
}

/// The same body with its octet fields in another storage (see [`octets`]).
pub trait MapOctets<B, C> {
    /// The body in storage `C`.
    type Output;
    /// Maps every byte and string field through `f`, which must keep their octets.
    fn map_octets(self, f: &mut impl FnMut(B) -> C) -> Self::Output;
}

/// A body the fuzzers can make from their input (feature `arbitrary`), with owned octets:
/// implemented for every body by the macros below, so the generated [`Message`] generator
/// reaches every type of the table.
#[cfg(feature = "arbitrary")]
pub trait ArbitraryBody<'a>: Sized {
    /// A body from the fuzzer's bytes.
    fn arbitrary_body(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self>;
}

/// A body with no byte or string fields: the same in every storage.
macro_rules! plain_body {
    ($($ty:ident),* $(,)?) => {
        $(
            #[cfg(feature = "arbitrary")]
            impl<'a> $crate::message::ArbitraryBody<'a> for $ty {
                fn arbitrary_body(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
                    arbitrary::Arbitrary::arbitrary(u)
                }
            }
            impl $crate::message::Body for $ty {}
            impl $crate::message::DecodeBody<'_> for $ty {}
            impl<B, C> $crate::message::MapOctets<B, C> for $ty {
                type Output = $ty;
                fn map_octets(self, _: &mut impl FnMut(B) -> C) -> $ty {
                    self
                }
            }
        )*
    };
}
pub(crate) use plain_body;

/// [`MapOctets`] for a body generic over its storage: every field, each marked with how it maps
/// (`: B` an octet field, `: Str` a string, `: Seq` a sequence of such bodies, none: copied).
macro_rules! octets_map {
    ($($ty:ident { $($field:ident $(: $how:ident)?),* $(,)? }),* $(,)?) => {
        $(
            impl<B, C> $crate::message::MapOctets<B, C> for $ty<B> {
                type Output = $ty<C>;
                fn map_octets(self, f: &mut impl FnMut(B) -> C) -> $ty<C> {
                    $ty { $($field: $crate::message::map_field!(self.$field, f $(, $how)?),)* }
                }
            }
            #[cfg(feature = "arbitrary")]
            impl<'a> $crate::message::ArbitraryBody<'a> for $ty<Vec<u8>> {
                fn arbitrary_body(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
                    Ok($ty { $($field: $crate::message::arbitrary_field!(u $(, $how)?),)* })
                }
            }
            // Debug by hand: octets show as a byte string and strings as strings, in every
            // storage (a derive would show a borrowed payload as a list of numbers).
            impl<B: AsRef<[u8]>> std::fmt::Debug for $ty<B> {
                fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.debug_struct(stringify!($ty))
                        $(.field(stringify!($field), $crate::message::debug_field!(self.$field $(, $how)?)))*
                        .finish()
                }
            }
        )*
    };
}
pub(crate) use octets_map;

macro_rules! map_field {
    ($e:expr, $f:ident) => {
        $e
    };
    ($e:expr, $f:ident, B) => {
        $f($e)
    };
    ($e:expr, $f:ident, Str) => {
        $e.map($f)
    };
    ($e:expr, $f:ident, Seq) => {
        $e.into_iter()
            .map(|x| $crate::message::MapOctets::map_octets(x, $f))
            .collect()
    };
}
pub(crate) use map_field;

#[cfg(feature = "arbitrary")]
macro_rules! arbitrary_field {
    ($u:ident) => {
        arbitrary::Arbitrary::arbitrary($u)?
    };
    ($u:ident, B) => {
        <Vec<u8> as arbitrary::Arbitrary>::arbitrary($u)?
    };
    ($u:ident, Str) => {
        $crate::message::Str::from(<String as arbitrary::Arbitrary>::arbitrary($u)?)
    };
    ($u:ident, Seq) => {
        (0..$u.int_in_range(0u8..=8)?)
            .map(|_| $crate::message::ArbitraryBody::arbitrary_body($u))
            .collect::<arbitrary::Result<_>>()?
    };
}
#[cfg(feature = "arbitrary")]
pub(crate) use arbitrary_field;

macro_rules! debug_field {
    ($e:expr) => {
        &$e
    };
    ($e:expr, B) => {
        &$crate::message::octets::ShowOctets($e.as_ref())
    };
    ($e:expr, Str) => {
        &$e
    };
    ($e:expr, Seq) => {
        &$e
    };
}
pub(crate) use debug_field;

/// [`octets_map!`] plus the default [`Body`] and [`DecodeBody`].
macro_rules! octets_body {
    ($($ty:ident { $($field:ident $(: $how:ident)?),* $(,)? }),* $(,)?) => {
        $(
            $crate::message::octets_map!($ty { $($field $(: $how)?),* });
            impl<B: AsRef<[u8]>> $crate::message::Body for $ty<B> {}
            impl<'a> $crate::message::DecodeBody<'a> for $ty<&'a [u8]> {}
        )*
    };
}
pub(crate) use octets_body;

/// Which peer is receiving: decides which types are expected (spec §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The server side of a connection.
    Server,
    /// The client side.
    Client,
}

/// The connection state [`decode`] needs (spec §2.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeContext {
    /// Who is receiving.
    pub receiver: Role,
    /// The negotiated version; `None` during the handshake, when frames carry the base version.
    pub version: Option<u8>,
    /// Negotiated capability bits.
    pub capabilities: u32,
}

impl DecodeContext {
    /// A server's context once `version` is negotiated with `capabilities`.
    pub fn server(version: u8, capabilities: u32) -> Self {
        DecodeContext {
            receiver: Role::Server,
            version: Some(version),
            capabilities,
        }
    }

    /// A client's context once `version` is negotiated with `capabilities`.
    pub fn client(version: u8, capabilities: u32) -> Self {
        DecodeContext {
            receiver: Role::Client,
            version: Some(version),
            capabilities,
        }
    }

    /// The version frames must carry now.
    pub fn expected_version(&self) -> u8 {
        self.version.unwrap_or(BASE_VERSION)
    }
}

macro_rules! define_message {
    ($($code:literal $variant:ident $name:literal $dir:ident $since:literal $kind:ident $id:ident
       [$($answer:ident $(<$ab:ident>)?)?] [$($archived:ident)?] $body:ident $(<$b:ident>)?
       [$(fn $method:ident $(/ $archived_method:ident)?)?];)*) => {
        /// A message, generated from the message table (`table.rs`), generic over the storage of
        /// its byte and string fields ([`octets`]): `Message<&[u8]>` borrows them from a frame,
        /// `Message` (`Message<Bytes>`) shares them.
        #[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(
            tag = "type",
            content = "body",
            rename_all = "SCREAMING_SNAKE_CASE",
            bound(deserialize = "B: FromOctets<'de>", serialize = "B: AsRef<[u8]>")
        )]
        #[non_exhaustive]
        pub enum Message<B = Bytes> {
            $(
                #[doc = $name]
                $variant($body $(<$b>)?),
            )*
            /// SUM with the RKYV flag: the validated archived body (spec §6.9).
            SumRkyv(RkyvBody<B>),
            /// A type in the application range, body undecoded.
            Application(ApplicationBody<B>),
        }

        impl<B> Message<B> {
            /// The message's type code.
            pub fn msg_type(&self) -> MessageType {
                match self {
                    $(Message::$variant(_) => MessageType::$variant,)*
                    Message::SumRkyv(_) => MessageType::Sum,
                    Message::Application(a) => MessageType::from_u8(a.type_code),
                }
            }

            /// The same message with every byte and string field mapped through `f`, which
            /// must keep their octets: a slice of the buffer holding them, or a copy.
            pub fn map<C>(self, mut f: impl FnMut(B) -> C) -> Message<C> {
                let f = &mut f;
                match self {
                    $(Message::$variant(b) => Message::$variant(MapOctets::map_octets(b, f)),)*
                    Message::SumRkyv(r) => Message::SumRkyv(RkyvBody { archive: f(r.archive) }),
                    Message::Application(a) => Message::Application(ApplicationBody {
                        type_code: a.type_code,
                        body: f(a.body),
                    }),
                }
            }
        }

        impl<B: AsRef<[u8]>> std::fmt::Debug for Message<B> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self {
                    $(Message::$variant(b) => f.debug_tuple(stringify!($variant)).field(b).finish(),)*
                    Message::SumRkyv(b) => f.debug_tuple("SumRkyv").field(b).finish(),
                    Message::Application(b) => f.debug_tuple("Application").field(b).finish(),
                }
            }
        }

        impl<B: AsRef<[u8]>> Message<B> {
            /// The exact body length in `version`.
            pub fn body_len(&self, version: u8) -> Result<usize, BodyError> {
                match self {
                    $(Message::$variant(b) => b.body_len(version),)*
                    Message::SumRkyv(b) => Ok(b.archive.as_ref().len()),
                    Message::Application(a) => Ok(a.body.as_ref().len()),
                }
            }

            /// Writes the body only.
            pub fn encode_body<W: BufMut>(&self, version: u8, dst: &mut W) -> Result<(), BodyError> {
                match self {
                    $(Message::$variant(b) => b.encode_body(version, dst),)*
                    Message::SumRkyv(b) => {
                        dst.put_slice(b.archive.as_ref());
                        Ok(())
                    }
                    Message::Application(a) => {
                        dst.put_slice(a.body.as_ref());
                        Ok(())
                    }
                }
            }
        }

        impl<'a> Message<&'a [u8]> {
            /// Decodes the standard-encoding body of a type the table defines, borrowing its
            /// fields; `None` for application and unknown types.
            fn decode_defined(
                ty: MessageType,
                version: u8,
                b: &'a [u8],
            ) -> Option<Result<Message<&'a [u8]>, BodyError>> {
                match ty {
                    $(MessageType::$variant => Some(DecodeBody::decode(version, b).map(Message::$variant)),)*
                    MessageType::Application(_) | MessageType::Unknown(_) => None,
                }
            }
        }

        $(
            impl<B> From<$body $(<$b>)?> for Message<B> {
                fn from(body: $body $(<$b>)?) -> Self {
                    Message::$variant(body)
                }
            }
        )*
    };
}

crate::table::for_each_message!(define_message);

/// An rkyv-archived body, already validated when it came from [`decode`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "B: FromOctets<'de>", serialize = "B: AsRef<[u8]>"))]
pub struct RkyvBody<B = Bytes> {
    /// The archive bytes, exactly the frame body.
    #[serde(with = "octets::serde_octets")]
    pub archive: B,
}

impl<B: AsRef<[u8]>> std::fmt::Debug for RkyvBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RkyvBody")
            .field("archive", &octets::ShowOctets(self.archive.as_ref()))
            .finish()
    }
}

impl<B> From<RkyvBody<B>> for Message<B> {
    fn from(body: RkyvBody<B>) -> Self {
        Message::SumRkyv(body)
    }
}

/// The body of an application-defined type (`0x80..=0xFF`), for the application to decode.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "B: FromOctets<'de>", serialize = "B: AsRef<[u8]>"))]
pub struct ApplicationBody<B = Bytes> {
    /// The type code.
    pub type_code: u8,
    /// The body bytes.
    #[serde(with = "octets::serde_octets")]
    pub body: B,
}

impl<B: AsRef<[u8]>> std::fmt::Debug for ApplicationBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplicationBody")
            .field("type_code", &self.type_code)
            .field("body", &octets::ShowOctets(self.body.as_ref()))
            .finish()
    }
}

impl<B> From<ApplicationBody<B>> for Message<B> {
    fn from(body: ApplicationBody<B>) -> Self {
        Message::Application(body)
    }
}

/// Why a message could not be encoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The frame would exceed the peer's limit (spec §3.4).
    #[error("frame length {length} exceeds the peer's limit of {limit}")]
    FrameTooLarge {
        /// The `Length` the frame would have.
        length: u64,
        /// The limit.
        limit: u32,
    },
    /// The body could not be serialized.
    #[error("body: {0}")]
    Body(#[from] BodyError),
}

impl Message<Bytes> {
    /// ERROR with `code` and a detail text, no retry hint: a request's error response.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Message::Error(Error::new(code, message))
    }
}

impl Message<&[u8]> {
    /// The same message with its fields copied into `Bytes` of their own.
    pub fn to_shared(&self) -> Message<Bytes> {
        self.clone().map(Bytes::copy_from_slice)
    }
}

impl<B> Message<B> {
    /// The header flags the message is sent with.
    pub fn flags(&self) -> Flags {
        match self {
            Message::SumRkyv(_) => Flags::RKYV,
            _ => Flags::NONE,
        }
    }

    /// The trailing octets of the body that a sender may queue by reference instead of copying
    /// them: ECHO's and ECHO_REPLY's payload, an application body, an archive. `None` for bodies
    /// that are encoded field by field.
    pub fn trailing_payload(&self) -> Option<&B> {
        match self {
            Message::EchoReply(e) => Some(&e.payload),
            Message::Echo(e) => Some(&e.payload),
            Message::Application(a) => Some(&a.body),
            Message::SumRkyv(r) => Some(&r.archive),
            _ => None,
        }
    }
}

impl<B: AsRef<[u8]>> Message<B> {
    /// The exact encoded frame length (prefix, header, body) in `version`.
    pub fn frame_len(&self, version: u8) -> Result<usize, BodyError> {
        Ok(FRAME_OVERHEAD + self.body_len(version)?)
    }

    /// The frame header this message is sent with.
    pub fn header(&self, version: u8, request_id: u32) -> Result<FrameHeader, BodyError> {
        let body_len = self.body_len(version)?;
        Ok(FrameHeader::new(
            version,
            self.msg_type(),
            self.flags(),
            request_id,
            body_len,
        ))
    }

    /// Writes the frame like [`Message::encode`], except for its trailing payload
    /// ([`Message::trailing_payload`]), which the caller appends itself — by reference, so a
    /// large payload is never copied. Returns that payload (`None` if the body has none). The
    /// length is checked against `limit` before anything is written.
    pub fn encode_split<W: BufMut>(
        &self,
        version: u8,
        request_id: u32,
        limit: u32,
        dst: &mut W,
    ) -> Result<Option<&B>, EncodeError> {
        // ECHO and ECHO_REPLY, a server's hot path: the body is the payload's u32 length and
        // the payload (spec §4.5, §6.3), so its size needs no serde pass, and the 16 octets
        // before the payload (length prefix, header, the payload's length) go in one write.
        if let Message::Echo(Echo { payload }) | Message::EchoReply(EchoReply { payload }) = self {
            let n = payload.as_ref().len();
            let length = n as u64 + 4 + 8;
            if length > u64::from(limit) {
                return Err(EncodeError::FrameTooLarge { length, limit });
            }
            let header =
                FrameHeader::new(version, self.msg_type(), self.flags(), request_id, n + 4);
            let mut head = [0u8; FRAME_OVERHEAD + 4];
            head[..FRAME_OVERHEAD].copy_from_slice(&header.to_bytes());
            // `length <= limit <= u32::MAX`, so the payload's length fits.
            head[FRAME_OVERHEAD..].copy_from_slice(&(n as u32).to_be_bytes());
            dst.put_slice(&head);
            return Ok(Some(payload));
        }
        self.encode_header(version, request_id, limit, dst)?;
        let Some(payload) = self.trailing_payload() else {
            self.encode_body(version, dst)?;
            return Ok(None);
        };
        Ok(Some(payload))
    }

    /// Writes the length prefix and header, after checking the frame's `Length` against `limit`.
    fn encode_header<W: BufMut>(
        &self,
        version: u8,
        request_id: u32,
        limit: u32,
        dst: &mut W,
    ) -> Result<(), EncodeError> {
        let body_len = self.body_len(version)?;
        let length = body_len as u64 + 8;
        if length > u64::from(limit) {
            return Err(EncodeError::FrameTooLarge { length, limit });
        }
        FrameHeader::new(version, self.msg_type(), self.flags(), request_id, body_len).encode(dst);
        Ok(())
    }

    /// Writes the whole frame. The length is computed first and checked against `limit` (the
    /// peer's `max_frame_size`) before anything is written.
    ///
    /// ```
    /// use echowire_codec::message::{Echo, Message};
    /// let msg: Message<&[u8]> = Message::Echo(Echo { payload: b"hi" });
    /// let mut out = Vec::new();
    /// msg.encode(1, 7, 1 << 20, &mut out).unwrap();
    /// assert_eq!(out, [0, 0, 0, 14, 1, 0x05, 0, 0, 0, 0, 0, 7, 0, 0, 0, 2, b'h', b'i']);
    /// assert_eq!(out.len(), msg.frame_len(1).unwrap());
    /// ```
    pub fn encode<W: BufMut>(
        &self,
        version: u8,
        request_id: u32,
        limit: u32,
        dst: &mut W,
    ) -> Result<(), EncodeError> {
        self.encode_header(version, request_id, limit, dst)?;
        self.encode_body(version, dst)?;
        Ok(())
    }
}

/// The header rules of spec §2.7 (steps 3 and 5-8): version, type defined in that version,
/// direction, flags, request-ID rule. [`decode`] applies them before decoding the body; a driver
/// that routes frames without decoding bodies can apply them alone.
pub fn check_header(h: &FrameHeader, offset: u64, ctx: &DecodeContext) -> Result<(), DecodeError> {
    let version = ctx.expected_version();
    // §5.4: "A frame whose header version differs from the negotiated version is a connection error."
    if h.version != version {
        return Err(DecodeError::VersionMismatch {
            offset,
            request_id: h.request_id,
            found: h.version,
            expected: version,
        });
    }
    let ty = h.msg_type;
    if !matches!(ty, MessageType::Application(_))
        && ty.since_version().is_none_or(|since| since > version)
    {
        return Err(DecodeError::UnknownType {
            offset,
            request_id: h.request_id,
            type_code: ty.to_u8(),
            version,
        });
    }
    let wrong_way = matches!(
        (ty.direction(), ctx.receiver),
        (Direction::ToServer, Role::Client) | (Direction::ToClient, Role::Server)
    );
    if wrong_way {
        return Err(DecodeError::UnexpectedMessage {
            offset,
            request_id: h.request_id,
            msg_type: ty,
        });
    }
    let flags_err = |reason| DecodeError::InvalidFlags {
        offset,
        request_id: h.request_id,
        msg_type: ty,
        flags: h.flags.0,
        reason,
    };
    if h.flags.undefined_bits() != 0 {
        return Err(flags_err("undefined flag bits are set"));
    }
    let rkyv = h.flags.contains(Flags::RKYV);
    if rkyv && !ty.has_rkyv_form() {
        return Err(flags_err("RKYV is set on a type with no rkyv form"));
    }
    if rkyv && ctx.capabilities & CAP_RKYV == 0 {
        return Err(flags_err(
            "RKYV is set but the RKYV capability was not negotiated",
        ));
    }
    // §2.5, the table's ID rule.
    if !ty.id_rule().allows(h.request_id) {
        return Err(DecodeError::InvalidRequestId {
            offset,
            request_id: h.request_id,
            msg_type: ty,
        });
    }
    Ok(())
}

/// Applies the receiver rules of spec §2.7 to a frame decoded in place and decodes its body,
/// borrowing its byte and string fields from the frame.
///
/// Checks, in this order: header version equals the negotiated one (base version during the
/// handshake); the type is defined in that version; the receiver's role receives that type; no
/// undefined flag bits, and RKYV only on a type with an rkyv form once the capability is
/// negotiated; the request ID rule of the type (§2.5); the body decodes with no trailing bytes.
/// Lifecycle rules (HELLO only first, duplicate IDs, limits on outstanding requests) belong to
/// [`crate::session`].
pub fn decode_ref<'a>(
    frame: &FrameRef<'a>,
    ctx: &DecodeContext,
) -> Result<Message<&'a [u8]>, DecodeError> {
    decode_parts(&frame.header, frame.offset, frame.body, ctx)
}

/// [`decode_ref`] for a frame that owns its body: the message's fields are slices of
/// `frame.body` (no copy).
pub fn decode(frame: &Frame, ctx: &DecodeContext) -> Result<Message<Bytes>, DecodeError> {
    let m = decode_parts(&frame.header, frame.offset, &frame.body, ctx)?;
    Ok(m.map(|s| frame.body.slice_ref(s)))
}

pub(crate) fn decode_parts<'a>(
    h: &FrameHeader,
    offset: u64,
    b: &'a [u8],
    ctx: &DecodeContext,
) -> Result<Message<&'a [u8]>, DecodeError> {
    check_header(h, offset, ctx)?;
    let version = ctx.expected_version();
    let ty = h.msg_type;
    let body_err = |error| DecodeError::Body {
        offset,
        request_id: h.request_id,
        msg_type: h.msg_type,
        error,
    };
    let m = match ty {
        MessageType::Sum if h.flags.contains(Flags::RKYV) => {
            body::archive::check_sum(b).map_err(body_err)?;
            Message::SumRkyv(RkyvBody { archive: b })
        }
        MessageType::Application(code) => Message::Application(ApplicationBody {
            type_code: code,
            body: b,
        }),
        _ => match Message::decode_defined(ty, version, b) {
            Some(m) => m.map_err(body_err)?,
            None => {
                return Err(DecodeError::UnknownType {
                    offset,
                    request_id: h.request_id,
                    type_code: ty.to_u8(),
                    version,
                });
            }
        },
    };
    Ok(m)
}
