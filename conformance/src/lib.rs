//! # echowire-conformance
//!
//! Replays the conformance cases of `spec/conformance/` against any Echowire server (TCP or Unix
//! socket; by default the embedded reference server), under byte-split strategies, and reports a
//! verdict per case and per spec section — in the terminal, as JSON, JUnit XML and one
//! self-contained HTML file.
//!
//! * [`case`]: the case data model and loader; [`split`]: the split strategies;
//! * [`exec`]: runs one case over real connections (writer thread + deadline-bound reader);
//! * [`verdict`]: expected-vs-observed matching and outcome classes;
//! * [`report`]: the report formats; [`target`]: where to connect;
//! * [`load`]: the load generator (`echowire-conformance load`).
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

pub mod case;
pub mod exec;
pub mod load;
pub mod report;
pub mod split;
pub mod step;
pub mod target;
pub mod verdict;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use case::Case;
use exec::{RunResult, RunSettings, TargetInfo};
use split::{Cut, Strategy};
use target::{Target, TargetSpec};
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
}

impl Report {
    /// Whether the run passes: every target reachable and alive, no MUST failed (with `strict`,
    /// no SHOULD either).
    pub fn passed(&self, strict: bool) -> bool {
        self.targets.iter().all(|t| {
            t.error.is_none()
                && t.warning.is_none()
                && t.died_after.is_none()
                && t.results.iter().all(|r| {
                    r.outcome != Outcome::Fail && !(strict && r.outcome == Outcome::NonStrict)
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
        }
    }
    out
}

/// Runs one case against one target.
pub fn run_case(target: &Target, info: &TargetInfo, case: &Case, opts: &Options) -> CaseResult {
    let started = Instant::now();
    for req in &case.requires {
        let (ok, why) = match req.as_str() {
            "v2" => (
                info.version >= 2,
                "unsupported: the target's handshake does not offer v2".to_string(),
            ),
            "rkyv" => (
                info.capabilities & echowire_codec::message::CAP_RKYV != 0,
                "unsupported: the target's handshake does not offer rkyv".to_string(),
            ),
            t @ ("handshake_timeout" | "idle_timeout" | "drain_timeout") => (
                target.timeouts.declared(t),
                format!(
                    "the target's {} is not declared (--{})",
                    t.replace('_', " "),
                    t.replace('_', "-")
                ),
            ),
            other => (false, format!("unknown requirement {other:?}")),
        };
        if !ok {
            return CaseResult {
                outcome: Outcome::Skipped,
                reason: Some(why),
                runs: 0,
                failures: Vec::new(),
                millis: 0,
            };
        }
    }
    #[derive(Default)]
    struct Tally {
        runs: usize,
        sent: u64,
        failures: Vec<RunResult>,
    }
    impl Tally {
        fn record(&mut self, r: RunResult) {
            self.runs += 1;
            self.sent = self.sent.max(r.sent_bytes);
            if r.failure.is_some() && self.failures.len() < 3 {
                self.failures.push(r);
            }
        }
    }
    let mut t = Tally::default();
    let settings = |cut| RunSettings {
        cut,
        timeout: opts.timeout,
        coalesce: case.coalesce,
        timeouts: target.timeouts,
    };
    for planned in cuts(case, &opts.strategies, opts.seed) {
        let cut = match planned {
            Planned::Cut(cut) => cut,
            Planned::Boundaries => {
                // Every k for small cases, 32 evenly spaced points for larger ones.
                if t.sent == 0 {
                    t.record(exec::run(target, &case.steps, settings(Cut::Whole)));
                }
                let sent = t.sent;
                let ks: Vec<u64> = if sent <= 256 {
                    (1..sent).collect()
                } else {
                    (1..=32).map(|i| i * sent / 33).collect()
                };
                for k in ks {
                    t.record(exec::run(target, &case.steps, settings(Cut::At(k))));
                }
                continue;
            }
        };
        t.record(exec::run(target, &case.steps, settings(cut)));
    }
    let Tally { runs, failures, .. } = t;
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
    }
}

/// Runs every case against every target. `on_result` sees each result as it completes
/// (progress output).
pub fn run(
    cases: Vec<Case>,
    opts: Options,
    on_result: &(dyn Fn(&str, usize, usize, &Case, &CaseResult) + Sync),
) -> Report {
    let started = Instant::now();
    let mut targets = Vec::new();
    for spec in &opts.targets {
        let name = spec.to_string();
        let target = match Target::open(spec.clone(), opts.timeouts) {
            Ok(t) => t,
            Err(e) => {
                targets.push(TargetReport {
                    name,
                    address: String::new(),
                    info: None,
                    error: Some(format!("cannot start: {e}")),
                    warning: None,
                    died_after: None,
                    results: Vec::new(),
                });
                continue;
            }
        };
        let mut warning = None;
        let info = match exec::probe(&target, opts.timeout) {
            Ok(i) => i,
            Err(exec::ProbeError::Unreachable(e)) => {
                targets.push(TargetReport {
                    name,
                    address: target.address(),
                    info: None,
                    error: Some(e),
                    warning: None,
                    died_after: None,
                    results: Vec::new(),
                });
                continue;
            }
            Err(exec::ProbeError::Handshake(e)) => {
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
        let results: Vec<Mutex<Option<CaseResult>>> =
            cases.iter().map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        let done = AtomicUsize::new(0);
        let died: Mutex<Option<String>> = Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..opts.jobs.max(1) {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= cases.len() {
                            break;
                        }
                        let case = &cases[i];
                        let r = if let Some(after) =
                            died.lock().unwrap_or_else(|p| p.into_inner()).clone()
                        {
                            CaseResult {
                                outcome: Outcome::Skipped,
                                reason: Some(format!("the target died after case {after}")),
                                runs: 0,
                                failures: Vec::new(),
                                millis: 0,
                            }
                        } else {
                            let r = run_case(&target, &info, case, &opts);
                            if opts.liveness
                                && r.outcome != Outcome::Skipped
                                && let Err(e) = exec::alive(&target, opts.timeout)
                            {
                                let mut d = died.lock().unwrap_or_else(|p| p.into_inner());
                                if d.is_none() {
                                    *d = Some(case.id.clone());
                                    eprintln!("liveness probe failed after {}: {e}", case.id);
                                }
                            }
                            r
                        };
                        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                        on_result(&name, n, cases.len(), case, &r);
                        *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
                    }
                });
            }
        });
        let results = results
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
            died_after: died.into_inner().unwrap_or_else(|p| p.into_inner()),
            results,
        });
    }
    Report {
        cases,
        targets,
        options: opts,
        elapsed: started.elapsed(),
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
