//! The protocol as sans-IO state machines (spec §3): [`ServerSession`] and [`ClientSession`].
//!
//! In the manner of quinn-proto: no sockets, threads or clocks inside. Time comes in as `now`;
//! received bytes come in as the caller's `BytesMut`; output goes into an [`Outbox`] the caller
//! writes to its socket. The reference server (three I/O models), the blocking client, the
//! conformance runner, the tests and the fuzz targets all drive these same types.
//!
//! ## Driving a [`ServerSession`]
//! 1. While [`ServerSession::wants_read`], read from the socket with
//!    [`ServerSession::read_with`] (the session sizes the read and owns the buffer), or hand it
//!    octets read elsewhere with [`ServerSession::handle_input`]. On EOF call
//!    [`ServerSession::handle_eof`].
//! 2. Call [`ServerSession::poll_event`] until it returns `None`. Each [`Event::Request`] must
//!    eventually be answered with [`ServerSession::respond`] (inline or from a worker; the
//!    generated [`crate::service::dispatch`] calls the application's method for its type);
//!    [`Event::Cancel`] asks the driver to drop queued work for that ID.
//! 3. Write what [`ServerSession::poll_transmit`] lends (vectored) and report the octets written
//!    with [`ServerSession::handle_written`]; partial writes stay queued. (A driver without a
//!    socket takes everything at once with [`ServerSession::take_output`].)
//! 4. Arm a timer for [`ServerSession::poll_timeout`]; when it fires call
//!    [`ServerSession::handle_timeout`].
//! 5. When [`ServerSession::is_finished`], do a lingering close: shut down the write side, read
//!    and discard until EOF or a short deadline, close (spec §3.10).

mod client;
mod ids;
mod outbox;
mod server;
mod wire;

pub use client::{
    ClientConfig, ClientError, ClientEvent, ClientSession, DEFAULT_CLIENT_HANDSHAKE_TIMEOUT,
    DEFAULT_REQUEST_TIMEOUT, Negotiated,
};
pub use outbox::{Outbox, SpareBuffers, ZERO_COPY_MIN};
pub use server::{
    CloseReason, DEFAULT_DRAIN_TIMEOUT, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_OUTSTANDING, DEFAULT_MAX_PENDING_OUTPUT, DRAIN_HANDSHAKE_GRACE, Event,
    ServerConfig, ServerSession, SessionState, SessionStats,
};
pub use wire::READ_CHUNK;
