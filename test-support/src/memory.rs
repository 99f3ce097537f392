//! In-memory drivers for the sans-IO sessions (quinn-proto's `Pair` idea): no sockets,
//! simulated time.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use echowire_codec::decoder::FrameDecoder;
use echowire_codec::frame::{Frame, PREFACE};
use echowire_codec::message::{self, DecodeContext, Message, Role};
use echowire_codec::session::*;

use crate::messages::hello;

/// A server session fed raw bytes; its output decoded as a client would.
#[derive(Debug)]
pub struct RawServer {
    pub now: Instant,
    pub server: ServerSession,
    out: BytesMut,
    dec: FrameDecoder,
    pub version: u8,
}

impl RawServer {
    pub fn new(config: ServerConfig) -> Self {
        let now = Instant::now();
        RawServer {
            now,
            server: ServerSession::new(config, now),
            out: BytesMut::new(),
            dec: FrameDecoder::new(16 << 20),
            version: 1,
        }
    }

    /// A server past the handshake at `version`.
    pub fn open(version: u8, caps: u32) -> Self {
        let mut s = RawServer::new(ServerConfig::default());
        s.feed(&PREFACE);
        s.feed(&hello(version, version, 1 << 20, caps));
        let evs = s.events();
        assert!(evs.is_empty());
        let frames = s.frames();
        assert!(matches!(frames[0].1, Message::Welcome(_)), "{frames:?}");
        s.version = version;
        s
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        self.server.handle_input(bytes);
    }

    pub fn events(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        while let Some(ev) = self.server.poll_event(self.now) {
            out.push(ev);
        }
        out
    }

    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        if let Some(t) = self.server.poll_timeout()
            && self.now >= t
        {
            self.server.handle_timeout(self.now);
        }
    }

    /// Frames the server queued, decoded under the version in force.
    pub fn frames(&mut self) -> Vec<(u32, Message)> {
        self.out.extend_from_slice(&self.server.take_output());
        let mut v = Vec::new();
        while let Some(f) = self
            .dec
            .decode(&mut self.out)
            .expect("server output frames")
        {
            v.push(decode_from_server(&f, self.version));
        }
        v
    }
}

pub fn decode_from_server(f: &Frame, negotiated: u8) -> (u32, Message) {
    let ctx = DecodeContext {
        receiver: Role::Client,
        version: Some(f.header.version.max(1)),
        capabilities: 1,
    };
    let _ = negotiated;
    let m =
        message::decode(f, &ctx).unwrap_or_else(|e| panic!("server sent an invalid frame: {e}"));
    (f.header.request_id, m)
}

/// A client and a server session connected in memory.
#[derive(Debug)]
pub struct Pair {
    pub now: Instant,
    pub server: ServerSession,
    pub client: ClientSession,
}

impl Pair {
    pub fn new(sc: ServerConfig, cc: ClientConfig) -> Self {
        let now = Instant::now();
        Pair {
            now,
            server: ServerSession::new(sc, now),
            client: ClientSession::new(cc, now),
        }
    }

    pub fn handshake(sc: ServerConfig, cc: ClientConfig) -> (Self, Negotiated) {
        let mut p = Pair::new(sc, cc);
        assert!(p.server_events().is_empty());
        let evs = p.client_events();
        let Some(ClientEvent::Welcome(n)) = evs.first().cloned() else {
            panic!("no WELCOME: {evs:?}")
        };
        (p, n)
    }

    /// Moves the client's output to the server and returns the server's events.
    pub fn server_events(&mut self) -> Vec<Event> {
        self.server.handle_input(&self.client.take_output());
        let mut out = Vec::new();
        while let Some(ev) = self.server.poll_event(self.now) {
            out.push(ev);
        }
        out
    }

    /// Moves the server's output to the client and returns the client's events.
    pub fn client_events(&mut self) -> Vec<ClientEvent> {
        self.client.handle_input(&self.server.take_output());
        let mut out = Vec::new();
        while let Some(ev) = self
            .client
            .poll_event(self.now)
            .expect("client accepts server output")
        {
            out.push(ev);
        }
        out
    }
}
