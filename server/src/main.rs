//! `echowire-server`: the reference server's command line.
#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use clap::Parser;
use echowire_server::{Config, Server, handover};

/// The Echowire reference server (spec/PROTOCOL.md).
///
/// Prints one line `listening on ADDR` per listener once it accepts connections. SIGINT or
/// SIGTERM start a graceful shutdown: stop accepting, GOODBYE to every client, finish accepted
/// work up to --drain-timeout, exit 0. Exit 1 if the drain timeout expired and connections were
/// reset with work outstanding; a second SIGINT/SIGTERM ends the drain at once (every
/// connection reset) with exit status 128 + the signal number. SIGHUP is logged and ignored
/// (restart without downtime: start a successor with the same --handover PATH). Exit 2: bad
/// settings, or settings that cannot take effect together (named).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Every setting of the server: its flags are `Config`'s (echowire_server::config).
    #[command(flatten)]
    config: Config,
    /// Zero-downtime restart through the control socket PATH: if a server listens there, take
    /// over its listening sockets (instead of binding --listen), let it drain and exit; then
    /// listen on PATH for the next successor. Without a server there, start normally.
    #[arg(long, value_name = "PATH")]
    handover: Option<std::path::PathBuf>,
    /// Log filter (tracing env-filter syntax), e.g. info, echowire_server=debug. RUST_LOG, if
    /// set, adds its directives after these (the more specific directive wins).
    #[arg(long, value_name = "FILTER", default_value = "info")]
    log: String,
    /// Log line format on stderr: text, or json (one object per line, for log collectors).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Settings that are each valid but cannot take effect together: exit 2, naming the flags.
/// `systemd_unix`: whether socket activation passed a Unix socket (`None`: no activation).
fn check_combinations(
    matches: &clap::ArgMatches,
    config: &Config,
    systemd: Option<&[echowire_server::listener::Bound]>,
    handover: Option<&std::path::Path>,
) -> Result<(), String> {
    use clap::parser::ValueSource;
    use echowire_server::listener::{Bound, ListenAddr};
    let given = |id: &str| {
        matches
            .value_source(id)
            .is_some_and(|s| s != ValueSource::DefaultValue)
    };
    let model = format!("{:?}", config.model).to_lowercase();
    if config.model != echowire_server::Model::Reactor {
        if given("reactors") {
            return Err(format!(
                "--reactors applies only to --model reactor (this is --model {model})"
            ));
        }
        if config.reuseport {
            return Err(format!(
                "--reuseport applies only to --model reactor (this is --model {model})"
            ));
        }
    }
    let has_unix = match systemd {
        Some(b) => b.iter().any(|b| matches!(b, Bound::Unix(..))),
        None => config
            .listen
            .iter()
            .any(|a| matches!(a, ListenAddr::Unix(_))),
    };
    if !config.allow_uids.is_empty() && !has_unix {
        return Err(
            "--allow-uid checks the peers of Unix sockets, and no listener is one (--listen \
             unix:PATH)"
                .into(),
        );
    }
    if systemd.is_some() {
        for flag in ["socket_mode", "reuseport", "listen"] {
            if given(flag) {
                let flag = format!("--{}", flag.replace('_', "-"));
                return Err(format!(
                    "{flag} does not apply: the listening sockets come from systemd (LISTEN_FDS)"
                ));
            }
        }
        if handover.is_some() {
            return Err("--handover and socket activation (LISTEN_FDS) cannot be combined".into());
        }
    } else if given("socket_mode") && !has_unix {
        return Err(
            "--socket-mode sets the permissions of Unix socket files, and no --listen is one"
                .into(),
        );
    }
    if let Some(path) = handover {
        handover::check_path(path).map_err(|e| format!("--handover: {e}"))?;
    }
    Ok(())
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
    systemd: Option<Vec<echowire_server::listener::Bound>>,
    handover: Option<&std::path::Path>,
    taken: &mut Option<handover::Taken>,
) -> std::io::Result<Vec<echowire_server::listener::Bound>> {
    if let Some(b) = systemd {
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
    // Socket activation first: its descriptors are 3, 4, …, and nothing this process opens (the
    // signal pipe) may be taken for one of them.
    let systemd = match handover::from_systemd() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let matches = <Args as clap::CommandFactory>::command().get_matches();
    let args = match <Args as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(a) => a,
        Err(e) => e.exit(),
    };
    let mut directives = args.log.clone();
    let rust_log = std::env::var("RUST_LOG").unwrap_or_default();
    if !rust_log.trim().is_empty() {
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&rust_log) {
            eprintln!("error: invalid RUST_LOG filter {rust_log:?}: {e}");
            return ExitCode::from(2);
        }
        directives = format!("{directives},{rust_log}");
    }
    let filter = match tracing_subscriber::EnvFilter::try_new(&directives) {
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
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => logs.with_ansi(ansi).init(),
        LogFormat::Json => logs.json().init(),
    }
    let mut config = args.config;
    if matches.value_source("max_connection_memory")
        == Some(clap::parser::ValueSource::DefaultValue)
    {
        // The default cap leaves room for one frame of --max-frame beside its queued output.
        config.max_connection_memory = config
            .max_connection_memory
            .max(config.max_frame as usize + config.max_pending_output);
    }
    if let Err(e) = config.validate() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    if let Err(e) = check_combinations(
        &matches,
        &config,
        systemd.as_deref(),
        args.handover.as_deref(),
    ) {
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
        signal_hook::consts::SIGHUP,
    ]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Listening sockets: from systemd, from a running server (hand-over), or bound here.
    let mut taken = None;
    let bound = match listeners(&config, systemd, args.handover.as_deref(), &mut taken) {
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
    let stopper = server.stopper().expect("running");
    let (tx, events) = crossbeam_channel::unbounded::<Event>();
    let took_over = taken.is_some();
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
            Err(e) if took_over => {
                // The old server is already draining: keep serving, without hand-overs.
                tracing::warn!(error = %e, path = %path.display(), "cannot offer hand-overs")
            }
            Err(e) => {
                eprintln!(
                    "error: --handover {}: cannot bind the control socket: {e}",
                    path.display()
                );
                stopper.abort();
                server.join();
                return ExitCode::from(2);
            }
        }
    }
    // Ready: every listener accepts, and the hand-over path (if any) is ours.
    {
        let mut out = std::io::stdout().lock();
        for a in server.local_addrs() {
            let _ = writeln!(out, "listening on {a}");
        }
        let _ = out.flush();
    }
    std::thread::spawn(move || {
        for sig in signals.forever() {
            if sig == signal_hook::consts::SIGHUP {
                // Deliberately ignored (a terminal closing must not stop a server): a restart
                // is a successor started with --handover, a stop is SIGTERM.
                tracing::info!(
                    "SIGHUP ignored: stop with SIGTERM; restart without downtime by starting a \
                     new server with the same --handover PATH"
                );
                continue;
            }
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
