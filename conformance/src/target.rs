//! Targets: a TCP address, a Unix socket, or the embedded reference server.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use echowire_server::{Model, ServerHandle};

/// Where to connect, as given with `--target`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetSpec {
    /// `HOST:PORT`.
    Tcp(String),
    /// `unix:/path`.
    Unix(PathBuf),
    /// `embedded` or `embedded:MODEL`: the reference server, started in-process on an ephemeral
    /// port.
    Embedded(Model),
}

impl std::str::FromStr for TargetSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(p) = s.strip_prefix("unix:") {
            return Ok(TargetSpec::Unix(p.into()));
        }
        match s {
            "embedded" | "embedded:reactor" => return Ok(TargetSpec::Embedded(Model::Reactor)),
            "embedded:threaded" => return Ok(TargetSpec::Embedded(Model::Threaded)),
            "embedded:blocking" => return Ok(TargetSpec::Embedded(Model::Blocking)),
            _ => {}
        }
        if s.rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
        {
            return Ok(TargetSpec::Tcp(s.to_string()));
        }
        Err(format!(
            "{s:?} is not HOST:PORT, unix:/path or embedded[:reactor|threaded|blocking]"
        ))
    }
}

impl fmt::Display for TargetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetSpec::Tcp(a) => f.write_str(a),
            TargetSpec::Unix(p) => write!(f, "unix:{}", p.display()),
            TargetSpec::Embedded(m) => write!(f, "embedded:{}", format!("{m:?}").to_lowercase()),
        }
    }
}

/// The embedded reference server's settings: short timeouts, so the informational timeout cases
/// finish in seconds.
pub fn embedded_config(model: Model) -> echowire_server::Config {
    echowire_server::Config {
        listen: vec!["127.0.0.1:0".parse().expect("literal")],
        model,
        reactors: 2,
        workers: 2,
        handshake_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(3),
        drain_timeout: Duration::from_secs(2),
        linger: Duration::from_millis(500),
        ..echowire_server::Config::default()
    }
}

/// The timeouts a target declares (spec §8.3), so that the timeout cases can hold it to them.
/// A value left undeclared makes the cases that need it Skipped, except the handshake timeout,
/// whose upper bound the spec fixes (30 s) and which is therefore always tested against it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timeouts {
    /// Accept to complete HELLO.
    pub handshake: Option<Duration>,
    /// Idle period before GOODBYE IDLE_TIMEOUT.
    pub idle: Option<Duration>,
    /// Bound of a drain and of a closing write.
    pub drain: Option<Duration>,
}

impl Timeouts {
    /// The spec's upper bound of the handshake timeout (§8.3).
    pub const MAX_HANDSHAKE: Duration = Duration::from_secs(30);

    /// The value of a named timeout in milliseconds (`handshake_timeout`, `idle_timeout`,
    /// `drain_timeout`), if the target declared it (the handshake timeout defaults to the spec's
    /// upper bound).
    pub fn millis(&self, name: &str) -> Option<u64> {
        let d = match name {
            "handshake_timeout" => Some(self.handshake.unwrap_or(Self::MAX_HANDSHAKE)),
            "idle_timeout" => self.idle,
            "drain_timeout" => self.drain,
            _ => None,
        }?;
        Some(d.as_millis() as u64)
    }

    /// Whether the target declared this timeout (a case's `requires`).
    pub fn declared(&self, name: &str) -> bool {
        match name {
            "handshake_timeout" => self.handshake.is_some(),
            "idle_timeout" => self.idle.is_some(),
            "drain_timeout" => self.drain.is_some(),
            _ => false,
        }
    }
}

/// A reachable target.
#[derive(Debug)]
pub struct Target {
    /// What the user asked for.
    pub spec: TargetSpec,
    /// The timeouts it declares (the embedded server declares its own).
    pub timeouts: Timeouts,
    addr: Addr,
    _server: Option<ServerHandle>,
}

#[derive(Debug, Clone)]
enum Addr {
    Tcp(String),
    Unix(PathBuf),
}

impl Target {
    /// Resolves the spec; starts the embedded server if asked. `declared` are the timeouts the
    /// user declared for a network target; the embedded server declares its own.
    pub fn open(spec: TargetSpec, declared: Timeouts) -> io::Result<Target> {
        let mut timeouts = declared;
        let (addr, server) = match &spec {
            TargetSpec::Tcp(a) => (Addr::Tcp(a.clone()), None),
            TargetSpec::Unix(p) => (Addr::Unix(p.clone()), None),
            TargetSpec::Embedded(m) => {
                let h = echowire_server::Server::builder()
                    .config(embedded_config(*m))
                    .start()?;
                let a = h.tcp_addr().expect("embedded server listens on TCP");
                (Addr::Tcp(a.to_string()), Some(h))
            }
        };
        if let TargetSpec::Embedded(m) = &spec {
            let c = embedded_config(*m);
            timeouts = Timeouts {
                handshake: Some(c.handshake_timeout),
                idle: Some(c.idle_timeout),
                drain: Some(c.drain_timeout),
            };
        }
        Ok(Target {
            spec,
            timeouts,
            addr,
            _server: server,
        })
    }

    /// The address connections go to.
    pub fn address(&self) -> String {
        match &self.addr {
            Addr::Tcp(a) => a.clone(),
            Addr::Unix(p) => format!("unix:{}", p.display()),
        }
    }

    /// A new connection (TCP_NODELAY on).
    pub fn connect(&self) -> io::Result<Conn> {
        match &self.addr {
            Addr::Tcp(a) => {
                let s = TcpStream::connect(a)?;
                s.set_nodelay(true)?;
                Ok(Conn::Tcp(s))
            }
            Addr::Unix(p) => Ok(Conn::Unix(UnixStream::connect(p)?)),
        }
    }
}

/// A connection to the target.
#[derive(Debug)]
pub enum Conn {
    /// TCP.
    Tcp(TcpStream),
    /// Unix.
    Unix(UnixStream),
}

impl Conn {
    /// Another handle to the same socket.
    pub fn try_clone(&self) -> io::Result<Conn> {
        Ok(match self {
            Conn::Tcp(s) => Conn::Tcp(s.try_clone()?),
            Conn::Unix(s) => Conn::Unix(s.try_clone()?),
        })
    }

    /// The local address (to match the server's logs).
    pub fn local_addr(&self) -> String {
        match self {
            Conn::Tcp(s) => s.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            Conn::Unix(_) => "unix (unnamed)".into(),
        }
    }

    /// Read timeout.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.set_read_timeout(t),
            Conn::Unix(s) => s.set_read_timeout(t),
        }
    }

    /// Write timeout: a write blocked longer (a server applying backpressure forever) fails.
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.set_write_timeout(t),
            Conn::Unix(s) => s.set_write_timeout(t),
        }
    }

    /// Shutdown.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.shutdown(how),
            Conn::Unix(s) => s.shutdown(how),
        }
    }

    /// Whether a reset is visible on this transport (TCP); a Unix-domain socket has none.
    pub fn has_reset(&self) -> bool {
        matches!(self, Conn::Tcp(_))
    }

    /// Makes the final close a reset (SO_LINGER 0).
    pub fn set_linger_zero(&self) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => socket2::SockRef::from(s).set_linger(Some(Duration::ZERO)),
            Conn::Unix(s) => socket2::SockRef::from(s).set_linger(Some(Duration::ZERO)),
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read(buf),
            Conn::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.write(buf),
            Conn::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
