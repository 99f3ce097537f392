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
    /// `--exec CMD`: an implementation the runner starts itself, once per profile, from a
    /// command template (see [`ExecSpec`]).
    Exec(ExecSpec),
}

/// A command template the runner starts the target from (`--exec`).
///
/// The template is run by `/bin/sh -c 'exec TEMPLATE'` after substituting these placeholders
/// (an unknown `{name}` is a usage error):
///
/// | placeholder | value |
/// |---|---|
/// | `{listen}` | `127.0.0.1:PORT`, or `unix:PATH` with `--exec-unix` |
/// | `{host}`, `{port}` | the TCP address's parts (a free loopback port the runner picked) |
/// | `{unix_path}` | the Unix socket path (a fresh temporary directory) |
/// | `{max_frame_size}` | the profile's largest accepted frame `Length` (announced in WELCOME) |
/// | `{max_outstanding}` | the profile's request limit (announced in WELCOME) |
/// | `{workers}`, `{queue_depth}` | heavy-request workers and their queue, before BUSY |
/// | `{max_connections}` | connections open at once before CONNECTION_LIMIT (§8.4) |
/// | `{handshake_timeout_ms}`, `{idle_timeout_ms}`, `{drain_timeout_ms}` | §8.3 timeouts |
///
/// The runner waits until the address accepts connections, keeps the process's standard error
/// for the report, sends it SIGTERM for the drain cases, and stops it (SIGTERM, then SIGKILL
/// after its drain bound) when a profile's cases are done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecSpec {
    /// The command template.
    pub template: String,
    /// Listen on a Unix socket instead of TCP.
    pub unix: bool,
    /// What reports call it (`--name`); by default a short name derived from the command
    /// ([`ExecSpec::short_name`]), the full command being shown in each report's header.
    pub name: Option<String>,
}

/// The placeholders an `--exec` template may use.
pub const PLACEHOLDERS: [&str; 12] = [
    "listen",
    "host",
    "port",
    "unix_path",
    "max_frame_size",
    "max_outstanding",
    "workers",
    "queue_depth",
    "max_connections",
    "handshake_timeout_ms",
    "idle_timeout_ms",
    "drain_timeout_ms",
];

impl ExecSpec {
    /// The command's words before its first option or placeholder, each path reduced to its
    /// last component: `exec:python3 echowire_server.py` for
    /// `python3 /long/path/impls/python/echowire_server.py --listen {listen} ...`.
    pub fn short_name(&self) -> String {
        let words: Vec<&str> = self
            .template
            .split_whitespace()
            .take_while(|w| !w.starts_with('-') && !w.contains('{'))
            .map(|w| w.trim_end_matches('/').rsplit('/').next().unwrap_or(w))
            .collect();
        let mut short = words.join(" ");
        if short.chars().count() > 48 {
            short = short.chars().take(47).collect::<String>() + "…";
        }
        format!("exec{}:{short}", if self.unix { "(unix)" } else { "" })
    }

    /// Checks the template: balanced braces, known placeholders, a listen address.
    pub fn validate(&self) -> Result<(), String> {
        let names = placeholders(&self.template)?;
        if let Some(bad) = names.iter().find(|n| !PLACEHOLDERS.contains(&n.as_str())) {
            return Err(format!(
                "--exec: unknown placeholder {{{bad}}}; known: {}",
                PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(" ")
            ));
        }
        let listens = if self.unix {
            names.iter().any(|n| n == "listen" || n == "unix_path")
        } else {
            names.iter().any(|n| n == "listen" || n == "port")
        };
        if !listens {
            return Err(format!(
                "--exec: the template must say where to listen: {{listen}} or {}",
                if self.unix { "{unix_path}" } else { "{port}" }
            ));
        }
        Ok(())
    }

    /// The command with every placeholder replaced.
    pub fn render(&self, vars: &[(&str, String)]) -> String {
        let mut out = self.template.clone();
        for (k, v) in vars {
            out = out.replace(&format!("{{{k}}}"), v);
        }
        out
    }
}

fn placeholders(t: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(format!("--exec: unclosed {{ in {t:?}"));
        };
        names.push(after[..close].to_string());
        rest = &after[close + 1..];
    }
    Ok(names)
}

/// The settings a target is started with. Cases that need other settings than a plain server's
/// name a profile; the runner starts the target once per profile (embedded or `--exec`), and a
/// target it cannot start (a network address) has those cases Skipped.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Deserialize,
    serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// Any server at its own settings; with `--exec`, short timeouts (so the §8.3 cases run in
    /// seconds) and ordinary limits.
    #[default]
    Default,
    /// The smallest limits: `max_frame_size` 4096 (the minimum of §2.2), `max_outstanding` 2.
    Small,
    /// One worker with a queue of one, so that the third heavy request is answered BUSY (§8.4).
    Busy,
    /// Everything at once, for the fuzzer: the shortest timeouts the spec permits (1 s each),
    /// frames of at most 16 KiB, 3 requests outstanding and one worker with a queue of two (so a
    /// client reaches its outstanding limit exactly when the pool is full: which refusal comes
    /// first is visible, and other clients' work makes BUSY) — so that random sessions reach the
    /// timers, the limits and BUSY within seconds, together.
    Tight,
    /// A connection limit of 2, so that a third connection is refused CONNECTION_LIMIT (§8.4).
    /// Needs `{max_connections}` in an `--exec` template.
    Crowded,
}

impl std::str::FromStr for Profile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Profile::ALL.iter().map(|p| p.name()).collect();
                format!("unknown profile {s:?} (one of {})", names.join(", "))
            })
    }
}

/// What a [`Profile`] starts a target with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProfileSettings {
    /// Largest frame `Length` (WELCOME).
    pub max_frame_size: u32,
    /// Requests outstanding per connection (WELCOME).
    pub max_outstanding: u32,
    /// Heavy-request workers.
    pub workers: usize,
    /// Heavy requests queued before BUSY.
    pub queue_depth: usize,
    /// Connections open at once before CONNECTION_LIMIT.
    pub max_connections: usize,
    /// The three timeouts.
    pub timeouts: (Duration, Duration, Duration),
}

impl Profile {
    /// Every profile, in the order the runner starts them.
    pub const ALL: [Profile; 5] = [
        Profile::Default,
        Profile::Small,
        Profile::Busy,
        Profile::Tight,
        Profile::Crowded,
    ];

    /// Whether its cases must run one at a time: their limits are shared by the whole server
    /// (the heavy-request queue), not per connection.
    pub fn exclusive(self) -> bool {
        matches!(self, Profile::Busy | Profile::Tight | Profile::Crowded)
    }

    /// Its name in case files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Default => "default",
            Profile::Small => "small",
            Profile::Busy => "busy",
            Profile::Tight => "tight",
            Profile::Crowded => "crowded",
        }
    }

    /// Its settings.
    pub fn settings(self) -> ProfileSettings {
        // The drain timeout leaves room for an implementation whose COMPUTE is slow (an
        // interpreted one takes about a second for the cases' slow COMPUTE, and more than 5 s
        // on a shared 2-core machine under CPU steal: a CI run lost `3.8-request-after-goodbye`
        // to a 5 s drain timeout that way). Only one case waits for the drain timeout to expire.
        let timeouts = (
            Duration::from_secs(2),
            Duration::from_secs(3),
            Duration::from_secs(10),
        );
        match self {
            Profile::Default => ProfileSettings {
                max_frame_size: 1 << 20,
                max_outstanding: 64,
                workers: 2,
                queue_depth: 64,
                max_connections: 1024,
                timeouts,
            },
            Profile::Small => ProfileSettings {
                max_frame_size: echowire_codec::frame::MIN_MAX_FRAME_SIZE,
                max_outstanding: 2,
                workers: 2,
                queue_depth: 64,
                max_connections: 1024,
                timeouts,
            },
            Profile::Busy => ProfileSettings {
                max_frame_size: 1 << 20,
                max_outstanding: 16,
                workers: 1,
                queue_depth: 1,
                max_connections: 1024,
                timeouts,
            },
            Profile::Tight => ProfileSettings {
                max_frame_size: 16 * 1024,
                max_outstanding: 3,
                workers: 1,
                queue_depth: 2,
                max_connections: 1024,
                timeouts: (
                    Duration::from_secs(1),
                    Duration::from_secs(1),
                    Duration::from_secs(1),
                ),
            },
            Profile::Crowded => ProfileSettings {
                max_connections: 2,
                ..Profile::Default.settings()
            },
        }
    }

    /// The `--exec` placeholder without which a template cannot apply this profile's settings
    /// (its cases are then Skipped, naming it).
    pub fn placeholder(self) -> Option<&'static str> {
        match self {
            Profile::Crowded => Some("max_connections"),
            _ => None,
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
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

impl TargetSpec {
    /// Why this target cannot be started with `profile`'s settings, if it cannot: an `--exec`
    /// template without the placeholder the profile's setting needs.
    pub fn cannot_apply(&self, profile: Profile) -> Option<String> {
        match (self, profile.placeholder()) {
            (TargetSpec::Exec(e), Some(name)) if !e.template.contains(&format!("{{{name}}}")) => {
                Some(format!(
                    "profile {profile} needs {{{name}}} in the --exec template, which does not pass it"
                ))
            }
            // The blocking model serves one connection at a time: a second one waits in the
            // listen backlog, so a connection limit above one is never reached.
            (TargetSpec::Embedded(Model::Blocking), _) if profile == Profile::Crowded => Some(
                "the blocking model serves one connection at a time, so it never reaches a \
                 connection limit"
                    .into(),
            ),
            _ => None,
        }
    }
}

impl fmt::Display for TargetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetSpec::Tcp(a) => f.write_str(a),
            TargetSpec::Unix(p) => write!(f, "unix:{}", p.display()),
            TargetSpec::Embedded(m) => write!(f, "embedded:{}", format!("{m:?}").to_lowercase()),
            TargetSpec::Exec(e) => match &e.name {
                Some(n) => f.write_str(n),
                None => f.write_str(&e.short_name()),
            },
        }
    }
}

/// The embedded reference server's settings for a profile: short timeouts, so the timeout cases
/// finish in seconds.
pub fn embedded_config(model: Model, profile: Profile) -> echowire_server::Config {
    let p = profile.settings();
    echowire_server::Config {
        listen: vec!["127.0.0.1:0".parse().expect("literal")],
        model,
        reactors: 2,
        workers: p.workers,
        queue_depth: p.queue_depth,
        max_frame: p.max_frame_size,
        max_outstanding: p.max_outstanding,
        max_connections: p.max_connections,
        handshake_timeout: p.timeouts.0,
        idle_timeout: p.timeouts.1,
        drain_timeout: p.timeouts.2,
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

/// A reachable target: one running instance for one [`Profile`].
#[derive(Debug)]
pub struct Target {
    /// What the user asked for.
    pub spec: TargetSpec,
    /// The profile it was started with (a network target: always the default).
    pub profile: Profile,
    /// The timeouts it declares (the embedded and `--exec` targets: their profile's).
    pub timeouts: Timeouts,
    addr: Addr,
    control: Control,
}

#[derive(Debug, Clone)]
enum Addr {
    Tcp(String),
    Unix(PathBuf),
}

#[derive(Debug)]
enum Control {
    /// A network target: the runner can only connect.
    None,
    /// The reference server in this process.
    Embedded(ServerHandle),
    /// A process the runner started.
    Process(Process),
}

#[derive(Debug)]
struct Process {
    child: std::sync::Mutex<std::process::Child>,
    /// Holds the Unix socket and the captured standard error; removed on drop.
    dir: tempfile::TempDir,
    /// How long a SIGTERM'ed process may take (its drain bound plus slack) before SIGKILL.
    grace: Duration,
}

impl Drop for Process {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        let pid = child.id();
        if let Ok(None) = child.try_wait() {
            let _ = crate::children::signal_group(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = std::time::Instant::now() + self.grace;
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        // Whatever the target started is stopped with it.
        let _ = crate::children::signal_group(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = child.wait();
        crate::children::forget(pid);
    }
}

fn signal(pid: u32, sig: nix::sys::signal::Signal) -> io::Result<()> {
    let pid = i32::try_from(pid).map_err(|_| io::Error::other("pid out of range"))?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).map_err(io::Error::from)
}

/// The last `max` octets of a file, lossily decoded (a target's captured standard error).
fn tail(path: &std::path::Path, max: usize) -> String {
    let data = std::fs::read(path).unwrap_or_default();
    let from = data.len().saturating_sub(max);
    let text = String::from_utf8_lossy(&data[from..]).into_owned();
    if from > 0 { format!("...{text}") } else { text }
}

/// How long `--exec` targets get to accept connections after they are started.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

impl Target {
    /// Resolves the spec and starts the target for `profile` if the runner controls it
    /// (embedded, `--exec`). `declared` are the timeouts the user declared for a network target.
    /// A network target can only be opened for the default profile.
    pub fn open(spec: TargetSpec, declared: Timeouts, profile: Profile) -> io::Result<Target> {
        let p = profile.settings();
        let profile_timeouts = Timeouts {
            handshake: Some(p.timeouts.0),
            idle: Some(p.timeouts.1),
            drain: Some(p.timeouts.2),
        };
        let (addr, control, timeouts) = match &spec {
            TargetSpec::Tcp(_) | TargetSpec::Unix(_) if profile != Profile::Default => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("a network target runs with its own settings, not profile {profile}"),
                ));
            }
            TargetSpec::Tcp(a) => (Addr::Tcp(a.clone()), Control::None, declared),
            TargetSpec::Unix(path) => (Addr::Unix(path.clone()), Control::None, declared),
            TargetSpec::Embedded(m) => {
                let h = echowire_server::Server::builder()
                    .config(embedded_config(*m, profile))
                    .start()?;
                let a = h.tcp_addr().expect("embedded server listens on TCP");
                (
                    Addr::Tcp(a.to_string()),
                    Control::Embedded(h),
                    profile_timeouts,
                )
            }
            TargetSpec::Exec(e) => {
                let (addr, process) = start_process(e, &p)?;
                (addr, Control::Process(process), profile_timeouts)
            }
        };
        let target = Target {
            spec,
            profile,
            timeouts,
            addr,
            control,
        };
        if let Control::Process(_) = &target.control {
            target.wait_until_accepting()?;
        }
        Ok(target)
    }

    fn wait_until_accepting(&self) -> io::Result<()> {
        let deadline = std::time::Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Control::Process(p) = &self.control
                && let Some(status) = process_status(p)
            {
                return Err(io::Error::other(format!(
                    "the target exited ({status}) before accepting connections; its stderr: {}",
                    self.log_tail().unwrap_or_default()
                )));
            }
            match self.connect() {
                Ok(probe) => {
                    // The probe holds one of the target's connection slots until the target
                    // has seen it close: a case of the crowded profile (a limit of 2) must not
                    // find it still counted. End it and wait (briefly) for the target's own
                    // close, which comes once it has processed the end of stream.
                    let _ = probe.shutdown(Shutdown::Write);
                    let _ = probe.set_read_timeout(Some(Duration::from_millis(100)));
                    let mut probe = probe;
                    let until = std::time::Instant::now() + Duration::from_secs(2);
                    let mut buf = [0u8; 256];
                    while std::time::Instant::now() < until {
                        match probe.read(&mut buf) {
                            Ok(0) => break,
                            Ok(_) => {}
                            Err(e)
                                if matches!(
                                    e.kind(),
                                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                                ) => {}
                            Err(_) => break,
                        }
                    }
                    return Ok(());
                }
                Err(e) if std::time::Instant::now() >= deadline => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "the target did not accept connections at {} within {:?}: {e}; its stderr: {}",
                            self.address(),
                            STARTUP_TIMEOUT,
                            self.log_tail().unwrap_or_default()
                        ),
                    ));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Whether the runner started this target (so it can restart and signal it).
    pub fn controlled(&self) -> bool {
        !matches!(self.control, Control::None)
    }

    /// Starts a graceful shutdown, as SIGTERM does (spec §3.8): for an `--exec` target the
    /// signal itself, for the embedded server its shutdown call.
    pub fn terminate(&self) -> io::Result<()> {
        match &self.control {
            Control::None => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the runner does not control a network target",
            )),
            Control::Embedded(h) => {
                h.begin_shutdown();
                Ok(())
            }
            Control::Process(p) => {
                let pid = p.child.lock().unwrap_or_else(|e| e.into_inner()).id();
                signal(pid, nix::sys::signal::Signal::SIGTERM)
            }
        }
    }

    /// The end of what an `--exec` target wrote to its standard error and output.
    pub fn log_tail(&self) -> Option<String> {
        match &self.control {
            Control::Process(p) => Some(tail(&p.dir.path().join("stderr.log"), 4000)),
            _ => None,
        }
    }

    /// The address connections go to.
    pub fn address(&self) -> String {
        match &self.addr {
            Addr::Tcp(a) => a.clone(),
            Addr::Unix(p) => format!("unix:{}", p.display()),
        }
    }

    /// The same instance as seen by another client: it connects to the same address with the
    /// same settings, but does not control the process (it cannot signal or stop it).
    pub fn peer(&self) -> Target {
        Target {
            spec: self.spec.clone(),
            profile: self.profile,
            timeouts: self.timeouts,
            addr: self.addr.clone(),
            control: Control::None,
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

fn process_status(p: &Process) -> Option<std::process::ExitStatus> {
    p.child
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .try_wait()
        .ok()
        .flatten()
}

fn start_process(e: &ExecSpec, p: &ProfileSettings) -> io::Result<(Addr, Process)> {
    let dir = tempfile::Builder::new()
        .prefix("echowire-target-")
        .tempdir()?;
    let sock = dir.path().join("target.sock");
    let (addr, listen, host, port) = if e.unix {
        (
            Addr::Unix(sock.clone()),
            format!("unix:{}", sock.display()),
            String::new(),
            String::new(),
        )
    } else {
        // A free loopback port: bound, read, released. Another process could take it in
        // between; the startup check then fails with the target's own message.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        (
            Addr::Tcp(format!("127.0.0.1:{port}")),
            format!("127.0.0.1:{port}"),
            "127.0.0.1".to_string(),
            port.to_string(),
        )
    };
    let ms = |d: Duration| d.as_millis().to_string();
    let vars = [
        ("listen", listen),
        ("host", host),
        ("port", port),
        ("unix_path", sock.display().to_string()),
        ("max_frame_size", p.max_frame_size.to_string()),
        ("max_outstanding", p.max_outstanding.to_string()),
        ("workers", p.workers.to_string()),
        ("queue_depth", p.queue_depth.to_string()),
        ("max_connections", p.max_connections.to_string()),
        ("handshake_timeout_ms", ms(p.timeouts.0)),
        ("idle_timeout_ms", ms(p.timeouts.1)),
        ("drain_timeout_ms", ms(p.timeouts.2)),
    ];
    let command = e.render(&vars);
    let log = std::fs::File::create(dir.path().join("stderr.log"))?;
    let child = crate::children::own_group(
        std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("exec {command}"))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log),
    )
    .spawn()?;
    crate::children::register(child.id());
    Ok((
        addr,
        Process {
            child: std::sync::Mutex::new(child),
            dir,
            grace: p.timeouts.2 + Duration::from_secs(5),
        },
    ))
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

    /// The server's address (`ip:port`), or `unix` for a Unix-domain socket.
    pub fn peer_addr(&self) -> String {
        match self {
            Conn::Tcp(s) => s.peer_addr().map(|a| a.to_string()).unwrap_or_default(),
            Conn::Unix(_) => "unix".into(),
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
