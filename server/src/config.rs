//! Server settings: limits, timeouts, the I/O model. Shared by the CLI and the library builder.

use std::time::Duration;

use echowire_codec::session::{
    DEFAULT_DRAIN_TIMEOUT, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_OUTSTANDING, DEFAULT_MAX_PENDING_OUTPUT, ServerConfig,
};

use crate::listener::ListenAddr;

/// Which I/O model serves connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Model {
    /// mio reactor threads plus the worker pool (the default and the fast one).
    #[default]
    Reactor,
    /// One OS thread per connection, blocking std::net I/O (for comparison and teaching).
    Threaded,
    /// One connection at a time on the accepting thread (for comparison and teaching).
    Blocking,
}

/// Everything the server needs to start. [`Config::default`] is the one place the reference
/// server's defaults live (the protocol-level ones come from the codec's session constants); the
/// CLI shows and uses these values.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen.
    pub listen: Vec<ListenAddr>,
    /// The I/O model.
    pub model: Model,
    /// Reactor threads (reactor model).
    pub reactors: usize,
    /// Worker threads for heavy requests (COMPUTE).
    pub workers: usize,
    /// Heavy requests queued beyond the running ones before BUSY.
    pub queue_depth: usize,
    /// Largest frame `Length` accepted (announced in WELCOME).
    pub max_frame: u32,
    /// Connections served at once; more get ERROR CONNECTION_LIMIT.
    pub max_connections: usize,
    /// Per-connection outstanding requests (announced in WELCOME).
    pub max_outstanding: u32,
    /// Queued output per connection above which the server stops reading it.
    pub max_pending_output: usize,
    /// Time from accept to a complete HELLO.
    pub handshake_timeout: Duration,
    /// Time without a complete frame, nothing outstanding, before GOODBYE IDLE_TIMEOUT.
    pub idle_timeout: Duration,
    /// How long a graceful shutdown waits for outstanding work.
    pub drain_timeout: Duration,
    /// How long a lingering close reads and discards before closing (spec §3.10).
    pub linger: Duration,
    /// Unix-socket peers allowed by uid (empty: any).
    pub allow_uids: Vec<u32>,
    /// Permission bits of created Unix socket files.
    pub socket_mode: u32,
}

impl Default for Config {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Config {
            listen: vec![ListenAddr::Tcp(
                "127.0.0.1:7878".parse().expect("literal address"),
            )],
            model: Model::Reactor,
            reactors: cores,
            workers: cores,
            queue_depth: 256,
            max_frame: echowire_codec::frame::DEFAULT_MAX_FRAME_SIZE,
            max_connections: 10_000,
            max_outstanding: DEFAULT_MAX_OUTSTANDING,
            max_pending_output: DEFAULT_MAX_PENDING_OUTPUT,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            linger: Duration::from_secs(1),
            allow_uids: Vec::new(),
            socket_mode: 0o660,
        }
    }
}

impl Config {
    /// The per-connection protocol settings.
    pub fn session(&self) -> ServerConfig {
        ServerConfig {
            max_frame_size: self.max_frame,
            max_outstanding: self.max_outstanding,
            max_pending_output: self.max_pending_output,
            handshake_timeout: self.handshake_timeout,
            idle_timeout: Some(self.idle_timeout),
            drain_timeout: self.drain_timeout,
            ..ServerConfig::default()
        }
    }
}
