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
//! * [`frame`]: the header layout, type registry and flags (§2), generated from the message
//!   table, which `spec/registry.json` checks;
//! * [`decoder`]: the streaming frame decoder — bytes split anywhere in, frames out, length limit
//!   checked before anything is reserved (§2, §8.1); in place ([`FrameDecoder::decode_ref`]) or
//!   owned;
//! * [`body`]: the body encoding as a serde data format with a borrowing deserializer (§6), and
//!   the rkyv path (§6.9, feature `rkyv`);
//! * [`message`]: one type per message (§4), generic over the storage of its octets
//!   (`Message<&[u8]>` borrowed, `Message` sharing `Bytes`), and the receiver rules (§5.4);
//! * [`session`]: the sans-IO server and client state machines (§3.5) — handshake, version
//!   negotiation, limits, request IDs, cancel, drain, timeouts; each owns its receive buffer
//!   and output queue;
//! * [`service`]: the [`service::Service`] trait a server implements, one method per request
//!   type of the table, and its dispatch;
//! * `io`: reading into and writing from a session over `std::io` (feature `io`); `client`: a
//!   blocking client (feature `client`, on by default); `async_client`: a tokio client (feature
//!   `async-client`); `tokio`: a `tokio_util` codec (feature `tokio`); `fuzzing`: the harnesses
//!   the fuzz targets call (feature `fuzzing`).
//!
//! With no feature at all the crate is the pure core: no socket, thread or clock anywhere.
//!
//! ## Features
//!
//! | feature | default | enables |
//! |---|---|---|
//! | `client` | yes | `client::Client`, the blocking client over std TCP and Unix sockets, with connect, handshake, per-request, read and write timeouts; implies `io` |
//! | `io` | | `io`: a session's input from a `std::io::Read`, its output to a `std::io::Write` |
//! | `tokio` | | `tokio::FrameCodec`, a `tokio_util::codec` `Decoder`/`Encoder` of frames |
//! | `async-client` | | `async_client::AsyncClient` for tokio; pulls in tokio with `rt`, `net`, `io-util`, `time`, `sync` and `macros`, and runs on the application's runtime, which needs its I/O and time drivers (`#[tokio::main]`, or `Builder::enable_all`) |
//! | `rkyv` | | `body::rkyv`, rkyv's validated access for archiving an application's own types (the protocol's archived SUM needs no feature) |
//! | `arbitrary` | | `arbitrary::Arbitrary` for the message types |
//! | `fuzzing` | | `fuzzing`, the harnesses of the fuzz targets; implies `arbitrary` |
//!
//! ## Entry points and their examples
//!
//! Each runs to completion on its own, without a server:
//! `cargo run -p echowire-codec --example NAME --all-features`.
//!
//! | entry point | example |
//! |---|---|
//! | frames by hand: [`Message::encode`], [`FrameDecoder`], [`message::decode`] (no tokio, no feature) | `frames` |
//! | [`session::ServerSession`]: a server's event loop, by hand | `server_session` |
//! | [`session::ClientSession`]: the sans-IO client and its deadlines | `client_session` |
//! | `client::Client`, the blocking client, against an in-process server on 127.0.0.1 | `blocking_client` |
//! | `async_client::AsyncClient` (feature `async-client`) against an in-process server | `async_client` |
//! | a [`service::Service`] served over a Unix socket pair, with the blocking client | `demo` |
//!
//! ## Example: a client and a server session talking in memory
//! ```
//! use std::time::Instant;
//! use bytes::Bytes;
//! use echowire_codec::message::{Echo, EchoReply, Message};
//! use echowire_codec::session::*;
//!
//! let now = Instant::now();
//! let mut server = ServerSession::new(ServerConfig::default(), now);
//! let mut client = ClientSession::new(ClientConfig::default(), now);
//!
//! // Handshake: preface + HELLO one way, WELCOME the other.
//! server.handle_input(&client.take_output());
//! assert!(server.poll_event(now).is_none());
//! client.handle_input(&server.take_output());
//! let Some(ClientEvent::Welcome(n)) = client.poll_event(now).unwrap() else { panic!() };
//! assert_eq!(n.version, 2);
//!
//! // A request, answered by the application; the payload is never copied.
//! let echo: Message = Message::Echo(Echo { payload: Bytes::from_static(b"hi") });
//! let id = client.send(&echo, now).unwrap();
//! server.handle_input(&client.take_output());
//! let Some(Event::Request { id: rid, message: Message::Echo(e) }) = server.poll_event(now) else {
//!     panic!()
//! };
//! let reply: Message = Message::EchoReply(EchoReply { payload: e.payload });
//! assert!(server.respond(rid, &reply, now));
//! client.handle_input(&server.take_output());
//! let ev = client.poll_event(now).unwrap().unwrap();
//! assert_eq!(ev, ClientEvent::Response { id, response: reply });
//! ```
#![forbid(unsafe_code)]
// On docs.rs (`--cfg docsrs`, nightly) every feature-gated item is marked with its feature:
// `doc_cfg` now derives the marks from the `#[cfg]`s themselves (it absorbed `doc_auto_cfg`).
#![cfg_attr(docsrs, feature(doc_cfg))]
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
pub mod service;
pub mod session;
mod table;
#[cfg(feature = "tokio")]
pub mod tokio;

/// The packaged README's Rust examples, compiled and run with the doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The `bytes` crate, whose `Bytes`/`BytesMut` appear throughout this crate's API.
pub use bytes;
pub use decoder::FrameDecoder;
pub use error::{BodyError, DecodeError, ErrorCode};
pub use frame::{Flags, Frame, FrameHeader, MessageType, PREFACE};
pub use message::Message;
