//! # echowire-codec
//!
//! The codec and protocol state machine of **Echowire**, a specified binary wire protocol
//! (`spec/PROTOCOL.md` in the repository is the single source of truth; section numbers below
//! refer to it).
//!
//! ```text
//! +----------------+---------+--------+-------------+------------------+-------------------+
//! | Length (u32 BE)| Version |  Type  | Flags (u16) | Request ID (u32) | Body (Length - 8) |
//! +----------------+---------+--------+-------------+------------------+-------------------+
//!      4 bytes        1 byte   1 byte    2 bytes         4 bytes
//! ```
//!
//! Layers, bottom up:
//! * [`frame`]: the header layout, type registry and flags (§2);
//! * [`decoder`]: the streaming frame decoder — bytes split anywhere in, frames out, length limit
//!   checked before anything is reserved (§2, §8.1);
//! * [`body`]: the body encoding as a serde data format with a borrowing deserializer (§6), and
//!   the rkyv path (§6.9, feature `rkyv`);
//! * [`message`]: one type per message (§4) and the receiver rules (§5.4);
//! * [`session`]: the sans-IO server and client state machines (§3.5) — handshake, version
//!   negotiation, limits, request IDs, cancel, drain;
//! * `client`: a blocking client (feature `client`, on by default); `tokio`: a `tokio_util`
//!   codec (feature `tokio`); `fuzzing`: the harnesses the fuzz targets call (feature `fuzzing`).
//!
//! With no feature at all the crate is the pure core: no socket, thread or clock anywhere.
//!
//! ## Example: a client and a server session talking in memory
//! ```
//! use std::time::Instant;
//! use bytes::{Bytes, BytesMut};
//! use echowire_codec::session::*;
//!
//! let now = Instant::now();
//! let mut server = ServerSession::new(ServerConfig::default(), now);
//! let mut client = ClientSession::new(ClientConfig::default());
//! let (mut to_server, mut to_client) = (BytesMut::new(), BytesMut::new());
//!
//! // Handshake: preface + HELLO one way, WELCOME the other.
//! to_server.extend_from_slice(&client.outbox().take_all());
//! assert!(server.poll_event(&mut to_server, now).is_none());
//! to_client.extend_from_slice(&server.outbox().take_all());
//! let Some(ClientEvent::Welcome(n)) = client.poll_event(&mut to_client).unwrap() else { panic!() };
//! assert_eq!(n.version, 2);
//!
//! // A request, answered by the application, zero-copy.
//! let id = client.send(&RequestKind::Echo { payload: Bytes::from_static(b"hi") }).unwrap();
//! to_server.extend_from_slice(&client.outbox().take_all());
//! let Some(Event::Request(req)) = server.poll_event(&mut to_server, now) else { panic!() };
//! let RequestKind::Echo { payload } = req.kind else { panic!() };
//! server.respond(req.id, Response::EchoReply { payload }, now);
//! to_client.extend_from_slice(&server.outbox().take_all());
//! let ev = client.poll_event(&mut to_client).unwrap().unwrap();
//! assert_eq!(ev, ClientEvent::Response { id, response: Response::EchoReply { payload: Bytes::from_static(b"hi") } });
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
#![doc(test(attr(deny(warnings))))]

#[cfg(feature = "async-client")]
pub mod async_client;
pub mod body;
#[cfg(feature = "client")]
pub mod client;
pub mod decoder;
pub mod error;
pub mod frame;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
#[cfg(feature = "io")]
pub mod io;
pub mod message;
pub mod session;
mod table;
#[cfg(feature = "tokio")]
pub mod tokio;

/// The `bytes` crate, whose `Bytes`/`BytesMut` appear throughout this crate's API.
pub use bytes;
pub use decoder::FrameDecoder;
pub use error::{BodyError, DecodeError, ErrorCode};
pub use frame::{Flags, Frame, FrameHeader, MessageType, PREFACE};
pub use message::Message;
