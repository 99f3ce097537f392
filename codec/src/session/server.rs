//! The server side of a connection (spec §3.5, the lifecycle table).
//!
//! ```text
//!  Preface --8 preface bytes--> Handshake --HELLO, version in common--> Open
//!     |                            |                                    |  \
//!     | bad byte / timeout         | other frame / no common version    |   GOODBYE (either way),
//!     v                            v  / timeout                         |   peer EOF
//!  Closing <---------------------------------------- connection error --+    v
//!     |                                                                 Draining --no outstanding--> Closing
//!     v  (outbox flushed)                                                                               |
//!  Finished: the driver does a lingering close                      <-----------------------------------+
//! ```
//!
//! Every request the session emits is answered exactly once — by the application through
//! [`ServerSession::respond`], or by the session itself (ERROR) — unless a connection error ends
//! the connection, whose ERROR (request ID 0) stands for every request still outstanding.

use std::collections::BTreeMap;
use std::io::IoSlice;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::ids::IdSet;
use super::wire::Wire;
use super::{Outbox, SpareBuffers};
use crate::decoder::FrameDecoder;
use crate::error::{DecodeError, ErrorCode};
use crate::frame::{
    BASE_VERSION, DEFAULT_MAX_FRAME_SIZE, FRAME_OVERHEAD, FrameHeader, MAX_MAX_FRAME_SIZE,
    MIN_MAX_FRAME_SIZE, MessageType, PREFACE, SUPPORTED_VERSIONS,
};
use crate::message::{
    self, CAP_DEFINED, DecodeContext, EncodeError, MAX_COMPUTE_COST, Message, Role, Str,
};

/// Default `max_outstanding` announced in WELCOME.
pub const DEFAULT_MAX_OUTSTANDING: u32 = 1024;
/// Default cap of queued output per connection before the session stops taking input (§8.4).
pub const DEFAULT_MAX_PENDING_OUTPUT: usize = 1 << 20;
/// Default handshake timeout (spec §8.3: RECOMMENDED 10 s, range 1 s ..= 30 s).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default idle timeout (spec §8.3: RECOMMENDED 300 s, range 1 s ..= 3600 s).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a connection still in its handshake when a drain starts may take to complete its
/// HELLO (see [`ServerSession::start_drain`]).
pub const DRAIN_HANDSHAKE_GRACE: Duration = Duration::from_secs(1);
/// Default drain timeout (spec §8.3: RECOMMENDED 30 s, range 1 s ..= 600 s).
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A server session's settings (what WELCOME announces, and the local limits). The defaults are
/// the constants above, which the reference server's configuration and CLI use too.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Largest `Length` accepted (announced in WELCOME).
    pub max_frame_size: u32,
    /// Requests a client may have outstanding (announced in WELCOME).
    pub max_outstanding: u32,
    /// Above this many queued output bytes the session stops taking input (backpressure).
    pub max_pending_output: usize,
    /// Time allowed from connect to a complete HELLO.
    pub handshake_timeout: Duration,
    /// Time without a complete frame, while nothing is outstanding, before GOODBYE IDLE_TIMEOUT.
    pub idle_timeout: Option<Duration>,
    /// Bound of every drain, whoever started it, and of writing queued output once closing
    /// (spec §3.8, §3.10): when it expires the connection is closed abortively.
    pub drain_timeout: Duration,
    /// Application types (`0x80..=0xFF`) this server implements: bit `code - 0x80`. Frames of
    /// the others are answered UNKNOWN_TYPE at rule 5 of spec §2.7, before their flags and ID
    /// are looked at (§4.1). The default implements none.
    pub application_types: u128,
    /// Lowest version accepted.
    pub min_version: u8,
    /// Highest version accepted.
    pub max_version: u8,
    /// Capabilities the server accepts.
    pub capabilities: u32,
    /// The WELCOME agent string.
    pub agent: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_outstanding: DEFAULT_MAX_OUTSTANDING,
            max_pending_output: DEFAULT_MAX_PENDING_OUTPUT,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            application_types: 0,
            min_version: *SUPPORTED_VERSIONS.start(),
            max_version: *SUPPORTED_VERSIONS.end(),
            capabilities: CAP_DEFINED,
            agent: concat!("echowire/", env!("CARGO_PKG_VERSION")).into(),
        }
    }
}

/// Where a server session is in the lifecycle (spec §3.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionState {
    /// Waiting for the 8 preface bytes; `matched` received so far.
    Preface {
        /// Preface bytes received and correct.
        matched: usize,
    },
    /// Waiting for HELLO.
    Handshake,
    /// Serving requests.
    Open,
    /// GOODBYE sent or received, or the peer half-closed: answering what is outstanding.
    Draining,
    /// Nothing more will be read; once the outbox is flushed, close.
    Closing,
}

/// Why a session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// Graceful: GOODBYE exchanged or half-close, everything answered.
    Graceful,
    /// The session sent a connection error.
    LocalError(ErrorCode),
    /// The peer sent ERROR with request ID 0.
    PeerError(ErrorCode),
    /// The peer closed before completing the handshake.
    PeerClosedEarly,
    /// A drain, or the write of queued output while closing, outlived the drain timeout: the
    /// connection is closed abortively (spec §3.8, §3.10).
    DrainTimeout,
}

/// Counters of one session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Frames received.
    pub frames_in: u64,
    /// Frames queued for sending.
    pub frames_out: u64,
    /// Bytes of frames received (preface included).
    pub bytes_in: u64,
    /// ERROR frames sent, by code.
    pub errors_sent: BTreeMap<u16, u64>,
}

/// What the application must act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Answer this request with [`ServerSession::respond`] (or let
    /// [`crate::service::dispatch`] call the [`crate::service::Service`] method that serves
    /// it). Its byte and string fields are slices of the frame it arrived in.
    Request {
        /// The request ID to answer with.
        id: u32,
        /// The request.
        message: Message<Bytes>,
    },
    /// The client cancelled this outstanding request: if it has not started, drop it and respond
    /// ERROR CANCELLED; if it is running or done, do nothing (its normal response stands).
    Cancel {
        /// The request ID.
        id: u32,
    },
}

/// The server side of one connection. See [`crate::session`] for how to drive it.
///
/// A session is `Clone`: a copy continues independently from the same point, which is how the
/// conformance oracle explores the orders a server may choose (a clone per choice).
#[derive(Clone, Debug)]
pub struct ServerSession {
    /// Shared by every connection of a server (one reference count, not a copy per connection:
    /// an idle connection's memory is mostly its session).
    config: Arc<ServerConfig>,
    state: SessionState,
    decoder: FrameDecoder,
    version: u8,
    capabilities: u32,
    peer_max_frame: u32,
    outstanding: IdSet,
    /// The receive buffer and the output queue.
    wire: Wire,
    handshake_deadline: Instant,
    last_activity: Instant,
    peer_eof: bool,
    goodbye_sent: bool,
    close_reason: Option<CloseReason>,
    stats: SessionStats,
    /// The latest time an input carried; the start of a drain or close entered without one.
    now: Instant,
    /// When the current DRAINING or CLOSING state began (spec §8.3: the drain period).
    phase_since: Instant,
    /// The drain timeout expired: the driver must close abortively, discarding queued output.
    abort: bool,
    /// A drain was requested before the handshake completed: a HELLO already buffered is still
    /// answered (WELCOME, then GOODBYE SHUTTING_DOWN); without one the connection closes.
    drain_requested: bool,
}

impl ServerSession {
    /// A session for a connection accepted at `now`.
    /// A server passes the same `Arc<ServerConfig>` to every connection's session.
    pub fn new(config: impl Into<Arc<ServerConfig>>, now: Instant) -> Self {
        let mut config: Arc<ServerConfig> = config.into();
        let max = config
            .max_frame_size
            .clamp(MIN_MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE);
        if max != config.max_frame_size {
            Arc::make_mut(&mut config).max_frame_size = max;
        }
        ServerSession {
            handshake_deadline: later(now, config.handshake_timeout),
            last_activity: now,
            config,
            state: SessionState::Preface { matched: 0 },
            // §2.2: until WELCOME announces the limit, the first frame (HELLO) is held to 4096.
            decoder: FrameDecoder::new(MIN_MAX_FRAME_SIZE).with_offset(PREFACE.len() as u64),
            version: BASE_VERSION,
            capabilities: 0,
            peer_max_frame: MIN_MAX_FRAME_SIZE,
            outstanding: IdSet::default(),
            wire: Wire::default(),
            peer_eof: false,
            goodbye_sent: false,
            close_reason: None,
            stats: SessionStats::default(),
            now,
            phase_since: now,
            abort: false,
            drain_requested: false,
        }
    }

    // ---- getters ----------------------------------------------------------------------------

    /// The lifecycle state.
    pub fn state(&self) -> SessionState {
        self.state
    }

    /// The negotiated version (the base version before the handshake).
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The negotiated capabilities.
    pub fn capabilities(&self) -> u32 {
        self.capabilities
    }

    /// The session's settings.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Requests emitted and not yet answered.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// Whether `id` is outstanding.
    pub fn is_outstanding(&self, id: u32) -> bool {
        self.outstanding.contains(id)
    }

    /// The output queue (read-only: a driver writes it with [`ServerSession::poll_transmit`]
    /// and reports what went out with [`ServerSession::handle_written`]).
    pub fn outbox(&self) -> &Outbox {
        &self.wire.outbox
    }

    /// Octets of output waiting for the socket.
    pub fn pending_output(&self) -> usize {
        self.wire.outbox.len()
    }

    /// Octets of input received and not yet consumed.
    pub fn pending_input(&self) -> usize {
        self.wire.input.len()
    }

    /// Memory the connection's buffers hold: the receive buffer's capacity and the queued
    /// output (what a server's memory budget charges).
    pub fn buffered_memory(&self) -> usize {
        self.wire.input.capacity() + self.wire.outbox.len()
    }

    /// Gives back the memory a quiet connection does not need: the receive buffer and the
    /// output queue's buffers (if empty) and the outstanding-request set's table (if empty). A
    /// driver calls it when the connection has been idle for a while, not after every turn
    /// (the next burst would allocate them again).
    pub fn release_memory(&mut self) {
        self.wire.release();
        self.outstanding.release();
    }

    /// The empty I/O buffers, for a driver that passes them from one connection's turn to the
    /// next ([`ServerSession::reuse_buffers`]): the receive buffer if empty, the output queue's
    /// if empty.
    pub fn take_spare_buffers(&mut self) -> (Option<BytesMut>, Option<SpareBuffers>) {
        self.wire.take_spare()
    }

    /// Gives the connection spare buffers; hands back those it does not take.
    pub fn reuse_buffers(
        &mut self,
        input: Option<BytesMut>,
        output: Option<SpareBuffers>,
    ) -> (Option<BytesMut>, Option<SpareBuffers>) {
        self.wire.reuse(input, output)
    }

    /// Counters.
    pub fn stats(&self) -> &SessionStats {
        &self.stats
    }

    /// Why the session ended, once it has.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        self.close_reason.as_ref()
    }

    /// Whether the driver should read more input now: not closing, peer not at EOF, and the
    /// output queue below its cap (backpressure, spec §8.4).
    pub fn wants_read(&self) -> bool {
        !self.peer_eof
            && !matches!(self.state, SessionState::Closing)
            && self.wire.outbox.len() <= self.config.max_pending_output
    }

    /// The session is done: the driver flushes nothing more and closes — lingering (spec
    /// §3.10), or abortively if [`ServerSession::is_abortive`].
    pub fn is_finished(&self) -> bool {
        self.state == SessionState::Closing && (self.wire.outbox.is_empty() || self.abort)
    }

    /// The drain timeout expired (spec §3.8, §3.10): the driver must close abortively (TCP:
    /// `SO_LINGER` 0, so the peer sees a reset) without writing what is still queued.
    pub fn is_abortive(&self) -> bool {
        self.abort
    }

    /// When [`ServerSession::handle_timeout`] must next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            SessionState::Preface { .. } | SessionState::Handshake => Some(self.handshake_deadline),
            SessionState::Open if self.outstanding.is_empty() => self
                .config
                .idle_timeout
                .map(|t| later(self.last_activity, t)),
            SessionState::Open => None,
            SessionState::Draining => Some(self.drain_deadline()),
            SessionState::Closing if !self.wire.outbox.is_empty() && !self.abort => {
                Some(self.drain_deadline())
            }
            SessionState::Closing => None,
        }
    }

    fn drain_deadline(&self) -> Instant {
        later(self.phase_since, self.config.drain_timeout)
    }

    // ---- inputs -----------------------------------------------------------------------------

    /// The peer closed its write side (read returned 0). Keep calling
    /// [`ServerSession::poll_event`]: frames already buffered are still served (spec §3.9).
    pub fn handle_eof(&mut self) {
        self.peer_eof = true;
    }

    /// Timers: handshake, idle and drain timeouts (spec §8.3).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        match self.state {
            SessionState::Preface { .. } | SessionState::Handshake
                if now >= self.handshake_deadline && self.drain_requested =>
            {
                self.drain_requested = false;
                self.enter(SessionState::Closing);
                self.close_reason.get_or_insert(CloseReason::Graceful);
            }
            SessionState::Preface { .. } | SessionState::Handshake
                if now >= self.handshake_deadline =>
            {
                self.connection_error(
                    ErrorCode::HANDSHAKE_TIMEOUT,
                    "handshake not completed in time".into(),
                );
            }
            SessionState::Open if self.outstanding.is_empty() => {
                if !self.wire.outbox.is_empty() {
                    // Still transmitting (perhaps to a slow reader): not idle (spec §8.3).
                    self.last_activity = now;
                    return;
                }
                if let Some(idle) = self.config.idle_timeout
                    && now >= later(self.last_activity, idle)
                {
                    self.send_goodbye(ErrorCode::IDLE_TIMEOUT, "idle timeout");
                    self.enter(SessionState::Draining);
                    self.maybe_finish();
                }
            }
            SessionState::Draining | SessionState::Closing
                if !self.is_finished() && now >= self.drain_deadline() =>
            {
                // §3.8/§3.10: a clean close would claim the unanswered requests were not
                // processed; past the drain timeout the server can no longer say, so it resets.
                self.outstanding.clear();
                self.wire.outbox.clear();
                self.abort = true;
                self.enter(SessionState::Closing);
                self.close_reason = Some(CloseReason::DrainTimeout);
            }
            _ => {}
        }
    }

    /// Moves to `state`, starting its period (spec §8.3) if it is a new one.
    fn enter(&mut self, state: SessionState) {
        if self.state != state {
            self.phase_since = self.now;
        }
        self.state = state;
    }

    /// Refuses the connection before reading anything: ERROR `code` (ID 0, version 1) and close.
    /// For a server at its connection limit (CONNECTION_LIMIT) or a Unix-socket peer whose
    /// credentials are not allowed (UNAUTHORIZED), spec §8.4, §8.5.
    pub fn refuse(&mut self, code: ErrorCode, message: &str) {
        self.connection_error(code, message.into());
    }

    /// Starts a graceful shutdown (spec §3.8): GOODBYE SHUTTING_DOWN, answer what is
    /// outstanding, refuse new requests with SHUTTING_DOWN, then close.
    ///
    /// A connection still in its handshake is not dropped unanswered: a HELLO that is buffered
    /// or arrives within [`DRAIN_HANDSHAKE_GRACE`] gets its WELCOME followed by GOODBYE
    /// SHUTTING_DOWN, so the client learns the server is going rather than seeing a bare close
    /// (a client that connected just as the server began shutting down, or as it handed its
    /// listeners to a successor). Without a HELLO by then, or at the peer's EOF, the connection
    /// closes without a frame.
    ///
    /// `now` starts the drain's clock (spec §3.8: the drain timeout counts from the drain, not
    /// from the last time the connection was serviced).
    pub fn start_drain(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.drain();
    }

    fn drain(&mut self) {
        match self.state {
            SessionState::Preface { .. } | SessionState::Handshake => {
                self.drain_requested = true;
                self.handshake_deadline = self
                    .handshake_deadline
                    .min(later(self.now, DRAIN_HANDSHAKE_GRACE));
            }
            SessionState::Open | SessionState::Draining => {
                self.send_goodbye(ErrorCode::SHUTTING_DOWN, "server is shutting down");
                self.enter(SessionState::Draining);
                self.maybe_finish();
            }
            SessionState::Closing => {}
        }
    }

    /// Reads once into the session's receive buffer through `read`, if the session wants input
    /// ([`ServerSession::wants_read`]): `read(buf, max)` appends at most `max` octets to `buf`
    /// and returns how many; 0 is the peer's end of stream, which the session then handles
    /// ([`ServerSession::handle_eof`]). The session sizes the read (never more than one
    /// maximum-size frame buffered; a large frame read into a buffer of exactly its size, see
    /// `src/session/wire.rs`), so the driver never parses a `Length`. Returns what `read` returned, or
    /// `Ok(None)` if the session wants no input now.
    pub fn read_with<E>(
        &mut self,
        read: impl FnOnce(&mut BytesMut, usize) -> Result<usize, E>,
    ) -> Result<Option<usize>, E> {
        if !self.wants_read() {
            return Ok(None);
        }
        let frames_sized = matches!(self.state, SessionState::Open | SessionState::Draining);
        let n = self.wire.read_with(&self.decoder, frames_sized, read)?;
        if n == Some(0) {
            self.handle_eof();
        }
        Ok(n)
    }

    /// Appends octets received elsewhere (a driver that reads into its own buffer, tests).
    pub fn handle_input(&mut self, octets: &[u8]) {
        self.wire.handle_input(octets);
    }

    /// Processes buffered input until a request or cancel needs the application, input runs
    /// out, or backpressure stops it. Protocol replies (WELCOME, PONG, ERROR) are queued here.
    ///
    /// Frames are decoded in place from the receive buffer ([`FrameDecoder::decode_ref`]): a
    /// frame that needs the application only for a moment, or not at all (PING, CANCEL, a frame
    /// rejected with ERROR), costs no allocation and no reference count. Only a request handed
    /// out is split off the buffer, and only if it has byte or string fields.
    #[must_use]
    pub fn poll_event(&mut self, now: Instant) -> Option<Event> {
        self.now = self.now.max(now);
        loop {
            if self.wire.outbox.len() > self.config.max_pending_output {
                return None;
            }
            match self.state {
                SessionState::Closing => {
                    self.wire.input.clear();
                    return None;
                }
                SessionState::Preface { matched } => {
                    if !self.handle_preface(matched) {
                        if self.peer_eof && matches!(self.state, SessionState::Preface { .. }) {
                            self.enter(SessionState::Closing);
                            self.close_reason = Some(CloseReason::PeerClosedEarly);
                        }
                        self.close_if_drain_requested();
                        return None;
                    }
                    continue;
                }
                _ => {}
            }
            let (header, offset, total) = match self.decoder.decode_ref(&self.wire.input) {
                Ok(Some(f)) => (f.header, f.offset, f.encoded_len()),
                Ok(None) => {
                    if self.peer_eof {
                        self.handle_end_of_input();
                    }
                    self.close_if_drain_requested();
                    self.maybe_finish();
                    return None;
                }
                Err(e) => {
                    self.decode_failure(e);
                    continue;
                }
            };
            self.stats.frames_in += 1;
            self.stats.bytes_in += total as u64;
            self.last_activity = now;
            let buffered = self.wire.input.len();
            let event = self.handle_frame(header, offset, total);
            if self.wire.input.len() == buffered {
                // Dropped here unless a request handed out took it (split off the buffer).
                let n = total.min(buffered);
                bytes::Buf::advance(&mut self.wire.input, n);
            }
            if self.drain_requested && self.state == SessionState::Open {
                // The HELLO buffered before the shutdown was answered; now the drain.
                self.drain_requested = false;
                self.drain();
            }
            if let Some(event) = event {
                return Some(event);
            }
        }
    }

    /// Fills `dst` with the queued output, in order; returns how many slots it used. Write them
    /// (one vectored write) and report what went out with [`ServerSession::handle_written`].
    #[must_use]
    pub fn poll_transmit<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        self.wire.poll_transmit(dst)
    }

    /// `n` octets of the output were written; what the socket did not take stays queued.
    pub fn handle_written(&mut self, n: usize) {
        self.wire.handle_written(n);
    }

    /// Everything queued, as one buffer (tests and simple drivers).
    pub fn take_output(&mut self) -> bytes::Bytes {
        self.wire.take_output()
    }

    /// Answers request `id`. Returns `false` (and sends nothing) if `id` is not outstanding —
    /// already answered, or the connection failed meanwhile.
    pub fn respond<B: message::Octets>(
        &mut self,
        id: u32,
        response: &Message<B>,
        now: Instant,
    ) -> bool {
        self.now = self.now.max(now);
        if self.state == SessionState::Closing || !self.outstanding.remove(id) {
            return false;
        }
        self.last_activity = now;
        self.queue_response(id, response);
        self.maybe_finish();
        true
    }

    // ---- internals --------------------------------------------------------------------------

    /// The peer ended its stream during a handshake that a drain interrupted: close.
    fn close_if_drain_requested(&mut self) {
        if self.drain_requested
            && self.peer_eof
            && matches!(
                self.state,
                SessionState::Preface { .. } | SessionState::Handshake
            )
        {
            self.drain_requested = false;
            self.enter(SessionState::Closing);
            self.close_reason.get_or_insert(CloseReason::Graceful);
        }
    }

    /// Consumes preface bytes; `true` once all 8 matched.
    fn handle_preface(&mut self, mut matched: usize) -> bool {
        // §3.1: the first byte that differs ends the connection.
        let take = match crate::decoder::match_preface(matched, &self.wire.input) {
            Ok(take) => take,
            Err(e) => {
                self.decode_failure(e);
                return false;
            }
        };
        bytes::Buf::advance(&mut self.wire.input, take);
        self.stats.bytes_in += take as u64;
        matched += take;
        if matched == PREFACE.len() {
            self.state = SessionState::Handshake;
            return true;
        }
        self.state = SessionState::Preface { matched };
        false
    }

    /// EOF with everything complete consumed: half-close, or a truncated frame.
    fn handle_end_of_input(&mut self) {
        if let Err(e) = self.decoder.decode_eof(&mut self.wire.input) {
            self.wire.input.clear();
            // §3.9: the truncated frame is reported, what is outstanding is still answered.
            let code = e.code();
            self.queue_error(0, code, e.to_string());
        }
        match self.state {
            SessionState::Open => {
                self.enter(SessionState::Draining);
                self.maybe_finish();
            }
            SessionState::Handshake => {
                self.enter(SessionState::Closing);
                self.close_reason
                    .get_or_insert(CloseReason::PeerClosedEarly);
            }
            SessionState::Draining => self.maybe_finish(),
            _ => {}
        }
    }

    fn decode_failure(&mut self, e: DecodeError) {
        if e.is_connection_error() {
            self.connection_error(e.code(), e.to_string());
        } else {
            self.queue_error(e.request_id(), e.code(), e.to_string());
        }
    }

    /// Applies the rules to the frame at the front of the receive buffer (`total` octets). A
    /// request handed out as an [`Event`] is split off the buffer here; otherwise the caller
    /// drops the frame.
    fn handle_frame(&mut self, header: FrameHeader, offset: u64, total: usize) -> Option<Event> {
        if self.state == SessionState::Handshake {
            self.handle_handshake(header, offset, total);
            return None;
        }
        let id = header.request_id;
        // §2.7 rule 2 (state) before rule 3 (version): a second HELLO is PROTOCOL_ERROR whatever
        // its header version (it is normally written in version 1, §3.2).
        if header.msg_type == MessageType::Hello {
            self.connection_error(
                ErrorCode::PROTOCOL_ERROR,
                "HELLO after the handshake".into(),
            );
            return None;
        }
        // §2.7 rules 3 and 4 come before anything else is looked at, so that no ERROR is ever
        // sent with an ID that is outstanding (it would be ambiguous).
        if header.version != self.version {
            self.decode_failure(DecodeError::VersionMismatch {
                offset,
                request_id: id,
                found: header.version,
                expected: self.version,
            });
            return None;
        }
        if id != 0
            && !matches!(header.msg_type, MessageType::Cancel | MessageType::Error)
            && self.outstanding.contains(id)
        {
            self.duplicate_id(id);
            return None;
        }
        // §2.7 rule 5, §4.1: an application type this server does not implement is UNKNOWN_TYPE
        // before its flags and ID are looked at.
        if let MessageType::Application(code) = header.msg_type
            && self.config.application_types & (1u128 << (code - MessageType::APPLICATION_START))
                == 0
        {
            self.queue_error(
                id,
                ErrorCode::UNKNOWN_TYPE,
                format!("application type {code:#04x} is not implemented by this server"),
            );
            return None;
        }
        let ctx = DecodeContext::server(self.version, self.capabilities);
        // Decoded in place; octet fields become ranges of the buffer until the frame is split
        // off (only if the request is handed out).
        let decoded = {
            let input = &self.wire.input;
            let base = input.as_ptr() as usize;
            message::decode_parts(&header, offset, &input[FRAME_OVERHEAD..total], &ctx).map(|m| {
                m.map(|s: &[u8]| {
                    let start = s.as_ptr() as usize - base;
                    start..start + s.len()
                })
            })
        };
        let msg: Message<Range<usize>> = match decoded {
            Ok(msg) => msg,
            Err(_) if header.msg_type == MessageType::Error && id == 0 => {
                // Document 1.2 (§2.7, §3.10): a client's ERROR with ID 0 ends the connection
                // whatever its flags and body; an answer could only be another ERROR with ID 0,
                // which the client would take for the end of the connection itself.
                let body = &self.wire.input[FRAME_OVERHEAD..total];
                let code = match body {
                    [a, b, ..] => ErrorCode(u16::from_be_bytes([*a, *b])),
                    _ => ErrorCode::MALFORMED_BODY,
                };
                self.peer_gave_up(code);
                return None;
            }
            Err(_) if header.msg_type == MessageType::Cancel && self.outstanding.contains(id) => {
                // Document 1.2 (§2.7, §3.7): a faulty CANCEL naming an outstanding request is
                // ignored; an ERROR with that ID would be a second response to the request.
                return None;
            }
            Err(e) => {
                self.decode_failure(e);
                return None;
            }
        };
        let mut ping = None;
        match &msg {
            Message::Hello(_) => {
                // Caught above, before the version rule; kept so the match stays exhaustive.
                self.connection_error(
                    ErrorCode::PROTOCOL_ERROR,
                    "HELLO after the handshake".into(),
                );
                return None;
            }
            Message::Cancel(_) => {
                // §3.7: a CANCEL for an ID that is not outstanding is ignored (it raced the reply).
                return self
                    .outstanding
                    .contains(id)
                    .then_some(Event::Cancel { id });
            }
            Message::Goodbye(_) => {
                if self.state == SessionState::Open {
                    self.enter(SessionState::Draining);
                }
                self.maybe_finish();
                return None;
            }
            Message::Error(e) => {
                if id == 0 {
                    self.peer_gave_up(e.code);
                }
                return None;
            }
            // PING is answered by the session itself, as soon as it is read (§3.6), but only
            // once it has passed the same rule-10 checks as every other request.
            Message::Ping(p) => ping = Some(p.data),
            Message::Compute(c) if !c.cost_is_valid() => {
                // §2.7 rule 10.1: the request's own fields first, so that a request that can
                // never succeed is never reported as retryable (SHUTTING_DOWN, BUSY).
                self.queue_error(
                    id,
                    ErrorCode::INVALID_ARGUMENT,
                    format!("COMPUTE cost {} is outside 1..={MAX_COMPUTE_COST}", c.cost),
                );
                return None;
            }
            // Types a server never receives were rejected by `decode` (direction rule).
            other if !other.msg_type().is_request() => {
                let t = other.msg_type();
                self.queue_error(
                    id,
                    ErrorCode::UNEXPECTED_MESSAGE,
                    format!("{t} is not sent to a server"),
                );
                return None;
            }
            _ => {}
        }
        if self.state == SessionState::Draining {
            // §3.8: after GOODBYE (either way) new requests — PING included — are refused, not
            // silently dropped. The client started or saw the drain: no retry hint (§4.8).
            self.queue_error(
                id,
                ErrorCode::SHUTTING_DOWN,
                "connection is draining".into(),
            );
            return None;
        }
        if self.outstanding.len() >= self.config.max_outstanding as usize {
            self.queue_error(
                id,
                ErrorCode::TOO_MANY_OUTSTANDING,
                format!(
                    "more than {} requests outstanding",
                    self.config.max_outstanding
                ),
            );
            return None;
        }
        if let Some(data) = ping {
            // PING: answered now, so it is never outstanding.
            self.queue_response(id, &Message::<&[u8]>::Pong(message::Pong { data }));
            return None;
        }
        self.outstanding.insert(id);
        // Split off only if a field needs the octets (ECHO's payload, COMPUTE's seed).
        let input = &mut self.wire.input;
        let mut frame: Option<Bytes> = None;
        let message = msg.map(|r| {
            frame
                .get_or_insert_with(|| input.split_to(total).freeze())
                .slice(r)
        });
        if frame.is_none() {
            bytes::Buf::advance(input, total);
        }
        Some(Event::Request { id, message })
    }

    fn duplicate_id(&mut self, id: u32) {
        // §2.5: reusing an outstanding ID makes every later response ambiguous: connection error.
        self.connection_error(
            ErrorCode::DUPLICATE_REQUEST_ID,
            format!("request ID {id} is already outstanding"),
        );
    }

    fn handle_handshake(&mut self, header: FrameHeader, offset: u64, total: usize) {
        // §3.2: the first frame MUST be HELLO.
        if header.msg_type != MessageType::Hello {
            let t = header.msg_type;
            self.connection_error(
                ErrorCode::HANDSHAKE_REQUIRED,
                format!("expected HELLO, got {t}"),
            );
            return;
        }
        let ctx = DecodeContext {
            receiver: Role::Server,
            version: None,
            capabilities: 0,
        };
        let body = &self.wire.input[FRAME_OVERHEAD..total];
        let hello = match message::decode_parts(&header, offset, body, &ctx) {
            Ok(Message::Hello(h)) => (
                h.min_version,
                h.max_version,
                h.max_frame_size,
                h.capabilities,
            ),
            Ok(other) => {
                // Not reachable: `decode` maps a HELLO frame to `Message::Hello` or an error.
                let t = other.msg_type();
                self.connection_error(
                    ErrorCode::HANDSHAKE_REQUIRED,
                    format!("expected HELLO, got {t}"),
                );
                return;
            }
            Err(e) => {
                // A HELLO that does not decode cannot open the connection, whatever the failure.
                self.connection_error(e.code(), e.to_string());
                return;
            }
        };
        let (min_version, max_version, max_frame_size, capabilities) = hello;
        let lo = min_version.max(self.config.min_version);
        let hi = max_version.min(self.config.max_version);
        if lo > hi {
            let (min, max) = (self.config.min_version, self.config.max_version);
            let (cmin, cmax) = (min_version, max_version);
            self.connection_error(
                ErrorCode::UNSUPPORTED_VERSION,
                format!("client offers {cmin}..={cmax}, server supports {min}..={max}"),
            );
            return;
        }
        if max_frame_size < MIN_MAX_FRAME_SIZE {
            let m = max_frame_size;
            self.connection_error(
                ErrorCode::PROTOCOL_ERROR,
                format!("max_frame_size {m} is below the minimum of {MIN_MAX_FRAME_SIZE}"),
            );
            return;
        }
        self.version = hi;
        self.peer_max_frame = max_frame_size.min(MAX_MAX_FRAME_SIZE);
        self.capabilities = capabilities & self.config.capabilities;
        let welcome = Message::<&[u8]>::Welcome(message::Welcome {
            version: self.version,
            max_frame_size: self.config.max_frame_size,
            max_outstanding: self.config.max_outstanding,
            capabilities: self.capabilities,
            agent: Str::from(self.config.agent.as_str()),
        });
        // §3.2: WELCOME is written in the base version; what follows in the negotiated one.
        self.wire.outbox.push_own(&welcome, BASE_VERSION, 0);
        self.stats.frames_out += 1;
        // §2.2: every frame after HELLO is held to the limit WELCOME announces.
        self.decoder.set_max_frame_size(self.config.max_frame_size);
        self.state = SessionState::Open;
    }

    /// §3.10: the peer gave up on the connection (ERROR with ID 0); nothing more is answered.
    fn peer_gave_up(&mut self, code: ErrorCode) {
        self.enter(SessionState::Closing);
        self.outstanding.clear();
        self.close_reason = Some(CloseReason::PeerError(code));
    }

    fn maybe_finish(&mut self) {
        // Frames already received are processed before the close (spec §3.8, document 1.2): a
        // request that came with the HELLO, or behind the last answered one, is refused with
        // SHUTTING_DOWN, not dropped. `poll_event` finishes the drain once none is left.
        let ready = match self.state {
            SessionState::Draining => {
                self.outstanding.is_empty()
                    && matches!(self.decoder.decode_ref(&self.wire.input), Ok(None))
            }
            _ => false,
        };
        if ready {
            if !self.goodbye_sent {
                self.send_goodbye(ErrorCode::NO_ERROR, "");
            }
            self.enter(SessionState::Closing);
            self.close_reason.get_or_insert(CloseReason::Graceful);
        }
    }

    fn send_goodbye(&mut self, code: ErrorCode, message: &str) {
        if self.goodbye_sent {
            return;
        }
        self.goodbye_sent = true;
        let msg = Message::<&[u8]>::Goodbye(message::Goodbye {
            code,
            message: Str::from(message),
        });
        self.wire.outbox.push_own(&msg, self.version, 0);
        self.stats.frames_out += 1;
    }

    /// Sends ERROR (ID 0) and stops: the ERROR stands for every outstanding request (spec §3.10).
    fn connection_error(&mut self, code: ErrorCode, message: String) {
        if self.state == SessionState::Closing {
            return;
        }
        self.queue_error(0, code, message);
        self.outstanding.clear();
        self.enter(SessionState::Closing);
        self.close_reason = Some(CloseReason::LocalError(code));
    }

    fn queue_error(&mut self, id: u32, code: ErrorCode, message: String) {
        self.queue_response(
            id,
            &Message::<&[u8]>::Error(message::Error {
                code,
                message: Str::from(message.as_str()),
                retry_after_ms: 0,
            }),
        );
    }

    fn queue_response<B: message::Octets>(&mut self, id: u32, response: &Message<B>) {
        if let Message::Error(e) = response {
            *self.stats.errors_sent.entry(e.code.0).or_default() += 1;
        }
        self.stats.frames_out += 1;
        // ECHO_REPLY and application bodies go out without copying a large payload: the
        // outbox queues them by reference into the response's own `Bytes`.
        // §3.4: a response above the client's limit becomes ERROR RESPONSE_TOO_LARGE.
        if let Err(EncodeError::FrameTooLarge { length, .. }) =
            self.wire
                .outbox
                .push(response, self.version, id, self.peer_max_frame)
        {
            self.queue_too_large(id, length as usize + 4);
        }
    }

    fn queue_too_large(&mut self, id: u32, frame_len: usize) {
        let limit = self.peer_max_frame;
        *self
            .stats
            .errors_sent
            .entry(ErrorCode::RESPONSE_TOO_LARGE.0)
            .or_default() += 1;
        let text =
            format!("response of {frame_len} bytes exceeds the client's max_frame_size {limit}");
        let msg = Message::<&[u8]>::Error(message::Error {
            code: ErrorCode::RESPONSE_TOO_LARGE,
            message: Str::from(text.as_str()),
            retry_after_ms: 0,
        });
        self.wire.outbox.push_own(&msg, self.version, id);
    }
}

/// `at + d`, saturating: a configured timeout too large for the platform's clock means "never",
/// not an overflow panic (a century is "never" for a connection).
fn later(at: Instant, d: Duration) -> Instant {
    at.checked_add(d)
        .or_else(|| at.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(at)
}
