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
    /// Bytes one connection may make the server hold (input buffer, queued output, queued
    /// jobs) before it is no longer read; at least one maximum-size frame (see [`crate::memory`]).
    pub max_connection_memory: usize,
    /// Bytes all connections together may hold; at the budget no connection is read, and past
    /// `eviction_grace` the heaviest non-readers are reset.
    pub memory_budget: usize,
    /// How long the server stays at its memory budget before it evicts non-reading connections
    /// (and how long a connection must have written nothing to count as one).
    pub eviction_grace: Duration,
    /// Reactor model: one `SO_REUSEPORT` TCP listener per reactor, each reactor accepting its
    /// own connections, instead of the acceptor thread handing them out (Unix listeners always
    /// go through the acceptor). See [`crate::reactor`] for the trade-off.
    pub reuseport: bool,
}

/// A setting that makes no sense, naming the command-line flag that sets it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{flag}: {problem}")]
pub struct ConfigError {
    /// The flag (`--max-outstanding`).
    pub flag: &'static str,
    /// What is wrong with its value.
    pub problem: String,
}

/// Bounds shared by the CLI's parsers and [`Config::validate`].
pub mod bounds {
    use std::time::Duration;

    /// Thread counts (reactors, workers).
    pub const THREADS: std::ops::RangeInclusive<usize> = 1..=1024;
    /// Spec §8.3: handshake timeout.
    pub const HANDSHAKE: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));
    /// Spec §8.3: idle timeout.
    pub const IDLE: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(3600));
    /// Spec §8.3: drain timeout.
    pub const DRAIN: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(600));
    /// Lingering close (spec §3.10 recommends 1 s).
    pub const LINGER: (Duration, Duration) = (Duration::from_millis(1), Duration::from_secs(60));
    /// Eviction grace period.
    pub const EVICTION_GRACE: (Duration, Duration) =
        (Duration::from_millis(100), Duration::from_secs(600));
    /// Heavy-request queue.
    pub const QUEUE_DEPTH: std::ops::RangeInclusive<usize> = 1..=1 << 20;
    /// Largest memory setting: 1 TiB.
    pub const MEMORY_MAX: usize = 1 << 40;
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
            max_connection_memory: 2 << 20,
            memory_budget: 1 << 30,
            eviction_grace: Duration::from_secs(10),
            reuseport: false,
        }
    }
}

impl Config {
    /// Checks every setting; the error names the flag that sets the first bad one. The server
    /// refuses to start with a bad configuration (the CLI exits 2) rather than clamp it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn bad(flag: &'static str, problem: String) -> Result<(), ConfigError> {
            Err(ConfigError { flag, problem })
        }
        // The spec's upper bounds hold here too (no deadline can overflow the clock); the lower
        // bounds only on the command line: a library user (a test) may want 400 ms.
        fn within(
            flag: &'static str,
            d: Duration,
            (_, hi): (Duration, Duration),
        ) -> Result<(), ConfigError> {
            let lo = Duration::from_millis(1);
            if d < lo || d > hi {
                return bad(flag, format!("{d:?} is outside {lo:?}..={hi:?}"));
            }
            Ok(())
        }
        use echowire_codec::frame::{FRAME_OVERHEAD, MAX_MAX_FRAME_SIZE, MIN_MAX_FRAME_SIZE};
        if self.listen.is_empty() {
            return bad("--listen", "no address to listen on".into());
        }
        if !bounds::THREADS.contains(&self.reactors) {
            return bad(
                "--reactors",
                format!("{} is outside 1..=1024", self.reactors),
            );
        }
        if !bounds::THREADS.contains(&self.workers) {
            return bad("--workers", format!("{} is outside 1..=1024", self.workers));
        }
        if !bounds::QUEUE_DEPTH.contains(&self.queue_depth) {
            return bad(
                "--queue-depth",
                format!("{} is outside 1..=1048576", self.queue_depth),
            );
        }
        if !(MIN_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE).contains(&self.max_frame) {
            return bad(
                "--max-frame",
                format!(
                    "{} is outside {MIN_MAX_FRAME_SIZE}..={MAX_MAX_FRAME_SIZE} (spec section 3.4)",
                    self.max_frame
                ),
            );
        }
        if self.max_connections == 0 || self.max_connections > 1 << 24 {
            return bad(
                "--max-connections",
                format!("{} is outside 1..=16777216", self.max_connections),
            );
        }
        if self.max_outstanding == 0 {
            return bad(
                "--max-outstanding",
                "0: WELCOME must announce at least 1 (spec section 4.3)".into(),
            );
        }
        if self.max_pending_output == 0 || self.max_pending_output > bounds::MEMORY_MAX {
            return bad(
                "--max-pending-output",
                format!("{} is outside 1..=1TiB", self.max_pending_output),
            );
        }
        within(
            "--handshake-timeout",
            self.handshake_timeout,
            bounds::HANDSHAKE,
        )?;
        within("--idle-timeout", self.idle_timeout, bounds::IDLE)?;
        within("--drain-timeout", self.drain_timeout, bounds::DRAIN)?;
        within("--linger", self.linger, bounds::LINGER)?;
        within(
            "--eviction-grace",
            self.eviction_grace,
            bounds::EVICTION_GRACE,
        )?;
        if self.socket_mode > 0o777 {
            return bad(
                "--socket-mode",
                format!("{:o} is above 777", self.socket_mode),
            );
        }
        let one_frame = self.max_frame as usize + FRAME_OVERHEAD;
        if self.max_connection_memory < one_frame || self.max_connection_memory > bounds::MEMORY_MAX
        {
            return bad(
                "--max-connection-memory",
                format!(
                    "{} is outside {one_frame}..=1TiB (one frame of --max-frame {} must fit)",
                    self.max_connection_memory, self.max_frame
                ),
            );
        }
        if self.memory_budget < self.max_connection_memory
            || self.memory_budget > bounds::MEMORY_MAX
        {
            return bad(
                "--memory-budget",
                format!(
                    "{} is outside {}..=1TiB (at least --max-connection-memory)",
                    self.memory_budget, self.max_connection_memory
                ),
            );
        }
        Ok(())
    }

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
