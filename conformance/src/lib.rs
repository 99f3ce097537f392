//! # echowire-conformance
//!
//! Replays the conformance cases of `spec/conformance/` against any Echowire server (TCP or Unix
//! socket; by default the embedded reference server), under byte-split strategies, and reports a
//! verdict per case and per spec section — in the terminal, as JSON, JUnit XML and one
//! self-contained HTML file. The crate is several products; their parts, bottom up (no module
//! imports one above it):
//!
//! * the case model, pure data: [`split`] (split strategies), [`target`] (where to connect,
//!   profiles, timeouts), [`spec`] (the spec's sentences), [`verdict`] (patterns, matching,
//!   outcome classes and levels), [`step`] (typed steps, time expressions), [`case`] (the case
//!   files and their loader), [`wire`] (the wire log and its decoding);
//! * the executor: [`exec`] (runs one case's steps over real connections: writer thread,
//!   deadline-bound reader, expectations) and [`shrink`] (the smallest failing split);
//! * the server runner: this module's [`run`], with [`expected`] (known failures), [`report`]
//!   and [`progress`];
//! * the client runner: [`client`] (plays the server against a client's driver) and
//!   [`driver`] (the driver interface, typed, used by the Rust clients' drivers in `src/bin`);
//! * tools beside the runners: [`capture`] (pcapng files of runs, `--pcap`), [`load`] (the load
//!   generator, `echowire-conformance load`) and
//!   [`proxy`] (the fault-injecting proxy the tests put in front of a server).
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

pub mod capture;
pub mod case;
pub mod children;
pub mod client;
pub mod driver;
pub mod exec;
pub mod expected;
pub mod fuzz;
pub mod load;
pub mod oracle;
pub mod progress;
pub mod proxy;
pub mod report;
pub mod shrink;
pub mod spec;
pub mod split;
pub mod step;
pub mod target;
pub mod verdict;
pub mod wire;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use case::Case;
use exec::{RunResult, RunSettings, TargetInfo};
use split::{Cut, Strategy};
use target::{Profile, Target, TargetSpec};
use verdict::Outcome;

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Targets (several: one report comparing them).
    pub targets: Vec<TargetSpec>,
    /// Split strategies.
    pub strategies: Vec<Strategy>,
    /// Base seed for random cuts.
    pub seed: u64,
    /// Default deadline of every wait.
    pub timeout: Duration,
    /// Cases run in parallel.
    pub jobs: usize,
    /// Print progress while running.
    pub progress: bool,
    /// Colours in progress output.
    pub color: bool,
    /// Run the liveness probe after each case (off only for the mutant tests, where a target that
    /// fails its handshake must still be run through every case).
    pub liveness: bool,
    /// The timeouts network targets declare (spec §8.3); the embedded target declares its own.
    pub timeouts: target::Timeouts,
    /// Shrink a failure under a multi-cut split to a minimal set of cuts ([`shrink`]).
    pub shrink: bool,
    /// Re-runs of a failing case, alone, once every case has run: a case that passes on a
    /// re-run counts as passed and is reported as flaky with its first failure. A timing hiccup
    /// of a loaded machine (a HELLO that reached the target after its 2 s handshake timeout)
    /// then differs from a verdict: a case that fails for a real reason fails every time.
    pub retries: u32,
    /// Timing tolerance of judged cases, in milliseconds ([`oracle::Setup::slack_ms`]).
    pub slack_ms: u64,
    /// The case files the cases came from (`--case-file`), if not the built-in ones: a
    /// failure's replay command names them.
    pub case_files: Vec<std::path::PathBuf>,
    /// Stop starting cases once this many have failed (`--max-failures`, `--fail-fast`).
    pub max_failures: Option<usize>,
    /// Run the cases even when the probe shows the target is not an Echowire server
    /// (`--force`).
    pub force: bool,
    /// The rate the target declares for COMPUTE, in iterations per second (`--compute-rate`):
    /// every wait of a case is extended by the case's COMPUTE costs at that rate, so a correct
    /// but slow server (an interpreted language) is not failed for its speed, which the spec
    /// does not bound (section 4.6). `None`: the waits are `timeout` alone.
    pub compute_rate: Option<u64>,
    /// Packet captures of the runs (`--pcap DIR`, `--pcap-all`): written as each case finishes,
    /// so an interrupted run keeps the captures of the cases it finished ([`capture`]).
    pub capture: Option<capture::CaptureOptions>,
    /// Set from outside (a signal, a deadline) or by `max_failures`: no case starts after it;
    /// the cases not run are reported as such and the report is marked incomplete.
    pub stop: Stop,
}

/// A request to stop a run early, shared by whoever may ask (a signal handler, a deadline, the
/// failure count) and the workers, which check it before each case.
#[derive(Clone, Debug, Default)]
pub struct Stop(Arc<StopInner>);

#[derive(Debug, Default)]
struct StopInner {
    set: AtomicBool,
    reason: Mutex<Option<String>>,
}

impl Stop {
    /// Asks the run to stop; the first reason given is kept.
    pub fn stop(&self, reason: impl Into<String>) {
        let mut r = self.0.reason.lock().unwrap_or_else(|p| p.into_inner());
        if r.is_none() {
            let reason = reason.into();
            tracing::info!(%reason, "the run stops starting cases");
            *r = Some(reason);
        }
        self.0.set.store(true, Ordering::Release);
    }

    /// Why the run was asked to stop, if it was.
    pub fn reason(&self) -> Option<String> {
        if !self.0.set.load(Ordering::Acquire) {
            return None;
        }
        self.0
            .reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            targets: vec![TargetSpec::Embedded(echowire_server::Model::Reactor)],
            strategies: default_strategies(),
            seed: 1,
            timeout: Duration::from_secs(10),
            jobs: 4,
            progress: false,
            color: false,
            liveness: true,
            timeouts: target::Timeouts::default(),
            shrink: true,
            retries: 0,
            slack_ms: oracle::DEFAULT_SLACK_MS,
            case_files: Vec::new(),
            max_failures: None,
            force: false,
            compute_rate: None,
            capture: None,
            stop: Stop::default(),
        }
    }
}

/// `whole,bytewise,coalesced,random:2,delayed`.
pub fn default_strategies() -> Vec<Strategy> {
    vec![
        Strategy::Whole,
        Strategy::Bytewise,
        Strategy::Coalesced,
        Strategy::Random(2),
        Strategy::Delayed,
    ]
}

/// The result of one case against one target.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CaseResult {
    /// Outcome.
    pub outcome: Outcome,
    /// Why skipped, or a note.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Runs performed.
    pub runs: usize,
    /// Failing runs (at most 3 kept, with wire logs).
    pub failures: Vec<RunResult>,
    /// Milliseconds spent.
    pub millis: u64,
    /// The smallest failing split found from a failure under a multi-cut split.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shrunk: Option<shrink::Shrunk>,
    /// Re-runs after a failure ([`Options::retries`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retried: Option<Retried>,
    /// Every run, kept for the capture of a passing case under `--pcap-all` until it is
    /// written ([`Options::capture`]); empty otherwise.
    #[serde(skip)]
    pub captured: Vec<RunResult>,
}

/// What the re-runs of a failing case ([`Options::retries`]) found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Retried {
    /// Re-runs performed (each runs the case under every planned split, alone).
    pub reruns: u32,
    /// Whether the last re-run passed: the case is then reported as passed, and flaky.
    pub passed: bool,
    /// The first failure, in one line (its details are in `failures` when no re-run passed).
    pub first_failure: String,
}

/// One target's part of a report.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TargetReport {
    /// As given.
    pub name: String,
    /// Where connections went.
    pub address: String,
    /// What its handshake offered, if it was reachable.
    pub info: Option<TargetInfo>,
    /// Unreachable or broken before any case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A warning about the target (e.g. its handshake failed, so it was tested as version 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// The case after which the liveness probe failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub died_after: Option<String>,
    /// What the failed liveness probe saw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub died_reason: Option<String>,
    /// The end of an `--exec` target's standard error (and output).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_tail: Option<String>,
    /// One result per case, in `Report::cases` order.
    pub results: Vec<CaseResult>,
}

/// A whole run.
#[derive(Debug)]
pub struct Report {
    /// The cases run (after filtering).
    pub cases: Vec<Case>,
    /// One entry per target.
    pub targets: Vec<TargetReport>,
    /// The options.
    pub options: Options,
    /// Wall time.
    pub elapsed: Duration,
    /// Why the run stopped before every case ran (an interrupt, `--max-failures`, the
    /// deadline); the cases not run are Skipped with a reason that says so.
    pub incomplete: Option<String>,
}

impl Report {
    /// Whether the run passes: complete, every target reachable and alive, no MUST failed (with
    /// `strict`, no SHOULD either).
    pub fn passed(&self, strict: bool) -> bool {
        self.incomplete.is_none()
            && self.targets.iter().all(|t| {
                t.error.is_none()
                    && t.warning.is_none()
                    && t.died_after.is_none()
                    && t.results.iter().all(|r| {
                        let failed = matches!(r.outcome, Outcome::Fail | Outcome::UnexpectedPass)
                            || (strict && r.outcome == Outcome::NonStrict);
                        !failed
                    })
            })
    }
}

/// FNV-1a, for stable per-case seeds (std's hasher is not stable across releases).
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// One planned run of a case: a concrete cut, or the `boundaries` strategy, which becomes one
/// cut per offset once a whole run has counted the case's octets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Planned {
    /// Run under this cut.
    Cut(Cut),
    /// Cut at every offset (sampled for large cases).
    Boundaries,
}

/// The runs the strategies expand to for a case.
pub fn cuts(case: &Case, strategies: &[Strategy], seed: u64) -> Vec<Planned> {
    if case.timing_sensitive {
        return vec![Planned::Cut(Cut::Whole)];
    }
    let base = fnv(&case.id) ^ seed;
    let mut out = Vec::new();
    for s in strategies {
        match s {
            Strategy::Whole => out.push(Planned::Cut(Cut::Whole)),
            Strategy::Bytewise => out.push(Planned::Cut(Cut::Bytewise)),
            Strategy::Coalesced => {
                if case.coalesce {
                    out.push(Planned::Cut(Cut::Coalesced));
                }
            }
            Strategy::Random(n) => out.extend(
                (0..*n).map(|i| Planned::Cut(Cut::Random(base.wrapping_add(u64::from(i))))),
            ),
            Strategy::Delayed => out.push(Planned::Cut(Cut::Delayed(base))),
            Strategy::Boundaries => out.push(Planned::Boundaries),
            Strategy::Exactly(c) => out.push(Planned::Cut(c.clone())),
        }
    }
    out
}

/// Runs one case against one target.
pub fn run_case(target: &Target, info: &TargetInfo, case: &Case, opts: &Options) -> CaseResult {
    // A profile's cases hold its limits with slow requests: sampling `boundaries` at 8 points
    // keeps them at seconds, not minutes; the default profile's cases cut everywhere.
    let points = (case.profile != Profile::Default).then_some(8);
    run_case_with(target.timeouts, info, case, opts, points, &|settings| {
        if case.profile.exclusive() {
            // Best effort: a target that never settles fails the case, which says why.
            let _ = exec::settle(target, opts.timeout);
        }
        exec::run(target, &case.steps, settings)
    })
}

/// Runs one case that signals its target: each run on a fresh instance of the case's profile.
/// `boundaries` is sampled at 8 points here (each point costs a start of the target).
fn run_on_own_instances(
    spec: &TargetSpec,
    info: &TargetInfo,
    case: &Case,
    opts: &Options,
) -> CaseResult {
    let one = || Target::open(spec.clone(), opts.timeouts, case.profile);
    let first = match one() {
        Ok(t) => t,
        Err(e) => return cannot_start(case.profile, &e),
    };
    let timeouts = first.timeouts;
    let first = Mutex::new(Some(first));
    run_case_with(timeouts, info, case, opts, Some(8), &|settings| {
        let reuse = first.lock().unwrap_or_else(|p| p.into_inner()).take();
        let target = match reuse.map_or_else(one, Ok) {
            Ok(t) => t,
            Err(e) => {
                return RunResult::failed_to_start(
                    settings.cut,
                    "a fresh instance of the target",
                    format!("it did not start: {e}"),
                );
            }
        };
        exec::run(&target, &case.steps, settings)
    })
}

/// Runs one case's planned runs through `run_one`. `boundary_points`: how many offsets the
/// `boundaries` strategy samples (`None`: every offset of a case up to 256 octets, else 32).
fn run_case_with(
    timeouts: target::Timeouts,
    info: &TargetInfo,
    case: &Case,
    opts: &Options,
    boundary_points: Option<u64>,
    run_one: &dyn Fn(RunSettings) -> RunResult,
) -> CaseResult {
    let started = Instant::now();
    for &req in &case.requires {
        let (ok, why) = match req {
            case::Requirement::V2 => (
                info.version >= 2,
                "unsupported: the target's handshake does not offer v2".to_string(),
            ),
            case::Requirement::Rkyv => (
                info.capabilities & echowire_codec::message::CAP_RKYV != 0,
                "unsupported: the target's handshake does not offer rkyv".to_string(),
            ),
            t @ (case::Requirement::HandshakeTimeout
            | case::Requirement::IdleTimeout
            | case::Requirement::DrainTimeout) => (
                timeouts.declared(t.name()),
                format!(
                    "the target's {} is not declared (--{})",
                    t.name().replace('_', " "),
                    t.name().replace('_', "-")
                ),
            ),
        };
        if !ok {
            return CaseResult::skipped(why);
        }
    }
    #[derive(Default)]
    struct Tally {
        runs: usize,
        sent: u64,
        failures: Vec<RunResult>,
        /// A failure under an unsplit write (the split is then not the cause).
        unsplit_failed: bool,
        /// The first failure under a multi-cut split, to shrink.
        to_shrink: Option<(Cut, RunResult)>,
        /// Every run, for `--pcap-all`.
        keep_all: bool,
        all: Vec<RunResult>,
    }
    impl Tally {
        fn record(&mut self, cut: Cut, r: RunResult) {
            self.runs += 1;
            self.sent = self.sent.max(r.sent_bytes);
            if self.keep_all {
                self.all.push(r.clone());
            }
            if r.failure.is_none() {
                return;
            }
            if matches!(cut, Cut::Whole | Cut::Coalesced) {
                self.unsplit_failed = true;
            }
            if cut.is_multi() && self.to_shrink.is_none() {
                self.to_shrink = Some((cut, r.clone()));
            }
            if self.failures.len() < 3 {
                self.failures.push(r);
            }
        }
    }
    let mut t = Tally {
        keep_all: opts.capture.as_ref().is_some_and(|c| c.all),
        ..Tally::default()
    };
    let timeout = opts.timeout + compute_allowance(case, opts.compute_rate);
    let settings = |cut| RunSettings {
        cut,
        timeout,
        coalesce: case.coalesce,
        timeouts,
        server: Some(info.clone()),
        slack_ms: opts.slack_ms,
    };
    for planned in cuts(case, &opts.strategies, opts.seed) {
        let cut = match planned {
            Planned::Cut(cut) => cut,
            Planned::Boundaries => {
                // Every k for small cases, 32 evenly spaced points for larger ones.
                if t.sent == 0 {
                    t.record(Cut::Whole, run_one(settings(Cut::Whole)));
                }
                let sent = t.sent;
                let ks: Vec<u64> = match boundary_points {
                    None if sent <= 256 => (1..sent).collect(),
                    n => {
                        let n = n.unwrap_or(32).min(sent.saturating_sub(1));
                        (1..=n).map(|i| i * sent / (n + 1)).collect()
                    }
                };
                for k in ks {
                    t.record(Cut::At(k), run_one(settings(Cut::At(k))));
                }
                continue;
            }
        };
        t.record(cut.clone(), run_one(settings(cut)));
    }
    let shrunk = match t.to_shrink.take() {
        Some((cut, failed)) if opts.shrink && !t.unsplit_failed && !case.own_instance() => {
            Some(shrink::shrink(
                &case.id,
                &cut,
                &failed,
                &|c| run_one(settings(c)),
                exec::Dir::ClientToServer,
            ))
        }
        _ => None,
    };
    let Tally {
        runs,
        failures,
        all: captured,
        ..
    } = t;
    let failed = !failures.is_empty();
    let reason = (case.level == case::Level::Info).then(|| {
        if failed {
            "observed behaviour differs from the description (informational)".into()
        } else {
            "behaves as described".into()
        }
    });
    CaseResult {
        outcome: Outcome::of(case.level, failed),
        reason,
        runs,
        failures,
        millis: started.elapsed().as_millis() as u64,
        shrunk,
        retried: None,
        captured,
    }
}

impl CaseResult {
    /// A case the run did not start because it was asked to stop ([`Options::stop`]).
    pub fn not_run(why: &str) -> Self {
        Self::skipped(format!("{NOT_RUN}: {why}"))
    }

    fn skipped(reason: String) -> Self {
        CaseResult {
            outcome: Outcome::Skipped,
            reason: Some(reason),
            runs: 0,
            failures: Vec::new(),
            millis: 0,
            shrunk: None,
            retried: None,
            captured: Vec::new(),
        }
    }
}

/// What a run reports while it runs (progress output).
#[derive(Debug)]
pub enum Event<'a> {
    /// A case started against a target.
    Started {
        /// The target's name.
        target: &'a str,
        /// The case.
        case: &'a Case,
    },
    /// A case finished.
    Finished {
        /// The target's name.
        target: &'a str,
        /// Cases finished for this target, this one included.
        done: usize,
        /// Cases in all for this target.
        total: usize,
        /// The case.
        case: &'a Case,
        /// Its result.
        result: &'a CaseResult,
    },
}

/// Progress callback.
pub type OnEvent<'a> = &'a (dyn Fn(Event<'_>) + Sync);

/// The time a target that computes `rate` iterations per second needs for every COMPUTE the
/// case sends (their costs added up: queued work waits for the work before it).
pub fn compute_allowance(case: &Case, rate: Option<u64>) -> Duration {
    let Some(rate) = rate.filter(|&r| r > 0) else {
        return Duration::ZERO;
    };
    fn costs(v: &serde_json::Value, total: &mut u64) {
        match v {
            serde_json::Value::Object(m) => {
                if m.get("type").and_then(|t| t.as_str()) == Some("COMPUTE")
                    && let Some(c) = m
                        .get("body")
                        .and_then(|b| b.get("cost"))
                        .and_then(|c| c.as_u64())
                {
                    *total = total.saturating_add(c);
                }
                m.values().for_each(|x| costs(x, total));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| costs(x, total)),
            _ => {}
        }
    }
    let mut total = 0u64;
    if let Ok(v) = serde_json::to_value(&case.steps) {
        costs(&v, &mut total);
    }
    Duration::from_secs_f64(total as f64 / rate as f64)
}

/// How the reason of a case the run did not start begins.
pub const NOT_RUN: &str = "not run";

/// The results of one target so far, shared by the batches that fill them.
struct Progress<'a> {
    name: String,
    cases: &'a [Case],
    results: Vec<Mutex<Option<CaseResult>>>,
    done: AtomicUsize,
    /// The case after which the liveness probe failed, and what it saw.
    died: Mutex<Option<(String, String)>>,
    on_event: OnEvent<'a>,
    /// Failures so far over every target (`--max-failures`).
    failures: &'a AtomicUsize,
    max_failures: Option<usize>,
    stop: &'a Stop,
    /// `--pcap`: where captures go, and whether file names carry the target's name (a run
    /// against several targets).
    capture: Option<(&'a capture::CaptureOptions, bool)>,
}

impl Progress<'_> {
    fn record(&self, i: usize, mut r: CaseResult) {
        if let Some((opts, named)) = self.capture {
            capture::write_case(opts, named, &self.cases[i], &self.name, &mut r);
        } else {
            r.captured.clear();
        }
        tracing::debug!(
            target = %self.name,
            case = %self.cases[i].id,
            outcome = r.outcome.label(),
            millis = r.millis,
            reason = r.reason.as_deref().unwrap_or(""),
            "case finished"
        );
        if matches!(r.outcome, Outcome::Fail | Outcome::UnexpectedPass) {
            let n = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
            if let Some(max) = self.max_failures
                && n >= max
            {
                self.stop
                    .stop(format!("{n} case(s) failed (--max-failures {max})"));
            }
        }
        let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        (self.on_event)(Event::Finished {
            target: &self.name,
            done: n,
            total: self.cases.len(),
            case: &self.cases[i],
            result: &r,
        });
        *self.results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
    }

    fn died_after(&self) -> Option<String> {
        self.died
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|d| d.0.clone())
    }
}

/// Runs the cases `batch` (indices) on one running instance, `opts.jobs` at a time, with the
/// liveness probe after each.
fn run_batch(target: &Target, info: &TargetInfo, batch: &[usize], p: &Progress, opts: &Options) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..opts.jobs.max(1) {
            s.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&i) = batch.get(k) else { break };
                    let case = &p.cases[i];
                    (p.on_event)(Event::Started {
                        target: &p.name,
                        case,
                    });
                    let r = if let Some(why) = opts.stop.reason() {
                        CaseResult::not_run(&why)
                    } else if let Some(after) = p.died_after() {
                        CaseResult::skipped(format!("the target died after case {after}"))
                    } else {
                        let r = run_case(target, info, case, opts);
                        if opts.liveness
                            && r.outcome != Outcome::Skipped
                            && let Err(e) = exec::alive(target, opts.timeout)
                        {
                            let mut d = p.died.lock().unwrap_or_else(|p| p.into_inner());
                            if d.is_none() {
                                *d = Some((case.id.clone(), e));
                            }
                        }
                        r
                    };
                    p.record(i, r);
                }
            });
        }
    });
}

/// Runs every case against every target. `on_event` sees each case start and finish
/// (progress output).
///
/// Per target: the cases of the default profile run on one instance; when the runner controls
/// the target (embedded, `--exec`), each other profile gets an instance of its own, and each
/// case that signals the target (a drain) gets a fresh instance and runs alone. A network target
/// has those cases Skipped, with the reason.
pub fn run(cases: Vec<Case>, opts: Options, on_event: OnEvent) -> Report {
    let started = Instant::now();
    let mut targets = Vec::new();
    let failures = AtomicUsize::new(0);
    for spec in &opts.targets {
        let name = spec.to_string();
        if let Some(why) = opts.stop.reason() {
            targets.push(TargetReport {
                name,
                address: String::new(),
                info: None,
                error: None,
                warning: None,
                died_after: None,
                died_reason: None,
                log_tail: None,
                results: cases.iter().map(|_| CaseResult::not_run(&why)).collect(),
            });
            continue;
        }
        let target = match Target::open(spec.clone(), opts.timeouts, Profile::Default) {
            Ok(t) => t,
            Err(e) => {
                targets.push(TargetReport {
                    name,
                    address: String::new(),
                    info: None,
                    error: Some(format!("cannot start: {e}")),
                    warning: None,
                    died_after: None,
                    died_reason: None,
                    log_tail: None,
                    results: Vec::new(),
                });
                continue;
            }
        };
        tracing::info!(target = %name, address = %target.address(), "target opened");
        let mut warning = None;
        let probed = exec::probe(&target, opts.timeout);
        tracing::info!(target = %name, result = ?probed, "handshake probe");
        let info = match probed {
            Ok(i) => i,
            Err(exec::ProbeError::Unreachable(e)) => {
                targets.push(TargetReport {
                    name,
                    address: target.address(),
                    info: None,
                    error: Some(e),
                    warning: None,
                    died_after: None,
                    died_reason: None,
                    log_tail: target.log_tail(),
                    results: Vec::new(),
                });
                continue;
            }
            Err(exec::ProbeError::NotEchowire(e)) if !opts.force => {
                targets.push(TargetReport {
                    name,
                    address: target.address(),
                    info: None,
                    error: Some(format!(
                        "not an Echowire server: {e} (no case was run; --force runs them anyway)"
                    )),
                    warning: None,
                    died_after: None,
                    died_reason: None,
                    log_tail: target.log_tail(),
                    results: Vec::new(),
                });
                continue;
            }
            Err(exec::ProbeError::Handshake(e) | exec::ProbeError::NotEchowire(e)) => {
                warning = Some(format!(
                    "handshake probe failed ({e}); tested as a version-1 target without capabilities"
                ));
                TargetInfo {
                    version: 1,
                    capabilities: 0,
                    max_frame_size: 0,
                    agent: String::new(),
                }
            }
        };
        let progress = Progress {
            name: name.clone(),
            cases: &cases,
            results: cases.iter().map(|_| Mutex::new(None)).collect(),
            done: AtomicUsize::new(0),
            died: Mutex::new(None),
            on_event,
            failures: &failures,
            max_failures: opts.max_failures,
            stop: &opts.stop,
            capture: opts.capture.as_ref().map(|c| (c, opts.targets.len() > 1)),
        };
        for profile in Profile::ALL {
            let batch: Vec<usize> = (0..cases.len())
                .filter(|&i| cases[i].profile == profile && !cases[i].own_instance())
                .collect();
            if batch.is_empty() {
                continue;
            }
            if profile == Profile::Default {
                run_batch(&target, &info, &batch, &progress, &opts);
                continue;
            }
            if let Some(why) = opts.stop.reason() {
                for &i in &batch {
                    progress.record(i, CaseResult::not_run(&why));
                }
                continue;
            }
            if !target.controlled() {
                for &i in &batch {
                    progress.record(i, CaseResult::skipped(needs_control(profile)));
                }
                continue;
            }
            if let Some(why) = spec.cannot_apply(profile) {
                for &i in &batch {
                    progress.record(i, CaseResult::skipped(why.clone()));
                }
                continue;
            }
            match Target::open(spec.clone(), opts.timeouts, profile) {
                Ok(t) if profile.exclusive() => {
                    let one = Options {
                        jobs: 1,
                        ..opts.clone()
                    };
                    run_batch(&t, &info, &batch, &progress, &one)
                }
                Ok(t) => run_batch(&t, &info, &batch, &progress, &opts),
                Err(e) => {
                    for &i in &batch {
                        progress.record(i, cannot_start(profile, &e));
                    }
                }
            }
        }
        // Cases that signal the target: a fresh instance each, one at a time, no liveness probe
        // (the instance was told to shut down).
        for i in (0..cases.len()).filter(|&i| cases[i].own_instance()) {
            let case = &cases[i];
            on_event(Event::Started {
                target: &name,
                case,
            });
            let r = if let Some(why) = opts.stop.reason() {
                CaseResult::not_run(&why)
            } else if !target.controlled() {
                CaseResult::skipped(needs_control(case.profile))
            } else if let Some(why) = spec.cannot_apply(case.profile) {
                CaseResult::skipped(why)
            } else {
                run_on_own_instances(spec, &info, case, &opts)
            };
            progress.record(i, r);
        }
        if opts.retries > 0 && progress.died_after().is_none() && opts.stop.reason().is_none() {
            retry_failures(spec, &target, &info, &progress, &opts);
        }
        let died = progress
            .died
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
        let results = progress
            .results
            .into_iter()
            .map(|m| {
                m.into_inner()
                    .unwrap_or_else(|p| p.into_inner())
                    .expect("every case ran")
            })
            .collect();
        targets.push(TargetReport {
            name,
            address: target.address(),
            info: Some(info),
            error: None,
            warning,
            died_after: died.as_ref().map(|d| d.0.clone()),
            died_reason: died.map(|d| d.1),
            log_tail: target.log_tail(),
            results,
        });
    }
    let incomplete = opts.stop.reason().filter(|_| {
        targets.iter().any(|t| {
            t.results
                .iter()
                .any(|r| r.reason.as_deref().is_some_and(|x| x.starts_with(NOT_RUN)))
        })
    });
    Report {
        cases,
        targets,
        options: opts,
        elapsed: started.elapsed(),
        incomplete,
    }
}

/// Runs each failing case again, alone (one job, nothing else running), up to `opts.retries`
/// times; the first re-run that passes replaces the result, marked flaky.
fn retry_failures(
    spec: &TargetSpec,
    target: &Target,
    info: &TargetInfo,
    progress: &Progress,
    opts: &Options,
) {
    let alone = Options {
        jobs: 1,
        ..opts.clone()
    };
    for (i, case) in progress.cases.iter().enumerate() {
        let slot = &progress.results[i];
        let first = {
            let r = slot.lock().unwrap_or_else(|p| p.into_inner());
            match r.as_ref() {
                Some(r)
                    if matches!(r.outcome, Outcome::Fail | Outcome::NonStrict) && r.runs > 0 =>
                {
                    format!(
                        "under {}: {}",
                        r.failures.first().map_or("?", |f| f.cut.as_str()),
                        report::summary(r)
                    )
                }
                _ => continue,
            }
        };
        let mut reruns = 0;
        let mut passed = None;
        while reruns < opts.retries && passed.is_none() {
            reruns += 1;
            let again = if case.own_instance() {
                run_on_own_instances(spec, info, case, &alone)
            } else if case.profile == Profile::Default {
                run_case(target, info, case, &alone)
            } else {
                match Target::open(spec.clone(), opts.timeouts, case.profile) {
                    Ok(t) => run_case(&t, info, case, &alone),
                    Err(e) => cannot_start(case.profile, &e),
                }
            };
            if !matches!(again.outcome, Outcome::Fail | Outcome::NonStrict) {
                passed = Some(again);
            }
        }
        let mut r = slot.lock().unwrap_or_else(|p| p.into_inner());
        let retried = Retried {
            reruns,
            passed: passed.is_some(),
            first_failure: first,
        };
        match passed {
            Some(mut again) => {
                again.retried = Some(retried);
                *r = Some(again);
            }
            None => {
                if let Some(r) = r.as_mut() {
                    r.retried = Some(retried);
                }
            }
        }
    }
}

fn needs_control(profile: Profile) -> String {
    format!(
        "needs a target the runner starts itself (--exec or embedded){}",
        if profile == Profile::Default {
            String::new()
        } else {
            format!(", with profile {profile}")
        }
    )
}

/// A target that cannot be started with a profile fails that profile's cases: the runner
/// started it once already, so the command or its settings are at fault.
fn cannot_start(profile: Profile, e: &std::io::Error) -> CaseResult {
    CaseResult {
        outcome: Outcome::Fail,
        reason: Some(format!(
            "the target did not start with profile {profile}: {e}"
        )),
        runs: 0,
        failures: Vec::new(),
        millis: 0,
        shrunk: None,
        retried: None,
        captured: Vec::new(),
    }
}

/// Selects cases by ID or glob, section, and exclusions.
pub fn select(
    all: Vec<Case>,
    include: &[String],
    sections: &[String],
    exclude: &[String],
) -> Vec<Case> {
    all.into_iter()
        .filter(|c| include.is_empty() || include.iter().any(|p| case::glob_match(p, &c.id)))
        .filter(|c| {
            sections.is_empty()
                || sections
                    .iter()
                    .any(|s| c.section == *s || c.section.starts_with(&format!("{s}.")))
        })
        .filter(|c| !exclude.iter().any(|p| case::glob_match(p, &c.id)))
        .collect()
}
