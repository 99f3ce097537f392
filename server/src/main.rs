//! `echowire-server`: the reference server's command line.
#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use clap::Parser;
use clap::builder::TypedValueParser;
use echowire_server::{Config, ListenAddr, Model, Server, handover};

/// The Echowire reference server (spec/PROTOCOL.md).
///
/// Prints one line `listening on ADDR` per listener once it accepts connections. SIGINT or
/// SIGTERM start a graceful shutdown: stop accepting, GOODBYE to every client, finish accepted
/// work up to --drain-timeout, exit 0. Exit 1 if the drain timeout expired and connections were
/// reset with work outstanding; a second SIGINT/SIGTERM ends the drain at once (every
/// connection reset) with exit status 128 + the signal number. Exit 2: bad settings.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on: HOST:PORT ([::1]:7878 for IPv6) or unix:/path/to.sock. Repeatable.
    /// Port 0 picks a free port.
    #[arg(long = "listen", value_name = "ADDR", default_values_t = Config::default().listen)]
    listen: Vec<ListenAddr>,
    /// I/O model.
    #[arg(long, value_enum, default_value_t = Config::default().model)]
    model: Model,
    /// Reactor threads (reactor model), 1 ..= 1024. Default: available cores.
    #[arg(long, value_name = "N", value_parser = threads)]
    reactors: Option<usize>,
    /// Worker threads for heavy requests (COMPUTE), 1 ..= 1024. Default: available cores.
    #[arg(long, value_name = "N", value_parser = threads)]
    workers: Option<usize>,
    /// Heavy requests queued for the workers before the server answers BUSY (1 ..= 1048576).
    #[arg(long, value_name = "N", default_value_t = Config::default().queue_depth,
          value_parser = clap::value_parser!(u32).range(1..=1 << 20).map(|n| n as usize))]
    queue_depth: usize,
    /// Largest frame Length accepted, announced in WELCOME (4096 ..= 16777216).
    #[arg(long, value_name = "BYTES", default_value_t = Config::default().max_frame,
          value_parser = clap::value_parser!(u32).range(4096..=16_777_216))]
    max_frame: u32,
    /// Connections served at once; more are answered ERROR CONNECTION_LIMIT and closed.
    #[arg(long, value_name = "N", default_value_t = Config::default().max_connections,
          value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    max_connections: usize,
    /// Requests a client may have outstanding, announced in WELCOME.
    #[arg(long, value_name = "N", default_value_t = Config::default().max_outstanding,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_outstanding: u32,
    /// Time from accept to a complete HELLO (e.g. 10s), 1s ..= 30s (spec §8.3).
    #[arg(long, value_name = "DURATION", default_value_t = Config::default().handshake_timeout.into(),
          value_parser = |s: &str| within(s, 30))]
    handshake_timeout: humantime::Duration,
    /// Time without a complete frame, nothing outstanding, before GOODBYE IDLE_TIMEOUT;
    /// 1s ..= 3600s (spec §8.3).
    #[arg(long, value_name = "DURATION", default_value_t = Config::default().idle_timeout.into(),
          value_parser = |s: &str| within(s, 3600))]
    idle_timeout: humantime::Duration,
    /// How long any drain (shutdown, GOODBYE, half-close) may take before the connection is
    /// reset; 1s ..= 600s (spec §8.3).
    #[arg(long, value_name = "DURATION", default_value_t = Config::default().drain_timeout.into(),
          value_parser = |s: &str| within(s, 600))]
    drain_timeout: humantime::Duration,
    /// Allowed peer uid on Unix sockets (SO_PEERCRED). Repeatable. Default: any uid.
    #[arg(long = "allow-uid", value_name = "UID")]
    allow_uid: Vec<u32>,
    /// Permission bits (octal) of created Unix socket files.
    #[arg(long, value_name = "MODE", default_value_t = OctalMode(Config::default().socket_mode))]
    socket_mode: OctalMode,
    /// Bytes one connection may make the server hold (input buffer, queued output, queued
    /// jobs) before it is no longer read, e.g. 2MiB. At least --max-frame + 12.
    /// Default: 2MiB, or --max-frame + 1MiB if that is larger.
    #[arg(long, value_name = "BYTES", value_parser = bytes_size)]
    max_connection_memory: Option<usize>,
    /// Bytes all connections together may hold, e.g. 1GiB. At the budget no connection is read;
    /// after --eviction-grace the heaviest connections that are not reading are reset.
    #[arg(long, value_name = "BYTES", default_value = "1GiB", value_parser = bytes_size)]
    memory_budget: usize,
    /// How long the server stays at its memory budget before it resets non-reading
    /// connections (those that took no output for that long); 100ms ..= 600s.
    #[arg(long, value_name = "DURATION", default_value_t = Config::default().eviction_grace.into())]
    eviction_grace: humantime::Duration,
    /// Reactor model: one SO_REUSEPORT TCP listener per reactor, each accepting its own
    /// connections (the kernel spreads them), instead of one acceptor thread handing them out.
    #[arg(long)]
    reuseport: bool,
    /// Zero-downtime restart through the control socket PATH: if a server listens there, take
    /// over its listening sockets (instead of binding --listen), let it drain and exit; then
    /// listen on PATH for the next successor. Without a server there, start normally.
    #[arg(long, value_name = "PATH")]
    handover: Option<std::path::PathBuf>,
    /// Log filter (tracing env-filter syntax), e.g. info, echowire_server=debug.
    #[arg(long, value_name = "FILTER", default_value = "info")]
    log: String,
}

/// A duration within 1 s ..= `max_s` seconds: the ranges of spec §8.3, which also keep every
/// deadline far from overflowing the clock.
fn within(s: &str, max_s: u64) -> Result<humantime::Duration, String> {
    let d: humantime::Duration = s.parse().map_err(|e| format!("{s:?}: {e}"))?;
    let secs = std::time::Duration::from(d);
    if secs < std::time::Duration::from_secs(1) || secs > std::time::Duration::from_secs(max_s) {
        return Err(format!(
            "{s} is outside 1s..={max_s}s, the range spec section 8.3 allows"
        ));
    }
    Ok(d)
}

/// A byte count: `65536`, `64KiB`, `2MiB`, `1GiB` (also `k`, `M`, `G` as powers of 1024).
fn bytes_size(s: &str) -> Result<usize, String> {
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
        .filter(|&b| b <= echowire_server::config::bounds::MEMORY_MAX as u64)
        .map(|b| b as usize)
        .ok_or_else(|| format!("{s} is above 1TiB"))
}

/// A thread count: 1 ..= 1024.
fn threads(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=1024).contains(&n) => Ok(n),
        Ok(n) => Err(format!("{n} threads is outside 1..=1024")),
        Err(e) => Err(format!("{s:?} is not a number: {e}")),
    }
}

/// Permission bits written and read in octal (`660`), at most `777`.
#[derive(Clone, Copy, Debug)]
struct OctalMode(u32);

impl std::str::FromStr for OctalMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match u32::from_str_radix(s, 8) {
            Ok(m) if m <= 0o777 => Ok(OctalMode(m)),
            Ok(_) => Err(format!("{s:?} is above 777, the largest permission mode")),
            Err(e) => Err(format!("{s:?} is not an octal mode: {e}")),
        }
    }
}

impl std::fmt::Display for OctalMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:o}", self.0)
    }
}

/// What ends the wait in `main`.
enum Event {
    Signal(i32),
    Handover(handover::Handing),
}

/// The listening sockets: passed by systemd, taken from a running server at `handover`, or
/// bound from `--listen`.
fn listeners(
    config: &Config,
    handover: Option<&std::path::Path>,
    taken: &mut Option<handover::Taken>,
) -> std::io::Result<Vec<echowire_server::listener::Bound>> {
    if let Some(b) = handover::from_systemd()? {
        tracing::info!(
            sockets = b.len(),
            "using the listening sockets passed by systemd"
        );
        return Ok(b);
    }
    if let Some(path) = handover
        && let Some(mut t) = handover::take(path).map_err(|e| {
            std::io::Error::new(e.kind(), format!("hand-over from {}: {e}", path.display()))
        })?
    {
        let b = std::mem::take(&mut t.listeners);
        *taken = Some(t);
        return Ok(b);
    }
    config
        .listen
        .iter()
        .map(|a| {
            echowire_server::listener::bind_opts(a, config.socket_mode, config.reuseport)
                .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {a}: {e}")))
        })
        .collect()
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = match tracing_subscriber::EnvFilter::try_new(&args.log) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: invalid --log filter {:?}: {e}", args.log);
            return ExitCode::from(2);
        }
    };
    use std::io::IsTerminal;
    // The NO_COLOR convention: only a non-empty value disables colour.
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let ansi = std::io::stderr().is_terminal() && !no_color;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
    let defaults = Config::default();
    let config = Config {
        listen: args.listen,
        model: args.model,
        reactors: args.reactors.unwrap_or(defaults.reactors),
        workers: args.workers.unwrap_or(defaults.workers),
        queue_depth: args.queue_depth,
        max_frame: args.max_frame,
        max_connections: args.max_connections,
        max_outstanding: args.max_outstanding,
        handshake_timeout: args.handshake_timeout.into(),
        idle_timeout: args.idle_timeout.into(),
        drain_timeout: args.drain_timeout.into(),
        allow_uids: args.allow_uid,
        socket_mode: args.socket_mode.0,
        max_connection_memory: args.max_connection_memory.unwrap_or_else(|| {
            defaults
                .max_connection_memory
                .max(args.max_frame as usize + defaults.max_pending_output)
        }),
        memory_budget: args.memory_budget,
        eviction_grace: args.eviction_grace.into(),
        reuseport: args.reuseport,
        ..defaults
    };
    if let Err(e) = config.validate() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    match echowire_server::descriptors::fit(&config) {
        Ok(fit) => {
            if let Some(w) = fit.warning(&config) {
                tracing::warn!("{w}");
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    }
    // Signals first, so a SIGTERM right after "listening on" is already handled.
    let mut signals = match signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Listening sockets: from systemd, from a running server (hand-over), or bound here.
    let mut taken = None;
    let bound = match listeners(&config, args.handover.as_deref(), &mut taken) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let offer = match &args.handover {
        Some(_) => match handover::Offer::new(&bound) {
            Ok(o) => Some(o),
            Err(e) => {
                eprintln!("error: cannot prepare the hand-over: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let mut server = match Server::builder().config(config).listeners(bound).start() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    {
        let mut out = std::io::stdout().lock();
        for a in server.local_addrs() {
            let _ = writeln!(out, "listening on {a}");
        }
        let _ = out.flush();
    }
    let stopper = server.stopper().expect("running");
    let (tx, events) = crossbeam_channel::unbounded::<Event>();
    if let Some(taken) = taken {
        // We accept now: the old server stops and gives up the control path.
        if let Err(e) = taken.confirm() {
            tracing::warn!(error = %e, "the old server did not confirm the hand-over");
        } else {
            tracing::info!("took over the listening sockets; the old server is draining");
        }
    }
    let offer = Arc::new(std::sync::Mutex::new(offer));
    let mut control_path = None;
    if let Some(path) = &args.handover {
        match handover::Control::bind(path) {
            Ok(control) => {
                control_path = Some(path.clone());
                let (offer, tx) = (offer.clone(), tx.clone());
                std::thread::spawn(move || {
                    if let Ok(handing) = control.wait(&offer) {
                        let _ = tx.send(Event::Handover(handing));
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, path = %path.display(), "cannot offer hand-overs")
            }
        }
    }
    std::thread::spawn(move || {
        for sig in signals.forever() {
            if tx.send(Event::Signal(sig)).is_err() {
                break;
            }
        }
    });
    match events.recv() {
        Ok(Event::Signal(sig)) => {
            tracing::info!(
                signal = sig,
                "shutting down gracefully (a second signal aborts the drain)"
            );
            // The listeners close with this server: no copy may keep them open.
            drop(offer.lock().unwrap_or_else(|p| p.into_inner()).take());
            if let Some(p) = &control_path {
                let _ = std::fs::remove_file(p);
            }
            stopper.begin_shutdown();
        }
        Ok(Event::Handover(handing)) => {
            tracing::info!("listening sockets handed to a new server; draining");
            stopper.hand_over();
            drop(offer.lock().unwrap_or_else(|p| p.into_inner()).take());
            if let Err(e) = handing.release() {
                tracing::warn!(error = %e, "could not tell the new server");
            }
        }
        Err(_) => stopper.begin_shutdown(),
    }
    // A second signal ends the drain at once.
    let aborted_by = Arc::new(AtomicI32::new(0));
    {
        let aborted_by = aborted_by.clone();
        std::thread::spawn(move || {
            while let Ok(ev) = events.recv() {
                if let Event::Signal(sig) = ev {
                    tracing::warn!(
                        signal = sig,
                        "second signal: aborting the drain, resetting every connection"
                    );
                    aborted_by.store(sig, Ordering::Release);
                    stopper.abort();
                    break;
                }
            }
        });
    }
    let counters = server.join();
    let entries = counters.entries();
    let summary: Vec<String> = entries.iter().map(|(k, v)| format!("{k}={v}")).collect();
    tracing::info!(errors_by_code = ?counters.errors_by_code(), "stopped: {}", summary.join(" "));
    let sig = aborted_by.load(Ordering::Acquire);
    if sig != 0 {
        return ExitCode::from((128 + sig).clamp(1, 255) as u8);
    }
    let resets = counters.drain_resets.load(Ordering::Relaxed);
    if resets > 0 {
        eprintln!(
            "error: the drain timeout expired: {resets} connections were reset with work outstanding"
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
