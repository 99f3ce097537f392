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
mod ping;
mod stats;
mod sum;
mod welcome;

use std::borrow::Cow;

use bytes::BufMut;
use serde::{Deserialize, Serialize};

pub use cancel::Cancel;
pub use compute::{Compute, ComputeResult, MAX_COMPUTE_COST, compute_digest};
pub use echo::{Echo, EchoReply};
pub use error::Error;
pub use goodbye::Goodbye;
pub use hello::Hello;
pub use ping::{Ping, Pong};
pub use stats::{StatEntry, Stats, StatsReply};
#[cfg(feature = "rkyv")]
pub use sum::ArchivedSum;
pub use sum::{Sum, SumResult};
pub use welcome::Welcome;

use crate::body;
use crate::error::{BodyError, DecodeError};
use crate::frame::{
    BASE_VERSION, Direction, FRAME_OVERHEAD, Flags, Frame, FrameHeader, MessageType,
};

/// Capability bit 0 (spec §3.4, §6.9): SUM may carry the archived body of §6.9 (little-endian
/// values, aligned, a 32-bit relative pointer).
pub const CAP_RKYV: u32 = 0x0000_0001;
/// Every capability bit the spec defines.
pub const CAP_DEFINED: u32 = CAP_RKYV;

/// A message body: its type code and its encoding in each protocol version.
pub trait Body<'a>: Sized + Serialize + Deserialize<'a> {
    /// The same body with every borrowed field owned.
    type Static: 'static;

    /// Copies every borrowed field so the body outlives its frame.
    fn into_static(self) -> Self::Static;

    /// Decodes the body as written in `version`.
    fn decode(version: u8, input: &'a [u8]) -> Result<Self, BodyError> {
        let _ = version;
        body::from_bytes(input)
    }

    /// The exact encoded body length in `version`.
    fn body_len(&self, version: u8) -> Result<usize, BodyError> {
        let _ = version;
        body::encoded_len(self)
    }

    /// Writes the body as `version` lays it out.
    fn encode_body<B: BufMut>(&self, version: u8, dst: &mut B) -> Result<(), BodyError> {
        let _ = version;
        body::to_buf(self, dst)
    }
}

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
    ($($code:literal $variant:ident $name:literal $dir:ident $since:literal $kind:ident
       [$($answer:ident)?] [$($archived:ident)?] $body:ident $(<$lt:lifetime>)? [$($borrow:ident)?];)*) => {
        /// A decoded message, generated from the message table (`table.rs`). Byte and
        /// string fields borrow from the frame's body.
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "type", content = "body", rename_all = "SCREAMING_SNAKE_CASE")]
        #[non_exhaustive]
        pub enum Message<'a> {
            $(
                #[doc = $name]
                $(#[serde($borrow)])?
                $variant($body $(<$lt>)?),
            )*
            /// SUM with the RKYV flag: the validated archived body (spec §6.9).
            #[serde(borrow)]
            SumRkyv(RkyvBody<'a>),
            /// A type in the application range, body undecoded.
            #[serde(borrow)]
            Application(ApplicationBody<'a>),
        }

        impl<'a> Message<'a> {
            /// The message's type code.
            pub fn msg_type(&self) -> MessageType {
                match self {
                    $(Message::$variant(_) => MessageType::$variant,)*
                    Message::SumRkyv(_) => MessageType::Sum,
                    Message::Application(a) => MessageType::from_u8(a.type_code),
                }
            }

            /// The exact body length in `version`.
            pub fn body_len(&self, version: u8) -> Result<usize, BodyError> {
                match self {
                    $(Message::$variant(b) => b.body_len(version),)*
                    Message::SumRkyv(b) => Ok(b.archive.len()),
                    Message::Application(a) => Ok(a.body.len()),
                }
            }

            /// Writes the body only.
            pub fn encode_body<B: BufMut>(&self, version: u8, dst: &mut B) -> Result<(), BodyError> {
                match self {
                    $(Message::$variant(b) => b.encode_body(version, dst),)*
                    Message::SumRkyv(b) => {
                        dst.put_slice(&b.archive);
                        Ok(())
                    }
                    Message::Application(a) => {
                        dst.put_slice(&a.body);
                        Ok(())
                    }
                }
            }

            /// Copies every borrowed field so the message outlives its frame.
            pub fn into_owned(self) -> Message<'static> {
                match self {
                    $(Message::$variant(b) => Message::$variant(b.into_static()),)*
                    Message::SumRkyv(r) => Message::SumRkyv(RkyvBody {
                        archive: cow_owned(r.archive),
                    }),
                    Message::Application(a) => Message::Application(ApplicationBody {
                        type_code: a.type_code,
                        body: cow_owned(a.body),
                    }),
                }
            }

            /// Decodes the standard-encoding body of a type the table defines; `None` for
            /// application and unknown types.
            fn decode_defined(
                ty: MessageType,
                version: u8,
                b: &'a [u8],
            ) -> Option<Result<Message<'a>, BodyError>> {
                match ty {
                    $(MessageType::$variant => Some(Body::decode(version, b).map(Message::$variant)),)*
                    MessageType::Application(_) | MessageType::Unknown(_) => None,
                }
            }
        }
    };
}

crate::table::for_each_message!(define_message);

/// An rkyv-archived body, already validated when it came from [`decode`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RkyvBody<'a> {
    /// The archive bytes, exactly the frame body.
    #[serde(borrow, with = "body::cow_bytes")]
    pub archive: Cow<'a, [u8]>,
}

/// The body of an application-defined type (`0x80..=0xFF`), for the application to decode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicationBody<'a> {
    /// The type code.
    pub type_code: u8,
    /// The body bytes.
    #[serde(borrow, with = "body::cow_bytes")]
    pub body: Cow<'a, [u8]>,
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

fn cow_owned<T: ToOwned + ?Sized>(c: Cow<'_, T>) -> Cow<'static, T> {
    Cow::Owned(c.into_owned())
}

impl Message<'_> {
    /// The header flags the message is sent with.
    pub fn flags(&self) -> Flags {
        match self {
            Message::SumRkyv(_) => Flags::RKYV,
            _ => Flags::NONE,
        }
    }

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

    /// The trailing octets of the body that a sender may queue by reference instead of copying
    /// them: ECHO_REPLY's payload, an application body, an archive. `None` for bodies that are
    /// encoded field by field.
    pub fn trailing_payload(&self) -> Option<&[u8]> {
        match self {
            Message::EchoReply(e) => Some(&e.payload),
            Message::Echo(e) => Some(&e.payload),
            Message::Application(a) => Some(&a.body),
            Message::SumRkyv(r) => Some(&r.archive),
            _ => None,
        }
    }

    /// Writes the frame like [`Message::encode`], except for its trailing payload
    /// ([`Message::trailing_payload`]), which the caller appends itself — by reference, so a
    /// large payload is never copied. Returns that payload (empty if the body has none). The
    /// length is checked against `limit` before anything is written.
    pub fn encode_split<B: BufMut>(
        &self,
        version: u8,
        request_id: u32,
        limit: u32,
        dst: &mut B,
    ) -> Result<&[u8], EncodeError> {
        self.encode_header(version, request_id, limit, dst)?;
        let Some(payload) = self.trailing_payload() else {
            self.encode_body(version, dst)?;
            return Ok(&[]);
        };
        // What precedes the payload: ECHO's and ECHO_REPLY's u32 length (spec §4.5, §6.3).
        if matches!(self, Message::Echo(_) | Message::EchoReply(_)) {
            dst.put_u32(payload.len() as u32);
        }
        Ok(payload)
    }

    /// Writes the length prefix and header, after checking the frame's `Length` against `limit`.
    fn encode_header<B: BufMut>(
        &self,
        version: u8,
        request_id: u32,
        limit: u32,
        dst: &mut B,
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
    /// use std::borrow::Cow;
    /// use echowire_codec::message::{Echo, Message};
    /// let msg = Message::Echo(Echo { payload: Cow::Borrowed(b"hi") });
    /// let mut out = Vec::new();
    /// msg.encode(1, 7, 1 << 20, &mut out).unwrap();
    /// assert_eq!(out, [0, 0, 0, 14, 1, 0x05, 0, 0, 0, 0, 0, 7, 0, 0, 0, 2, b'h', b'i']);
    /// assert_eq!(out.len(), msg.frame_len(1).unwrap());
    /// ```
    pub fn encode<B: BufMut>(
        &self,
        version: u8,
        request_id: u32,
        limit: u32,
        dst: &mut B,
    ) -> Result<(), EncodeError> {
        self.encode_header(version, request_id, limit, dst)?;
        self.encode_body(version, dst)?;
        Ok(())
    }
}

fn body_err(frame: &Frame, error: BodyError) -> DecodeError {
    DecodeError::Body {
        offset: frame.offset,
        request_id: frame.header.request_id,
        msg_type: frame.header.msg_type,
        error,
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
    let id_ok = match ty {
        MessageType::Hello | MessageType::Welcome | MessageType::Goodbye => h.request_id == 0,
        MessageType::Error => true,
        _ => h.request_id != 0,
    };
    if !id_ok {
        return Err(DecodeError::InvalidRequestId {
            offset,
            request_id: h.request_id,
            msg_type: ty,
        });
    }
    Ok(())
}

/// Applies the receiver rules of spec §2.7 to a frame and decodes its body.
///
/// Checks, in this order: header version equals the negotiated one (base version during the
/// handshake); the type is defined in that version; the receiver's role receives that type; no
/// undefined flag bits, and RKYV only on a type with an rkyv form once the capability is
/// negotiated; the request ID rule of the type (§2.5); the body decodes with no trailing bytes.
/// Lifecycle rules (HELLO only first, duplicate IDs, limits on outstanding requests) belong to
/// [`crate::session`].
pub fn decode<'a>(frame: &'a Frame, ctx: &DecodeContext) -> Result<Message<'a>, DecodeError> {
    let h = &frame.header;
    let offset = frame.offset;
    check_header(h, offset, ctx)?;
    let version = ctx.expected_version();
    let ty = h.msg_type;
    let rkyv = h.flags.contains(Flags::RKYV);
    let b: &'a [u8] = &frame.body;
    let m = match ty {
        MessageType::Sum if rkyv => {
            body::archive::check_sum(b).map_err(|e| body_err(frame, e))?;
            Message::SumRkyv(RkyvBody {
                archive: Cow::Borrowed(b),
            })
        }
        MessageType::Application(code) => Message::Application(ApplicationBody {
            type_code: code,
            body: Cow::Borrowed(b),
        }),
        _ => match Message::decode_defined(ty, version, b) {
            Some(m) => m.map_err(|e| body_err(frame, e))?,
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
