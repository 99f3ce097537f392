//! `echowire-conformance`: run the conformance suite against any Echowire server.
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use echowire_conformance::split::Strategy;
use echowire_conformance::target::TargetSpec;
use echowire_conformance::{Options, case, report};

/// Conformance runner for the Echowire protocol (spec/PROTOCOL.md).
///
/// Replays the cases of spec/conformance against a server, under byte-split strategies, and
/// reports a verdict per case and spec section. Exit code: 0 if no MUST case failed (with
/// --strict, no SHOULD either) and every target stayed reachable; 1 otherwise; 2 on bad usage.
#[derive(Parser, Debug)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    /// The runner's own diagnostics on standard error (targets started and stopped, probes,
    /// cases, signals; with an embedded target, the reference server's log too): a level
    /// (`info`, `debug`) or a filter as `RUST_LOG` takes (`echowire_conformance=debug`). Default:
    /// `RUST_LOG`, else off.
    #[arg(long, global = true, value_name = "FILTER")]
    log: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the suite (the default).
    Run(Box<RunArgs>),
    /// List the cases: ID, level, title.
    List(ListArgs),
    /// Generate load and measure latency and throughput (closed or open loop).
    Load(LoadArgs),
    /// Test a client: the runner plays the server and drives the client through a driver
    /// program (spec/conformance/CLIENT-DRIVER.md).
    Client(Box<ClientArgs>),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to standard
    /// output, e.g. `echowire-conformance completions bash > /etc/bash_completion.d/echowire-conformance`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to standard output, e.g.
    /// `echowire-conformance man > echowire-conformance.1 && man ./echowire-conformance.1`.
    Man,
    /// Fuzz a server: random sessions, every reply judged against the executable model of the
    /// spec; each confirmed divergence is shrunk and written as a case file (`--cases DIR`
    /// replays it).
    Fuzz(Box<FuzzArgs>),
}

#[derive(Args, Debug)]
struct FuzzArgs {
    /// Server to test: HOST:PORT, unix:/path, or embedded[:reactor|threaded|blocking]. A
    /// network target is fuzzed with its own settings and never signalled; prefer --exec.
    #[arg(long = "target", value_name = "TARGET", conflicts_with = "exec")]
    target: Option<TargetSpec>,
    /// An implementation the runner starts itself (same placeholders as the suite's --exec): it
    /// is started once per profile and once more for each session that signals it.
    #[arg(long, value_name = "CMD")]
    exec: Option<String>,
    /// --exec listens on a Unix socket ({listen} is unix:PATH).
    #[arg(long, requires = "exec")]
    exec_unix: bool,
    /// Also run every session against this implementation (a command, as --exec): each one is
    /// judged by the model on its own, and the report shows both (differential fuzzing).
    #[arg(long, value_name = "CMD")]
    against: Option<String>,
    /// The campaign's seed (default: from the clock, printed). The same seed draws the same
    /// sessions.
    #[arg(long)]
    seed: Option<u64>,
    /// Stop after this many sessions.
    #[arg(long, value_name = "N", conflicts_with = "session")]
    sessions: Option<u64>,
    /// Run only session N of the campaign (what a finding names), e.g. --seed 7 --session 42.
    #[arg(long, value_name = "N")]
    session: Option<u64>,
    /// Stop after this long: `90s`, `10m`, or a number of seconds (default 60 s unless
    /// --sessions is given).
    #[arg(long, alias = "seconds", value_name = "DURATION", value_parser = parse_seconds)]
    duration: Option<Duration>,
    /// Sessions run at once.
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Profiles a controlled target is started with, comma-separated (default:
    /// default,small,busy,tight).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    profile: Vec<echowire_conformance::target::Profile>,
    /// Where each finding is written as a case file (created when there is one).
    #[arg(long, value_name = "DIR", default_value = "fuzz-findings")]
    out: PathBuf,
    /// Stop at the first confirmed finding.
    #[arg(long)]
    stop_at_first: bool,
    /// Do not shrink findings.
    #[arg(long)]
    no_shrink: bool,
    /// The oracle's timing tolerance in milliseconds (a timer may fire this much late, a
    /// deadline may be judged this much early); raise it on a loaded machine.
    #[arg(long, value_name = "MS", default_value_t = echowire_conformance::oracle::DEFAULT_SLACK_MS)]
    slack_ms: u64,
    /// Deadline of each wait.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_wait)]
    timeout: Duration,
    /// A network target's handshake timeout (spec §8.3).
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    handshake_timeout: Option<Duration>,
    /// A network target's idle timeout (spec §8.3).
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    idle_timeout: Option<Duration>,
    /// A network target's drain timeout (spec §3.8, §8.3).
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    drain_timeout: Option<Duration>,
    /// Write the campaign's report as JSON (sessions, findings, coverage).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a JUnit XML report (one test case per finding, and one for the campaign).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// No progress on standard error.
    #[arg(long)]
    quiet: bool,
    /// Print each session's steps (JSON, as in a case file) and how it ended, on standard error.
    #[arg(long)]
    show_sessions: bool,
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct ClientArgs {
    #[command(subcommand)]
    action: Option<ClientAction>,
    /// The client's driver command (run by /bin/sh; commands on its stdin, events on its
    /// stdout, JSON lines). Repeatable: one report comparing the clients.
    #[arg(long, value_name = "CMD", required = true)]
    exec: Vec<String>,
    /// Run the cases of this file instead of the built-in ones (a client fuzz finding).
    /// Repeatable.
    #[arg(long, value_name = "FILE")]
    case_file: Vec<PathBuf>,
    /// Only these cases (ID or glob with *). Repeatable.
    #[arg(long = "case", value_name = "ID-OR-GLOB")]
    case: Vec<String>,
    /// Skip these cases (ID or glob). Repeatable.
    #[arg(long = "exclude", value_name = "ID-OR-GLOB")]
    exclude: Vec<String>,
    /// Split strategies of the server's octets: whole, bytewise, boundaries, random:N, delayed.
    #[arg(
        long,
        value_name = "LIST",
        default_value = "whole,bytewise,random:2,delayed",
        value_delimiter = ','
    )]
    splits: Vec<Strategy>,
    /// Seed of the random and delayed splits.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Deadline of each wait.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_wait)]
    timeout: Duration,
    /// Cases run in parallel (default: twice the number of cores, at least 4; a case mostly
    /// waits on the target).
    #[arg(long, default_value_t = default_jobs())]
    jobs: usize,
    /// SHOULD failures fail the run too.
    #[arg(long)]
    strict: bool,
    /// Write the JSON report.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a JUnit XML report.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write a self-contained HTML report.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Write the exchange of each failing case as a pcapng file in DIR (the driver's client is
    /// the TCP client, the runner's listener the server), as the server runner's --pcap.
    #[arg(long, value_name = "DIR")]
    pcap: Option<PathBuf>,
    /// With --pcap: a file for every case, each with every run.
    #[arg(long, requires = "pcap")]
    pcap_all: bool,
    /// No progress on standard error.
    #[arg(long)]
    quiet: bool,
    /// List the client cases instead of running them.
    #[arg(long)]
    list: bool,
    /// Replay exactly this split of the server's octets (what a shrunk failure reports), e.g.
    /// --cut-at 1,2,3. Replaces --splits.
    #[arg(long, value_name = "OFFSETS", value_parser = echowire_conformance::split::parse_cut_set)]
    cut_at: Option<echowire_conformance::split::Cut>,
    /// Do not shrink failures under multi-cut splits.
    #[arg(long)]
    no_shrink: bool,
}

#[derive(Subcommand, Debug)]
enum ClientAction {
    /// Fuzz a client: the runner plays a random, well- or misbehaving server while it drives
    /// the client through random commands; what the client writes and reports is judged
    /// against the codec's client session. Each confirmed divergence is written as a client
    /// case file (`client --case-file F` replays it).
    Fuzz(ClientFuzzArgs),
    /// List the client cases: ID, level, title (as `list` does for the server cases; the same
    /// as `client --list`).
    List,
}

#[derive(Args, Debug)]
struct ClientFuzzArgs {
    /// The client's driver command (run by /bin/sh, once per session).
    #[arg(long, value_name = "CMD")]
    exec: String,
    /// The campaign's seed (default: from the clock, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Stop after this many sessions.
    #[arg(long, value_name = "N")]
    sessions: Option<u64>,
    /// Stop after this long: `90s`, `10m`, or a number of seconds (default 60 s unless
    /// --sessions is given).
    #[arg(long, alias = "seconds", value_name = "DURATION", value_parser = parse_seconds)]
    duration: Option<Duration>,
    /// Sessions run at once.
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Where each finding is written as a case file.
    #[arg(long, value_name = "DIR", default_value = "fuzz-findings")]
    out: PathBuf,
    /// Stop at the first confirmed finding.
    #[arg(long)]
    stop_at_first: bool,
    /// Deadline of each wait for the client.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_wait)]
    timeout: Duration,
    /// Write the campaign's report as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// No progress on standard error.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args, Debug)]
struct LoadArgs {
    /// Server to load: HOST:PORT, unix:/path, or embedded[:MODEL]. Default: embedded.
    #[arg(long, value_name = "TARGET", default_value = "embedded")]
    target: TargetSpec,
    /// Connections.
    #[arg(long, default_value_t = 100)]
    connections: usize,
    /// Requests in flight per connection (closed loop).
    #[arg(long, default_value_t = 16)]
    depth: usize,
    /// Open loop: requests per second over all connections, latency from the intended send time.
    #[arg(long, value_name = "REQ/S")]
    rate: Option<f64>,
    /// Measurement time.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Warm-up before measuring.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// ECHO payload bytes.
    #[arg(long, default_value_t = 64)]
    echo_size: usize,
    /// Share of COMPUTE requests, 0..=1.
    #[arg(long, default_value_t = 0.0)]
    compute_share: f64,
    /// COMPUTE cost (SHA-256 iterations).
    #[arg(long, default_value_t = 10_000)]
    compute_cost: u32,
    /// Share of PING requests, 0..=1.
    #[arg(long, default_value_t = 0.0)]
    ping_share: f64,
    /// Event-loop threads of the generator.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Hold N idle (handshaken) connections for --duration instead of sending load.
    #[arg(long, value_name = "N")]
    idle: Option<usize>,
    /// Send exactly N requests (closed loop, no warm-up), stop when all are answered, and fail
    /// if --duration passes first: for counting instructions or system calls per request.
    #[arg(long, value_name = "N", conflicts_with_all = ["rate", "idle"])]
    requests: Option<u64>,
    /// Write the result as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// No progress lines.
    #[arg(long)]
    quiet: bool,
    /// No handshake (for a raw byte-echo baseline that returns every frame unchanged).
    #[arg(long)]
    raw: bool,
}

#[derive(Args, Debug, Clone)]
struct Selection {
    /// Only these cases (ID or glob with *). Repeatable.
    #[arg(long = "case", value_name = "ID-OR-GLOB")]
    case: Vec<String>,
    /// Only this spec section (and its subsections). Repeatable.
    #[arg(long = "section", value_name = "N")]
    section: Vec<String>,
    /// Skip these cases (known failures; ID or glob). Repeatable.
    #[arg(long = "exclude", value_name = "ID-OR-GLOB")]
    exclude: Vec<String>,
    /// Read case files from this directory instead of the built-in copy of spec/conformance.
    #[arg(long, value_name = "DIR", conflicts_with = "case_file")]
    cases: Option<PathBuf>,
    /// Run the cases of this one file (a fuzz finding, say) instead of the built-in ones.
    /// Repeatable.
    #[arg(long, value_name = "FILE")]
    case_file: Vec<PathBuf>,
}

impl Selection {
    /// Every case the selection reads from (before filtering): the files, the directory, or the
    /// built-in copy.
    fn all(&self) -> Result<Vec<case::Case>, String> {
        if !self.case_file.is_empty() {
            let mut texts = Vec::new();
            for p in &self.case_file {
                let t = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
                texts.push((p.display().to_string(), t));
            }
            let refs: Vec<(&str, &str)> = texts
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect();
            return case::parse(&refs);
        }
        match &self.cases {
            Some(dir) => case::load_dir(dir),
            None => Ok(case::builtin()),
        }
    }
}

#[derive(Args, Debug, Clone)]
struct RunArgs {
    /// Server to test: HOST:PORT, unix:/path, or embedded[:reactor|threaded|blocking] (the
    /// reference server started in this process on an ephemeral port). Repeatable: one report
    /// comparing the targets. Default: embedded.
    #[arg(long = "target", value_name = "TARGET")]
    target: Vec<TargetSpec>,
    /// An implementation the runner starts itself, once per profile, from this command template
    /// (run by /bin/sh). Placeholders: {listen} (127.0.0.1:PORT, or unix:PATH with --exec-unix),
    /// {host}, {port}, {unix_path}, {max_frame_size}, {max_outstanding}, {workers},
    /// {queue_depth}, {handshake_timeout_ms}, {idle_timeout_ms}, {drain_timeout_ms}. The runner
    /// sends it SIGTERM for the drain cases and keeps its stderr for the report. Repeatable.
    #[arg(long, value_name = "CMD")]
    exec: Vec<String>,
    /// --exec targets listen on a Unix socket ({listen} is unix:PATH).
    #[arg(long, requires = "exec")]
    exec_unix: bool,
    /// What the reports call the --exec target of the same rank (default: the command's first
    /// words, paths shortened; the full command is in each report's header). Repeatable.
    #[arg(long = "name", value_name = "NAME", requires = "exec")]
    name: Vec<String>,
    #[command(flatten)]
    select: Selection,
    /// SHOULD failures fail the run too.
    #[arg(long)]
    strict: bool,
    /// Split strategies, comma-separated: whole, bytewise, boundaries, random:N, coalesced, delayed.
    #[arg(
        long,
        value_name = "LIST",
        default_value = "whole,bytewise,coalesced,random:2,delayed",
        value_delimiter = ','
    )]
    splits: Vec<Strategy>,
    /// Seed of the random and delayed splits (a failure names its seed; pass it to replay).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Deadline of each wait (e.g. 10s); raise it on a loaded machine.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_wait)]
    timeout: Duration,
    /// Cases run in parallel (default: twice the number of cores, at least 4; a case mostly
    /// waits on the target).
    #[arg(long, default_value_t = default_jobs())]
    jobs: usize,
    /// The network target's handshake timeout (spec §8.3), so the timeout cases can hold it to
    /// it. Undeclared, the spec's upper bound (30s) is used.
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    handshake_timeout: Option<Duration>,
    /// The network target's idle timeout (spec §8.3). Undeclared, the idle cases are Skipped.
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    idle_timeout: Option<Duration>,
    /// The network target's drain timeout (spec §3.8, §8.3). Undeclared, the drain-timeout cases
    /// are Skipped.
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    drain_timeout: Option<Duration>,
    /// Write the JSON report (schema in spec/conformance/README.md).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a JUnit XML report.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write a self-contained HTML report.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Write the exchange of each failing case as a pcapng file in DIR (created if missing):
    /// one file per case, one TCP connection per failing run, with the runner's real write
    /// boundaries and times, and the case, split and failure as packet comments. Open it with
    /// the dissector of spec/wireshark/ (`tshark -X lua_script:echowire.lua -r FILE -V`).
    #[arg(long, value_name = "DIR")]
    pcap: Option<PathBuf>,
    /// With --pcap: a file for every case that ran, each with every run (the passing ones too).
    #[arg(long, requires = "pcap")]
    pcap_all: bool,
    /// No progress on standard error, only the report.
    #[arg(long)]
    quiet: bool,
    /// Replay exactly this split: cut the client's stream after these octet counts (what a
    /// shrunk failure reports), e.g. --cut-at 13,27. Replaces --splits.
    #[arg(long, value_name = "OFFSETS", value_parser = echowire_conformance::split::parse_cut_set)]
    cut_at: Option<echowire_conformance::split::Cut>,
    /// Do not shrink failures under multi-cut splits to their smallest failing split.
    #[arg(long)]
    no_shrink: bool,
    /// Run a failing case again, alone, up to N times once every case has run: a case that
    /// then passes counts as passed and is reported as FLAKY with its first failure (for a
    /// loaded CI machine where a timeout may expire early; a real failure fails every time).
    #[arg(long, value_name = "N", default_value_t = 0)]
    retries: u32,
    /// Cases the target is known to fail (one ID or glob per line, # comments): listed failures
    /// do not fail the run; a listed case that passes does, until its line is removed.
    #[arg(long, value_name = "FILE")]
    expected_failures: Option<PathBuf>,
    /// Write the IDs of the cases that failed, in the --expected-failures format.
    #[arg(long, value_name = "FILE")]
    write_failures: Option<PathBuf>,
    /// Timing tolerance of judged cases (fuzz findings) in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = echowire_conformance::oracle::DEFAULT_SLACK_MS)]
    slack_ms: u64,
    /// Start no case once N cases have failed (those running finish); the report says the run
    /// is incomplete and lists the cases not run.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_failures: Option<u64>,
    /// Stop at the first failure (--max-failures 1).
    #[arg(long, conflicts_with = "max_failures")]
    fail_fast: bool,
    /// Start no case after this long (`10m`, `90s`); the reports are written for what ran.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    deadline: Option<Duration>,
    /// Run the cases even when the probe shows the target is not an Echowire server (by
    /// default the run stops there, saying what answered).
    #[arg(long)]
    force: bool,
    /// The target's COMPUTE speed, in SHA-256 iterations per second: each case's waits grow by
    /// the time its COMPUTEs take at that rate (cases send costs up to 3,000,000). For a
    /// correct but slow server; the spec sets no speed (section 4.6).
    #[arg(long, value_name = "ITERATIONS_PER_S", value_parser = clap::value_parser!(u64).range(1..))]
    compute_rate: Option<u64>,
}

#[derive(Args, Debug)]
struct ListArgs {
    #[command(flatten)]
    select: Selection,
}

/// Twice the number of cores, at least 4. A case mostly waits on the target's answers and
/// timers: the 312 cases against the embedded reference took 10 s of CPU in 50 s of wall time
/// with 4 jobs on two cores, 65 s with 2 jobs (one per core).
fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(4, |n| (2 * n.get()).max(4))
}

/// Whether `path` names standard output (`-`).
fn is_stdout(path: &Option<PathBuf>) -> bool {
    path.as_deref().is_some_and(|p| p.as_os_str() == "-")
}

/// Writes a report to its file, or to standard output for `-`; says where on standard error.
fn write_report(path: &std::path::Path, what: &str, text: &str) -> bool {
    if path.as_os_str() == "-" {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        return out
            .write_all(text.as_bytes())
            .and_then(|_| out.flush())
            .is_ok();
    }
    match std::fs::write(path, text) {
        Ok(()) => {
            eprintln!("{what} written to {}", path.display());
            true
        }
        Err(e) => {
            eprintln!(
                "error: cannot write the {what} report to {}: {e}",
                path.display()
            );
            false
        }
    }
}

/// At most one report may go to standard output; the terminal report then goes to standard
/// error. `Err` names the clash.
fn terminal_to_stderr(paths: &[&Option<PathBuf>]) -> Result<bool, String> {
    match paths.iter().filter(|p| is_stdout(p)).count() {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err("only one report can be written to standard output (-)".into()),
    }
}

fn load(sel: &Selection) -> Result<Vec<case::Case>, String> {
    let all = sel.all()?;
    let chosen = echowire_conformance::select(all, &sel.case, &sel.section, &sel.exclude);
    if chosen.is_empty() {
        return Err("no case matches the selection".into());
    }
    Ok(chosen)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_log(cli.log.as_deref());
    if !matches!(cli.command, None | Some(Command::Run(_))) {
        stop_children_on_interrupt();
    }
    match cli.command {
        Some(Command::List(l)) => list(&l),
        Some(Command::Run(r)) => run(*r),
        Some(Command::Load(l)) => load_cmd(l),
        Some(Command::Client(c)) => client_cmd(*c),
        Some(Command::Fuzz(f)) => fuzz_cmd(*f),
        Some(Command::Completions { shell }) => {
            use clap::CommandFactory;
            let mut cmd = Cli::command();
            clap_complete::generate(
                shell,
                &mut cmd,
                "echowire-conformance",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
        Some(Command::Man) => {
            use clap::CommandFactory;
            match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        None => run(cli.run),
    }
}

fn list(args: &ListArgs) -> ExitCode {
    let cases = match load(&args.select) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    for c in &cases {
        let req = if c.requires.is_empty() {
            String::new()
        } else {
            let names: Vec<&str> = c.requires.iter().map(|r| r.name()).collect();
            format!(" (requires {})", names.join(", "))
        };
        println!("{:<46} {:<6} {}{req}", c.id, c.level.to_string(), c.title);
    }
    println!("{} cases", cases.len());
    ExitCode::SUCCESS
}

/// The capture options of `--pcap DIR` / `--pcap-all`: the directory is created now, so a path
/// that cannot hold files fails the command before any case runs.
fn capture_dir(
    dir: &Option<PathBuf>,
    all: bool,
) -> Result<Option<echowire_conformance::capture::CaptureOptions>, String> {
    let Some(dir) = dir else { return Ok(None) };
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("--pcap {}: cannot create the directory: {e}", dir.display()))?;
    Ok(Some(echowire_conformance::capture::CaptureOptions {
        dir: dir.clone(),
        all,
    }))
}

fn run(args: RunArgs) -> ExitCode {
    let to_stderr =
        match terminal_to_stderr(&[&args.json, &args.junit, &args.html, &args.write_failures]) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
    let cases = match load(&args.select) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let expected = match &args.expected_failures {
        None => None,
        Some(path) => {
            let parsed = std::fs::read_to_string(path)
                .map_err(|e| format!("{}: {e}", path.display()))
                .and_then(|text| {
                    let all = args.select.all()?;
                    echowire_conformance::expected::ExpectedFailures::parse(
                        &path.display().to_string(),
                        &text,
                        &all,
                    )
                });
            match parsed {
                Ok(x) => Some(x),
                Err(e) => {
                    eprintln!("error: --expected-failures {e}");
                    return ExitCode::from(2);
                }
            }
        }
    };
    // The NO_COLOR convention: only a non-empty value disables colour.
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let color = std::io::stdout().is_terminal() && !no_color;
    let err_color = std::io::stderr().is_terminal() && !no_color;
    let mut targets = args.target.clone();
    if args.name.len() > args.exec.len() {
        eprintln!(
            "error: {} --name for {} --exec target(s): each --name names the --exec of the same rank",
            args.name.len(),
            args.exec.len()
        );
        return ExitCode::from(2);
    }
    for (i, template) in args.exec.iter().enumerate() {
        let mut e = echowire_conformance::target::ExecSpec {
            template: template.clone(),
            unix: args.exec_unix,
            name: args.name.get(i).cloned(),
        };
        if let Err(msg) = e.validate() {
            eprintln!("error: {msg}");
            return ExitCode::from(2);
        }
        // Names key the reports: two commands with the same short name are numbered.
        let short = TargetSpec::Exec(e.clone()).to_string();
        let taken = |n: &str| targets.iter().any(|t| t.to_string() == n);
        if taken(&short) {
            let mut k = 2;
            while taken(&format!("{short} #{k}")) {
                k += 1;
            }
            e.name = Some(format!("{short} #{k}"));
        }
        targets.push(TargetSpec::Exec(e));
    }
    let opts = Options {
        targets: if targets.is_empty() {
            Options::default().targets
        } else {
            targets
        },
        strategies: match &args.cut_at {
            Some(cut) => vec![Strategy::Exactly(cut.clone())],
            None => args.splits.clone(),
        },
        seed: args.seed,
        timeout: args.timeout,
        jobs: args.jobs,
        progress: !args.quiet,
        color,
        liveness: true,
        shrink: !args.no_shrink,
        retries: args.retries,
        timeouts: echowire_conformance::target::Timeouts {
            handshake: args.handshake_timeout,
            idle: args.idle_timeout,
            drain: args.drain_timeout,
        },
        slack_ms: args.slack_ms,
        case_files: args.select.case_file.clone(),
        max_failures: if args.fail_fast {
            Some(1)
        } else {
            args.max_failures
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
        },
        force: args.force,
        compute_rate: args.compute_rate,
        capture: match capture_dir(&args.pcap, args.pcap_all) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        stop: echowire_conformance::Stop::default(),
    };
    if let Some(d) = args.deadline {
        let stop = opts.stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(d);
            stop.stop(format!(
                "the --deadline of {} passed",
                humantime::format_duration(d)
            ));
        });
    }
    let total = cases.len() * opts.targets.len();
    let progress = (!args.quiet).then(|| {
        echowire_conformance::progress::Progress::new(
            total,
            std::io::stderr().is_terminal(),
            err_color,
        )
    });
    let ticker = progress.as_ref().map(|p| p.spawn_ticker());
    let on_event = |ev: echowire_conformance::Event<'_>| {
        if let Some(p) = &progress {
            p.event(ev);
        }
    };
    // The run goes on in a thread of its own; this one waits for it or for SIGINT/SIGTERM. An
    // interrupt stops the run at once: the cases that finished are reported (the reports marked
    // incomplete), the targets the runner started are stopped and reaped, and the exit code is
    // 128 + the signal's number, as a shell reports an interrupted command.
    let partial = Partial::new(&cases, &opts);
    let record = |ev: echowire_conformance::Event<'_>| {
        partial.event(&ev);
        on_event(ev);
    };
    let (tx, rx) = std::sync::mpsc::channel::<Option<echowire_conformance::Report>>();
    let signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ]);
    let finish = |mut report: echowire_conformance::Report, interrupted: Option<i32>| -> ExitCode {
        if let Some(p) = &progress {
            p.finish();
        }
        if interrupted.is_none()
            && let Some(t) = ticker
        {
            let _ = t.join();
        }
        if let Some(x) = &expected {
            x.apply(&mut report);
        }
        if to_stderr {
            eprint!("{}", report::terminal::render(&report, color));
        } else {
            print!("{}", report::terminal::render(&report, color));
        }
        let mut io_failed = false;
        let mut write = |path: &Option<PathBuf>, what: &str, text: String| {
            if let Some(p) = path
                && !write_report(p, what, &text)
            {
                io_failed = true;
            }
        };
        write(
            &args.json,
            "JSON",
            serde_json::to_string_pretty(&report::json::render(&report)).unwrap_or_default(),
        );
        write(
            &args.junit,
            "JUnit",
            report::junit::render(&report, args.strict),
        );
        write(&args.html, "HTML", report::html::render(&report));
        write(
            &args.write_failures,
            "failure list",
            echowire_conformance::expected::failure_list(&report),
        );
        for t in &report.targets {
            if let Some(e) = &t.error {
                eprintln!("error: target {}: {e}", t.name);
            }
        }
        if let Some(sig) = interrupted {
            let stopped = echowire_conformance::children::stop_all(Duration::from_millis(500));
            if stopped > 0 {
                eprintln!("stopped {stopped} target process(es) the runner had started");
            }
            let _ = std::io::Write::flush(&mut std::io::stdout());
            // Not a return: the run's thread may still be in a case, and the scope would wait.
            std::process::exit(128 + sig);
        }
        if report.passed(args.strict) && !io_failed {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    };
    std::thread::scope(|s| {
        let run_tx = tx.clone();
        let run_opts = opts.clone();
        let record = &record;
        s.spawn(move || {
            // A panic in the run must end the wait below, not leave it blocked: it is caught
            // here, reported, and the process exits as a panicking one would (101).
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                echowire_conformance::run(cases, run_opts, record)
            })) {
                Ok(r) => {
                    let _ = run_tx.send(Some(r));
                }
                Err(_) => {
                    echowire_conformance::children::stop_all(Duration::from_millis(500));
                    eprintln!(
                        "error: the runner failed (a bug: please report it with the panic above)"
                    );
                    std::process::exit(101);
                }
            }
        });
        let mut handle = None;
        if let Ok(mut sig) = signals {
            handle = Some(sig.handle());
            let stop = opts.stop.clone();
            let sig_tx = tx.clone();
            std::thread::spawn(move || {
                if let Some(n) = sig.forever().next() {
                    let name = if n == signal_hook::consts::SIGINT {
                        "SIGINT"
                    } else {
                        "SIGTERM"
                    };
                    stop.stop(format!("interrupted by {name}"));
                    INTERRUPT.store(n, std::sync::atomic::Ordering::Release);
                    let _ = sig_tx.send(None);
                }
            });
        }
        let first = rx.recv().ok().flatten();
        if let Some(h) = handle {
            h.close();
        }
        match first {
            Some(r) => finish(r, None),
            None => {
                // Interrupted: the run gets a moment to notice (cases between two steps stop
                // there), then what finished is reported without waiting for the rest.
                let r = rx
                    .recv_timeout(Duration::from_millis(300))
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| partial.report(&opts));
                finish(
                    r,
                    Some(INTERRUPT.load(std::sync::atomic::Ordering::Acquire)),
                )
            }
        }
    })
}

/// Diagnostics to standard error: `--log` if given, else `RUST_LOG`, else none.
fn init_log(flag: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = match flag {
        Some(f) => EnvFilter::try_new(f),
        None => match std::env::var("RUST_LOG") {
            Ok(v) if !v.is_empty() => EnvFilter::try_new(v),
            _ => return,
        },
    };
    match filter {
        Ok(filter) => {
            let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_ansi(std::io::stderr().is_terminal() && !no_color)
                .with_writer(std::io::stderr)
                .try_init();
        }
        Err(e) => eprintln!("warning: ignoring the log filter: {e}"),
    }
}

/// For the commands other than a run (which reports what finished): on SIGINT or SIGTERM, stop
/// and reap every process the runner started (each is in a process group of its own, out of the
/// terminal's reach), then exit as interrupted.
fn stop_children_on_interrupt() {
    let Ok(mut signals) = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ]) else {
        return;
    };
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            echowire_conformance::children::stop_all(Duration::from_millis(500));
            std::process::exit(128 + sig);
        }
    });
}

/// The signal that interrupted the run (0 until one did).
static INTERRUPT: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// The results of a run as they finish, for the report of an interrupted run (the run itself
/// may still be inside a case when the runner exits).
struct Partial {
    cases: Vec<case::Case>,
    names: Vec<String>,
    results: std::sync::Mutex<Vec<Vec<Option<echowire_conformance::CaseResult>>>>,
    started: std::time::Instant,
}

impl Partial {
    fn new(cases: &[case::Case], opts: &Options) -> Partial {
        let names: Vec<String> = opts.targets.iter().map(|t| t.to_string()).collect();
        Partial {
            cases: cases.to_vec(),
            results: std::sync::Mutex::new(vec![vec![None; cases.len()]; names.len()]),
            names,
            started: std::time::Instant::now(),
        }
    }

    fn event(&self, ev: &echowire_conformance::Event<'_>) {
        let echowire_conformance::Event::Finished {
            target,
            case,
            result,
            ..
        } = ev
        else {
            return;
        };
        let (Some(t), Some(c)) = (
            self.names.iter().position(|n| n == target),
            self.cases.iter().position(|c| c.id == case.id),
        ) else {
            return;
        };
        self.results.lock().unwrap_or_else(|p| p.into_inner())[t][c] = Some((*result).clone());
    }

    /// The report of what finished; the rest is "not run" for the stop's reason.
    fn report(&self, opts: &Options) -> echowire_conformance::Report {
        let why = opts
            .stop
            .reason()
            .unwrap_or_else(|| "interrupted".to_string());
        let results = self.results.lock().unwrap_or_else(|p| p.into_inner());
        let targets = self
            .names
            .iter()
            .zip(results.iter())
            .map(|(name, rs)| echowire_conformance::TargetReport {
                name: name.clone(),
                address: String::new(),
                info: None,
                error: None,
                warning: None,
                died_after: None,
                died_reason: None,
                log_tail: None,
                results: rs
                    .iter()
                    .map(|r| {
                        r.clone()
                            .unwrap_or_else(|| echowire_conformance::CaseResult::not_run(&why))
                    })
                    .collect(),
            })
            .collect();
        echowire_conformance::Report {
            cases: self.cases.clone(),
            targets,
            options: opts.clone(),
            elapsed: self.started.elapsed(),
            incomplete: Some(why),
        }
    }
}

fn client_fuzz_cmd(a: ClientFuzzArgs) -> ExitCode {
    use echowire_conformance::fuzz::client as cf;
    let seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs())
    });
    let duration = match (a.duration, a.sessions) {
        (None, None) => Some(Duration::from_secs(60)),
        (d, _) => d,
    };
    if !a.quiet {
        eprintln!(
            "client fuzz: seed {seed}, driver {}{}",
            a.exec,
            duration.map_or(String::new(), |d| format!(", for {} s", d.as_secs()))
        );
    }
    let opts = cf::ClientFuzzOptions {
        command: a.exec,
        seed,
        sessions: a.sessions,
        duration,
        jobs: a.jobs,
        out_dir: Some(a.out),
        stop_at_first: a.stop_at_first,
        timeout: a.timeout,
    };
    let quiet = a.quiet;
    let report = cf::campaign(&opts, &|i, passed| {
        if !quiet && (!passed || i % 25 == 0) {
            eprintln!("  session {i}: {}", if passed { "ok" } else { "DIVERGED" });
        }
    });
    print!("{}", cf::text(&report));
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&cf::json(&report)).unwrap_or_default();
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if report.error.is_some() {
        ExitCode::from(2)
    } else if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn client_cmd(a: ClientArgs) -> ExitCode {
    use echowire_conformance::client;
    let list_only = match a.action {
        Some(ClientAction::Fuzz(f)) => return client_fuzz_cmd(f),
        Some(ClientAction::List) => true,
        None => a.list,
    };
    let to_stderr = match terminal_to_stderr(&[&a.json, &a.junit, &a.html]) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let from_files = if a.case_file.is_empty() {
        client::builtin()
    } else {
        let mut texts = Vec::new();
        for p in &a.case_file {
            match std::fs::read_to_string(p) {
                Ok(t) => texts.push((p.display().to_string(), t)),
                Err(e) => {
                    eprintln!("error: cannot read {}: {e}", p.display());
                    return ExitCode::from(2);
                }
            }
        }
        let named: Vec<(&str, &str)> = texts
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        match client::parse(&named) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    };
    let cases: Vec<client::ClientCase> = from_files
        .into_iter()
        .filter(|c| a.case.is_empty() || a.case.iter().any(|p| case::glob_match(p, &c.id)))
        .filter(|c| !a.exclude.iter().any(|p| case::glob_match(p, &c.id)))
        .collect();
    if cases.is_empty() {
        eprintln!("error: no client case matches the selection");
        return ExitCode::from(2);
    }
    if list_only {
        for c in &cases {
            println!("{:<46} {:<6} {}", c.id, c.level.to_string(), c.title);
        }
        println!("{} client cases", cases.len());
        return ExitCode::SUCCESS;
    }
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let color = std::io::stdout().is_terminal() && !no_color;
    let opts = Options {
        targets: Vec::new(),
        strategies: match &a.cut_at {
            Some(cut) => vec![Strategy::Exactly(cut.clone())],
            None => a.splits.clone(),
        },
        seed: a.seed,
        timeout: a.timeout,
        jobs: a.jobs,
        progress: !a.quiet,
        color,
        shrink: !a.no_shrink,
        case_files: a.case_file.clone(),
        capture: match capture_dir(&a.pcap, a.pcap_all) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        ..Options::default()
    };
    let progress = (!a.quiet).then(|| {
        echowire_conformance::progress::Progress::new(
            cases.len() * a.exec.len(),
            std::io::stderr().is_terminal(),
            std::io::stderr().is_terminal() && !no_color,
        )
    });
    let ticker = progress.as_ref().map(|p| p.spawn_ticker());
    let on_event = |ev: echowire_conformance::Event<'_>| {
        if let Some(p) = &progress {
            p.event(ev);
        }
    };
    let report = client::run(&a.exec, cases, opts, &on_event);
    if let Some(p) = &progress {
        p.finish();
    }
    if let Some(t) = ticker {
        let _ = t.join();
    }
    if to_stderr {
        eprint!("{}", report::terminal::render(&report, color));
    } else {
        print!("{}", report::terminal::render(&report, color));
    }
    let mut ok = true;
    for (path, text, what) in [
        (
            &a.json,
            a.json.as_ref().map(|_| {
                serde_json::to_string_pretty(&report::json::render(&report)).unwrap_or_default()
            }),
            "JSON",
        ),
        (
            &a.junit,
            a.junit
                .as_ref()
                .map(|_| report::junit::render(&report, a.strict)),
            "JUnit",
        ),
        (
            &a.html,
            a.html.as_ref().map(|_| report::html::render(&report)),
            "HTML",
        ),
    ] {
        if let (Some(p), Some(t)) = (path, text)
            && !write_report(p, what, &t)
        {
            ok = false;
        }
    }
    if report.passed(a.strict) && ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn load_cmd(a: LoadArgs) -> ExitCode {
    if !(0.0..=1.0).contains(&a.compute_share)
        || !(0.0..=1.0).contains(&a.ping_share)
        || a.compute_share + a.ping_share > 1.0
    {
        eprintln!(
            "error: --compute-share and --ping-share must be in 0..=1 and add up to at most 1"
        );
        return ExitCode::from(2);
    }
    let o = echowire_conformance::load::LoadOptions {
        target: a.target,
        connections: a.connections.max(1),
        depth: a.depth.max(1),
        rate: a.rate,
        duration: a.duration,
        warmup: a.warmup,
        echo_size: a.echo_size,
        compute_share: a.compute_share,
        compute_cost: a.compute_cost,
        ping_share: a.ping_share,
        threads: a.threads,
        idle: a.idle,
        progress: !a.quiet,
        raw: a.raw,
        requests: a.requests,
    };
    match echowire_conformance::load::run(&o) {
        Ok(v) => {
            if let echowire_conformance::load::LoadReport::Traffic(t) = &v {
                println!("{}", echowire_conformance::load::summary(t));
            }
            if let Some(p) = &a.json
                && let Err(e) =
                    std::fs::write(p, serde_json::to_string_pretty(&v).unwrap_or_default())
            {
                eprintln!("error: cannot write {}: {e}", p.display());
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn fuzz_cmd(a: FuzzArgs) -> ExitCode {
    use echowire_conformance::fuzz::{self, FuzzOptions, Progress};
    use echowire_conformance::target::ExecSpec;
    let exec = |template: &str| -> Result<TargetSpec, String> {
        let e = ExecSpec {
            template: template.to_string(),
            unix: a.exec_unix,
            name: None,
        };
        e.validate()?;
        Ok(TargetSpec::Exec(e))
    };
    let target = match (&a.target, &a.exec) {
        (Some(t), _) => Ok(t.clone()),
        (None, Some(cmd)) => exec(cmd),
        (None, None) => Ok(FuzzOptions::default().target),
    };
    let against = a.against.as_deref().map(exec).transpose();
    let (target, against) = match (target, against) {
        (Ok(t), Ok(x)) => (t, x),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(1)
    });
    let opts = FuzzOptions {
        target,
        against,
        seed,
        first: a.session.unwrap_or(0),
        sessions: a.session.map(|_| 1).or(a.sessions),
        duration: match (a.duration, a.sessions.or(a.session)) {
            (Some(d), _) => Some(d),
            (None, Some(_)) => None,
            (None, None) => Some(Duration::from_secs(60)),
        },
        jobs: a.jobs.max(1),
        timeouts: echowire_conformance::target::Timeouts {
            handshake: a.handshake_timeout,
            idle: a.idle_timeout,
            drain: a.drain_timeout,
        },
        slack_ms: a.slack_ms,
        timeout: a.timeout,
        out_dir: Some(a.out.clone()),
        stop_at_first: a.stop_at_first,
        profiles: a.profile.clone(),
        shrink: !a.no_shrink,
    };
    if !a.quiet {
        eprintln!(
            "fuzzing {} with seed {seed} (replay: --seed {seed}{}); findings go to {}",
            opts.target,
            a.sessions
                .map(|n| format!(" --sessions {n}"))
                .unwrap_or_default(),
            a.out.display()
        );
    }
    let started = std::time::Instant::now();
    let last = std::sync::Mutex::new(std::time::Instant::now());
    let on = |p: Progress<'_>| {
        if a.quiet {
            return;
        }
        match p {
            Progress::Session { done, findings } => {
                let mut l = last.lock().unwrap_or_else(|e| e.into_inner());
                if l.elapsed() >= Duration::from_secs(5) {
                    *l = std::time::Instant::now();
                    let s = started.elapsed().as_secs_f64();
                    eprintln!(
                        "  {s:>6.0} s  {done} sessions ({:.1}/s), {findings} finding(s)",
                        done as f64 / s.max(0.001)
                    );
                }
            }
            Progress::Drawn(i, steps) => {
                if a.show_sessions {
                    eprintln!(
                        "session {i}: {}",
                        serde_json::to_string(steps).unwrap_or_default()
                    );
                }
            }
            Progress::Ended(i, how) => {
                if a.show_sessions {
                    eprintln!("session {i}: {how}");
                }
            }
            Progress::Diverged(what) => {
                eprintln!("  divergence ({what}); replaying to confirm, then shrinking");
            }
            Progress::Found(f) => eprintln!("{}", fuzz::report::finding_text(f)),
        }
    };
    let report = fuzz::campaign(&opts, &on);
    print!("{}", fuzz::report::text(&report));
    let mut ok = true;
    for (path, text) in [
        (
            &a.json,
            a.json
                .as_ref()
                .map(|_| serde_json::to_string_pretty(&report).unwrap_or_default()),
        ),
        (
            &a.junit,
            a.junit.as_ref().map(|_| fuzz::report::junit(&report)),
        ),
    ] {
        if let (Some(p), Some(t)) = (path, text)
            && let Err(e) = std::fs::write(p, t)
        {
            eprintln!("error: cannot write {}: {e}", p.display());
            ok = false;
        }
    }
    if let Some(e) = &report.error {
        eprintln!("error: {e}");
    }
    if report.passed() && ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A duration, or a bare number of seconds.
fn parse_seconds(s: &str) -> Result<Duration, String> {
    match s.parse::<u64>() {
        Ok(n) => Ok(Duration::from_secs(n)),
        Err(_) => humantime::parse_duration(s).map_err(|e| e.to_string()),
    }
}

/// A declared timeout: a duration within the ranges of spec §8.3 (1 s to 3600 s).
fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&d) {
        return Err(format!(
            "{s} is outside 1s..=3600s, the range spec section 8.3 allows any timeout"
        ));
    }
    Ok(d)
}

/// The deadline of each wait: at least 100 ms (a zero deadline would blame the server for the
/// runner's own impatience).
fn parse_wait(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d < Duration::from_millis(100) {
        return Err(format!("{s} is too short a deadline (at least 100ms)"));
    }
    Ok(d)
}
