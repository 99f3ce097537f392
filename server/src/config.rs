//! Server settings: limits, timeouts, the I/O model. Shared by the CLI and the library builder.

use std::time::Duration;

use echowire_codec::session::{DEFAULT_MAX_OUTSTANDING, DEFAULT_MAX_PENDING_OUTPUT, ServerConfig};

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

/// Everything the server needs to start, and the command line that sets it: the CLI is this
/// struct (`#[command(flatten)]`), so every flag, its help text, its default and its bounds are
/// written once, here. [`Config::default`] is what the command line gives when no flag is set;
/// the protocol-level defaults come from the codec's session constants. The bounds of
/// [`bounds`] are checked by the flags' parsers and again by [`Config::validate`] (a library
/// user can set any value), with the same numbers and the same words.
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// Address to listen on: HOST:PORT (`[::1]:7878` for IPv6) or unix:/path/to.sock. Repeatable.
    /// Port 0 picks a free port.
    #[arg(long = "listen", value_name = "ADDR", default_values_t = [bounds::default_listen()])]
    pub listen: Vec<ListenAddr>,
    /// I/O model.
    #[arg(long, value_enum, default_value_t = Model::Reactor)]
    pub model: Model,
    /// Reactor threads (reactor model), 1 ..= 1024. Default: available cores.
    #[arg(long, value_name = "N", default_value_t = bounds::cores(),
          value_parser = |s: &str| bounds::THREADS.parse(s))]
    pub reactors: usize,
    /// Worker threads for heavy requests (COMPUTE), 1 ..= 1024. Default: available cores.
    #[arg(long, value_name = "N", default_value_t = bounds::cores(),
          value_parser = |s: &str| bounds::THREADS.parse(s))]
    pub workers: usize,
    /// Heavy requests queued for the workers before the server answers BUSY, 1 ..= 1048576.
    #[arg(long, value_name = "N", default_value_t = 256,
          value_parser = |s: &str| bounds::QUEUE_DEPTH.parse(s))]
    pub queue_depth: usize,
    /// Largest frame Length accepted, announced in WELCOME, 4096 ..= 16777216 (spec §3.4).
    #[arg(long, value_name = "BYTES", default_value_t = echowire_codec::frame::DEFAULT_MAX_FRAME_SIZE,
          value_parser = |s: &str| bounds::MAX_FRAME.parse(s))]
    pub max_frame: u32,
    /// Connections served at once, 1 ..= 16777216; more are answered ERROR CONNECTION_LIMIT
    /// and closed.
    #[arg(long, value_name = "N", default_value_t = 10_000,
          value_parser = |s: &str| bounds::CONNECTIONS.parse(s))]
    pub max_connections: usize,
    /// Requests a client may have outstanding, announced in WELCOME, 1 ..= 4294967295.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_OUTSTANDING,
          value_parser = |s: &str| bounds::OUTSTANDING.parse(s))]
    pub max_outstanding: u32,
    /// Queued output per connection above which the server stops reading it (spec §8.4).
    #[arg(skip = DEFAULT_MAX_PENDING_OUTPUT)]
    pub max_pending_output: usize,
    /// Time from accept to a complete HELLO, 1s ..= 30s (spec §8.3).
    #[arg(long, value_name = "DURATION", default_value = bounds::HANDSHAKE.default_text(),
          value_parser = |s: &str| bounds::HANDSHAKE.parse(s))]
    pub handshake_timeout: Duration,
    /// Time without a complete frame, nothing outstanding, before GOODBYE IDLE_TIMEOUT,
    /// 1s ..= 3600s (spec §8.3).
    #[arg(long, value_name = "DURATION", default_value = bounds::IDLE.default_text(),
          value_parser = |s: &str| bounds::IDLE.parse(s))]
    pub idle_timeout: Duration,
    /// How long any drain (shutdown, GOODBYE, half-close) may take before the connection is
    /// reset, 1s ..= 600s (spec §8.3).
    #[arg(long, value_name = "DURATION", default_value = bounds::DRAIN.default_text(),
          value_parser = |s: &str| bounds::DRAIN.parse(s))]
    pub drain_timeout: Duration,
    /// How long a lingering close reads and discards before closing (spec §3.10).
    #[arg(skip = bounds::LINGER.default)]
    pub linger: Duration,
    /// Allowed peer uid on Unix sockets (SO_PEERCRED). Repeatable. Default: any uid.
    #[arg(long = "allow-uid", value_name = "UID")]
    pub allow_uids: Vec<u32>,
    /// Permission bits (octal) of created Unix socket files, 1 ..= 777.
    #[arg(long, value_name = "MODE", default_value = "660", value_parser = bounds::octal_mode)]
    pub socket_mode: u32,
    /// Bytes one connection may make the server hold (input buffer, queued output, queued
    /// jobs) before it is no longer read, e.g. 2MiB; at least --max-frame + 12 and at most
    /// --memory-budget. Default: 2MiB, or --max-frame + 1MiB if that is larger.
    #[arg(long, value_name = "BYTES", default_value = "2MiB", value_parser = bounds::bytes_size)]
    pub max_connection_memory: usize,
    /// Bytes all connections together may hold, e.g. 1GiB, at most 1TiB. At the budget no
    /// connection is read; after --eviction-grace the heaviest connections that are not reading
    /// are reset.
    #[arg(long, value_name = "BYTES", default_value = "1GiB", value_parser = bounds::bytes_size)]
    pub memory_budget: usize,
    /// How long the server stays at its memory budget before it resets non-reading
    /// connections (those that took no output for that long), 100ms ..= 600s.
    #[arg(long, value_name = "DURATION", default_value = bounds::EVICTION_GRACE.default_text(),
          value_parser = |s: &str| bounds::EVICTION_GRACE.parse(s))]
    pub eviction_grace: Duration,
    /// Reactor model: one SO_REUSEPORT TCP listener per reactor, each accepting its own
    /// connections (the kernel spreads them), instead of one acceptor thread handing them out
    /// (Unix listeners always go through the acceptor). See [`crate::reactor`].
    #[arg(long)]
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

/// The one set of bounds: the flags' parsers, their help and [`Config::validate`] use these.
pub mod bounds {
    use std::time::Duration;

    use echowire_codec::session::{
        DEFAULT_DRAIN_TIMEOUT, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
    };

    use crate::listener::ListenAddr;

    /// A numeric setting's range.
    #[derive(Clone, Copy, Debug)]
    pub struct Count<T> {
        /// Smallest value.
        pub lo: T,
        /// Largest value.
        pub hi: T,
    }

    impl<T: Copy + PartialOrd + std::fmt::Display + std::str::FromStr> Count<T>
    where
        T::Err: std::fmt::Display,
    {
        /// Whether `v` is within the range; the words that say why not.
        pub fn check(&self, v: T) -> Result<T, String> {
            if v < self.lo || v > self.hi {
                return Err(format!("{v} is outside {}..={}", self.lo, self.hi));
            }
            Ok(v)
        }

        /// Parses a flag's value and checks it.
        pub fn parse(&self, s: &str) -> Result<T, String> {
            let v: T = s
                .trim()
                .parse()
                .map_err(|e| format!("{s:?} is not a number: {e}"))?;
            self.check(v)
        }
    }

    /// A duration setting's range and default.
    #[derive(Clone, Copy, Debug)]
    pub struct Time {
        /// Shortest.
        pub lo: Duration,
        /// Longest.
        pub hi: Duration,
        /// Default.
        pub default: Duration,
        /// Where the range comes from, for the message.
        pub why: &'static str,
    }

    impl Time {
        /// Whether `d` is within the range; the words that say why not.
        pub fn check(&self, d: Duration) -> Result<Duration, String> {
            if d < self.lo || d > self.hi {
                return Err(format!(
                    "{} is outside {}..={}{}",
                    humantime::format_duration(d),
                    humantime::format_duration(self.lo),
                    humantime::format_duration(self.hi),
                    self.why
                ));
            }
            Ok(d)
        }

        /// Parses a flag's value (`10s`, `500ms`) and checks it.
        pub fn parse(&self, s: &str) -> Result<Duration, String> {
            let d: Duration = humantime::parse_duration(s.trim())
                .map_err(|e| format!("{s:?} is not a duration: {e}"))?;
            self.check(d)
        }

        /// The default as the command line writes it.
        pub fn default_text(&self) -> String {
            humantime::format_duration(self.default).to_string()
        }
    }

    /// Thread counts (reactors, workers).
    pub const THREADS: Count<usize> = Count { lo: 1, hi: 1024 };
    /// Heavy-request queue.
    pub const QUEUE_DEPTH: Count<usize> = Count { lo: 1, hi: 1 << 20 };
    /// Spec §3.4: a receiver's limit.
    pub const MAX_FRAME: Count<u32> = Count {
        lo: echowire_codec::frame::MIN_MAX_FRAME_SIZE,
        hi: echowire_codec::frame::MAX_MAX_FRAME_SIZE,
    };
    /// Connections at once.
    pub const CONNECTIONS: Count<usize> = Count { lo: 1, hi: 1 << 24 };
    /// Spec §4.3: WELCOME announces at least 1.
    pub const OUTSTANDING: Count<u32> = Count {
        lo: 1,
        hi: u32::MAX,
    };
    /// Spec §8.3: handshake timeout.
    pub const HANDSHAKE: Time = Time {
        lo: Duration::from_secs(1),
        hi: Duration::from_secs(30),
        default: DEFAULT_HANDSHAKE_TIMEOUT,
        why: ", the range spec section 8.3 allows",
    };
    /// Spec §8.3: idle timeout.
    pub const IDLE: Time = Time {
        lo: Duration::from_secs(1),
        hi: Duration::from_secs(3600),
        default: DEFAULT_IDLE_TIMEOUT,
        why: ", the range spec section 8.3 allows",
    };
    /// Spec §8.3: drain timeout.
    pub const DRAIN: Time = Time {
        lo: Duration::from_secs(1),
        hi: Duration::from_secs(600),
        default: DEFAULT_DRAIN_TIMEOUT,
        why: ", the range spec section 8.3 allows",
    };
    /// Lingering close (spec §3.10 recommends 1 s).
    pub const LINGER: Time = Time {
        lo: Duration::from_millis(1),
        hi: Duration::from_secs(60),
        default: Duration::from_secs(1),
        why: "",
    };
    /// Eviction grace period.
    pub const EVICTION_GRACE: Time = Time {
        lo: Duration::from_millis(100),
        hi: Duration::from_secs(600),
        default: Duration::from_secs(10),
        why: "",
    };
    /// Largest memory setting: 1 TiB.
    pub const MEMORY_MAX: usize = 1 << 40;

    /// The cores available: the default thread counts.
    pub fn cores() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }

    /// Where the server listens by default.
    pub fn default_listen() -> ListenAddr {
        ListenAddr::Tcp("127.0.0.1:7878".parse().expect("literal address"))
    }

    /// A byte count: `65536`, `64KiB`, `2MiB`, `1GiB` (also `k`, `M`, `G` as powers of 1024),
    /// at most 1 TiB.
    pub fn bytes_size(s: &str) -> Result<usize, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|e| format!("{s:?} is not a byte count: {e}"))?;
        let shift = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 0,
            "k" | "kib" | "kb" => 10,
            "m" | "mib" | "mb" => 20,
            "g" | "gib" | "gb" => 30,
            "t" | "tib" | "tb" => 40,
            other => return Err(format!("{s:?}: unknown unit {other:?} (use KiB, MiB, GiB)")),
        };
        n.checked_mul(1 << shift)
            .filter(|&b| b <= MEMORY_MAX as u64)
            .map(|b| b as usize)
            .ok_or_else(|| format!("{s} is above 1TiB"))
    }

    /// Permission bits written in octal (`660`), 1 ..= 777: mode 0 would make a socket nobody
    /// can connect to.
    pub fn octal_mode(s: &str) -> Result<u32, String> {
        match u32::from_str_radix(s.trim(), 8) {
            Ok(m) => check_mode(m),
            Err(e) => Err(format!("{s:?} is not an octal mode: {e}")),
        }
    }

    /// Whether `m` is a permission mode a socket file can usefully have.
    pub fn check_mode(m: u32) -> Result<u32, String> {
        match m {
            0 => Err("0: nobody could connect to the socket (use e.g. 600)".into()),
            m if m > 0o777 => Err(format!("{m:o} is above 777, the largest permission mode")),
            m => Ok(m),
        }
    }
}

impl Default for Config {
    /// What the command line gives when no flag is set.
    fn default() -> Self {
        let cmd = <Config as clap::Args>::augment_args(clap::Command::new("echowire-server"));
        let matches = cmd
            .try_get_matches_from(["echowire-server"])
            .expect("the defaults parse");
        <Config as clap::FromArgMatches>::from_arg_matches(&matches)
            .expect("the defaults are valid")
    }
}

impl Config {
    /// Checks every setting; the error names the flag that sets the first bad one. The server
    /// refuses to start with a bad configuration (the CLI exits 2) rather than clamp it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        use echowire_codec::frame::FRAME_OVERHEAD;
        fn bad(flag: &'static str, problem: String) -> Result<(), ConfigError> {
            Err(ConfigError { flag, problem })
        }
        fn at<T>(flag: &'static str, r: Result<T, String>) -> Result<(), ConfigError> {
            r.map(|_| ())
                .map_err(|problem| ConfigError { flag, problem })
        }
        if self.listen.is_empty() {
            return bad("--listen", "no address to listen on".into());
        }
        at("--reactors", bounds::THREADS.check(self.reactors))?;
        at("--workers", bounds::THREADS.check(self.workers))?;
        at("--queue-depth", bounds::QUEUE_DEPTH.check(self.queue_depth))?;
        at("--max-frame", bounds::MAX_FRAME.check(self.max_frame))?;
        at(
            "--max-connections",
            bounds::CONNECTIONS.check(self.max_connections),
        )?;
        at(
            "--max-outstanding",
            bounds::OUTSTANDING.check(self.max_outstanding),
        )?;
        if self.max_pending_output == 0 || self.max_pending_output > bounds::MEMORY_MAX {
            return bad(
                "--max-pending-output",
                format!("{} is outside 1..=1TiB", self.max_pending_output),
            );
        }
        at(
            "--handshake-timeout",
            bounds::HANDSHAKE.check(self.handshake_timeout),
        )?;
        at("--idle-timeout", bounds::IDLE.check(self.idle_timeout))?;
        at("--drain-timeout", bounds::DRAIN.check(self.drain_timeout))?;
        at("--linger", bounds::LINGER.check(self.linger))?;
        at(
            "--eviction-grace",
            bounds::EVICTION_GRACE.check(self.eviction_grace),
        )?;
        at("--socket-mode", bounds::check_mode(self.socket_mode))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The flags' parsers, `--help`'s ranges and `validate` are one set of bounds: a value the
    /// command line refuses, `validate` refuses too, naming the same flag, and the defaults the
    /// command line shows are the library's.
    #[test]
    fn the_command_line_and_validate_agree() {
        let defaults = Config::default();
        assert!(defaults.validate().is_ok());
        assert_eq!(
            defaults.handshake_timeout,
            echowire_codec::session::DEFAULT_HANDSHAKE_TIMEOUT
        );
        assert_eq!(defaults.max_outstanding, DEFAULT_MAX_OUTSTANDING);
        type Setter = fn(&mut Config, Duration);
        let times: [(&str, bounds::Time, Setter); 4] = [
            ("--handshake-timeout", bounds::HANDSHAKE, |c, d| {
                c.handshake_timeout = d
            }),
            ("--idle-timeout", bounds::IDLE, |c, d| c.idle_timeout = d),
            ("--drain-timeout", bounds::DRAIN, |c, d| c.drain_timeout = d),
            ("--eviction-grace", bounds::EVICTION_GRACE, |c, d| {
                c.eviction_grace = d
            }),
        ];
        for (flag, b, set) in times {
            for (d, ok) in [
                (b.lo, true),
                (b.hi, true),
                (b.lo - Duration::from_millis(1), false),
                (b.hi + Duration::from_millis(1), false),
            ] {
                let text = humantime::format_duration(d).to_string();
                assert_eq!(b.parse(&text).is_ok(), ok, "{flag} {text}");
                let mut c = defaults.clone();
                set(&mut c, d);
                let v = c.validate();
                assert_eq!(v.is_ok(), ok, "{flag} {text}: {v:?}");
                if let Err(e) = v {
                    assert_eq!(e.flag, flag);
                }
            }
        }
        let cmd = <Config as clap::Args>::augment_args(clap::Command::new("t"));
        let refused = cmd.try_get_matches_from(["t", "--eviction-grace", "1ms"]);
        assert!(refused.is_err(), "1ms is below the grace's 100ms");
    }
}
