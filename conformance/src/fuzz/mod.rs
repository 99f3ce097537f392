//! `echowire-conformance fuzz`: random sessions against any server, every reply judged by the
//! oracle ([`crate::oracle`]).
//!
//! A campaign draws sessions from the grammar ([`grammar`]), each from its own seed derived from the
//! campaign's, and runs each as a judged case through the same executor, splits and wire log as
//! the fixed cases. A divergence is replayed before it is reported (it must fail again), shrunk
//! ([`shrink`]: first whole steps, then the split and the pauses), and written as a case file in
//! the suite's own format, which `echowire-conformance --case-file F` replays.
//!
//! The campaign visits the profiles a controlled target can be started with (`default`, `small`:
//! the smallest frame and outstanding limits, `busy`: a pool of one worker and one queued, and
//! `tight`: the spec's shortest timeouts, an outstanding limit equal to a small pool), so timers,
//! limits and BUSY meet in one session; a session that signals the target gets an
//! instance of its own. A network target runs with its own settings and is never signalled.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::exec::{self, RunResult, RunSettings, TargetInfo};
use crate::oracle::{Cell, Divergence};
use crate::split::Cut;
use crate::step::Step;
use crate::target::{Profile, Target, TargetSpec, Timeouts};

pub mod client;
pub mod grammar;
pub mod report;
pub mod shrink;

/// A campaign's settings.
#[derive(Clone, Debug)]
pub struct FuzzOptions {
    /// The implementation under test.
    pub target: TargetSpec,
    /// A second implementation run on the same sessions (differential mode).
    pub against: Option<TargetSpec>,
    /// The campaign's seed: the same seed gives the same sessions.
    pub seed: u64,
    /// The first session's index (a finding names its session: `--session N` replays it alone).
    pub first: u64,
    /// Stop after this many sessions.
    pub sessions: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Sessions run at once.
    pub jobs: usize,
    /// Timeouts a network target declares.
    pub timeouts: Timeouts,
    /// The oracle's timing tolerance.
    pub slack_ms: u64,
    /// Default deadline of every wait.
    pub timeout: Duration,
    /// Where findings are written as case files (none: not written).
    pub out_dir: Option<PathBuf>,
    /// Stop at the first confirmed divergence.
    pub stop_at_first: bool,
    /// Profiles to visit (a controlled target); empty: default, small, busy and tight.
    pub profiles: Vec<Profile>,
    /// Shrink findings.
    pub shrink: bool,
}

impl Default for FuzzOptions {
    fn default() -> Self {
        FuzzOptions {
            target: TargetSpec::Embedded(echowire_server::Model::Reactor),
            against: None,
            seed: 1,
            first: 0,
            sessions: None,
            duration: Some(Duration::from_secs(60)),
            jobs: 2,
            timeouts: Timeouts::default(),
            slack_ms: crate::oracle::DEFAULT_SLACK_MS,
            timeout: Duration::from_secs(10),
            out_dir: None,
            stop_at_first: false,
            profiles: Vec::new(),
            shrink: true,
        }
    }
}

/// One confirmed divergence.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// The target it was found on.
    pub target: String,
    /// The session's index in the campaign and its seed (`--seed` of the campaign plus this
    /// reproduce it; the case file replays it alone).
    pub session: u64,
    /// The session's own seed.
    pub session_seed: u64,
    /// The profile the target ran with.
    pub profile: String,
    /// The split the session was written with.
    pub cut: String,
    /// Replays that failed again, of those tried.
    pub confirmed: (usize, usize),
    /// Steps before and after shrinking.
    pub steps: (usize, usize),
    /// The divergence (of the shrunk session).
    pub divergence: Divergence,
    /// The rule's sentence.
    pub sentence: String,
    /// The case file written, if any.
    pub case_file: Option<String>,
    /// The shrunk session's failing run (its wire log).
    #[serde(skip)]
    pub run: RunResult,
    /// The shrunk steps.
    #[serde(skip)]
    pub shrunk: Vec<Step>,
}

/// What a campaign did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FuzzReport {
    /// Targets, in order.
    pub targets: Vec<String>,
    /// The campaign's seed.
    pub seed: u64,
    /// Sessions run (per target).
    pub sessions: u64,
    /// Sessions the oracle passed.
    pub passed: u64,
    /// Sessions the oracle could not decide within its budget.
    pub inconclusive: u64,
    /// Divergences that did not fail again on replay (reported, not counted as findings).
    pub unconfirmed: u64,
    /// Confirmed divergences.
    pub findings: Vec<Finding>,
    /// Coverage: how often each cell was reached.
    pub cells: BTreeMap<String, u64>,
    /// Cells of the universe never reached.
    pub unreached: Vec<String>,
    /// Wall time.
    pub elapsed: Duration,
    /// Model states the oracle visited in all.
    pub oracle_nodes: u64,
    /// Sessions per profile.
    pub profiles: BTreeMap<String, u64>,
    /// The target could not be used (it did not start or answer its probe).
    pub error: Option<String>,
}

impl FuzzReport {
    /// Whether the campaign found nothing wrong.
    pub fn passed(&self) -> bool {
        self.findings.is_empty() && self.error.is_none()
    }
}

/// Progress events.
#[derive(Debug)]
pub enum Progress<'a> {
    /// A session finished.
    Session {
        /// How many so far.
        done: u64,
        /// Findings so far.
        findings: usize,
    },
    /// A session was drawn (its index and steps), before it runs.
    Drawn(u64, &'a [Step]),
    /// A session ended (its index and how: passed, inconclusive, diverged, ...).
    Ended(u64, &'a str),
    /// A divergence, before it is confirmed and shrunk.
    Diverged(&'a str),
    /// A finding, confirmed and shrunk.
    Found(&'a Finding),
}

/// The seed of session `i` of a campaign seeded `seed` (SplitMix64: neighbouring sessions get
/// unrelated seeds).
pub fn session_seed(seed: u64, i: u64) -> u64 {
    let mut z = seed
        .wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A target opened for one profile, with what its probe found.
struct Opened {
    target: Target,
    info: TargetInfo,
    /// A COMPUTE cost that keeps one of its workers busy for about 1.5 s.
    slow_cost: u32,
}

fn open(spec: &TargetSpec, opts: &FuzzOptions, profile: Profile) -> Result<Opened, String> {
    let target = Target::open(spec.clone(), opts.timeouts, profile)
        .map_err(|e| format!("cannot start {spec} (profile {profile}): {e}"))?;
    let info = exec::probe(&target, opts.timeout)
        .map_err(|e| format!("{spec} (profile {profile}): the probe failed: {e:?}"))?;
    let slow_cost = calibrate(&target, &info, opts);
    Ok(Opened {
        target,
        info,
        slow_cost,
    })
}

/// Measures the target's COMPUTE speed: the cost that keeps a worker busy for about 1.5 s
/// (so that slow work crosses the timers whatever the implementation's speed). Costs grow
/// eightfold from 100,000 until one takes 150 ms; a target that fails the measurement gets a
/// cost of 4,000,000.
fn calibrate(target: &Target, info: &TargetInfo, opts: &FuzzOptions) -> u32 {
    const MAX: u64 = 1 << 24;
    const AIM_MS: u64 = 1_500;
    let mut cost: u64 = 100_000;
    loop {
        let steps: Result<Vec<Step>, _> = serde_json::from_value(serde_json::json!([
            {"handshake": {"min_version": 1, "max_version": 1, "max_frame_size": 16_777_216, "capabilities": 0}},
            {"send": {"frame": {"type": "COMPUTE", "request_id": 1, "flags": 0, "body": {"cost": cost, "seed": ""}}}},
            {"expect": {"frame": {"type": "COMPUTE_RESULT", "request_id": 1}, "within_ms": 30_000}}
        ]));
        let Ok(steps) = steps else { return 4_000_000 };
        let started = Instant::now();
        let r = exec::run(
            target,
            &steps,
            RunSettings {
                cut: Cut::Whole,
                timeout: opts.timeout.max(Duration::from_secs(30)),
                coalesce: false,
                timeouts: target.timeouts,
                server: Some(info.clone()),
                slack_ms: opts.slack_ms,
            },
        );
        let ms = started.elapsed().as_millis() as u64;
        if r.failure.is_some() {
            return 4_000_000;
        }
        if ms >= 150 || cost >= MAX {
            return (cost * AIM_MS / ms.max(1)).clamp(1, MAX) as u32;
        }
        cost = (cost * 8).min(MAX);
    }
}

/// The split a session is written with: whole most of the time, split at random points often,
/// with pauses between the pieces sometimes, one octet per write rarely (short sessions only).
fn cut_for(seed: u64, steps: &[Step]) -> Cut {
    let mut r = grammar::Rng::new(seed ^ 0x5151);
    let bytes: usize = steps
        .iter()
        .map(|s| match s {
            Step::Send(crate::step::Send::Fill { len, .. }) => *len,
            Step::Send(_) => 32,
            _ => 0,
        })
        .sum();
    match r.weighted(&[45, 35, 12, 8]) {
        0 => Cut::Whole,
        1 => Cut::Random(seed),
        2 if bytes < 4096 => Cut::Delayed(seed),
        3 if bytes < 1024 => Cut::Bytewise,
        _ => Cut::Random(seed),
    }
}

fn settings(opts: &FuzzOptions, t: &Opened, cut: Cut) -> RunSettings {
    RunSettings {
        cut,
        timeout: opts.timeout,
        coalesce: false,
        timeouts: t.target.timeouts,
        server: Some(t.info.clone()),
        slack_ms: opts.slack_ms,
    }
}

/// Runs a campaign.
pub fn campaign(opts: &FuzzOptions, on: &(dyn Fn(Progress<'_>) + Sync)) -> FuzzReport {
    let started = Instant::now();
    let mut targets = vec![opts.target.clone()];
    targets.extend(opts.against.clone());
    let mut report = FuzzReport {
        targets: targets.iter().map(ToString::to_string).collect(),
        seed: opts.seed,
        ..FuzzReport::default()
    };
    // Open every target for every profile it can run.
    let profiles = if opts.profiles.is_empty() {
        vec![
            Profile::Default,
            Profile::Small,
            Profile::Busy,
            Profile::Tight,
        ]
    } else {
        opts.profiles.clone()
    };
    let mut opened: Vec<Vec<(Profile, Opened)>> = Vec::new();
    for spec in &targets {
        let mut per = Vec::new();
        for &p in &profiles {
            let controlled = matches!(spec, TargetSpec::Embedded(_) | TargetSpec::Exec(_));
            if p != Profile::Default && !controlled {
                continue;
            }
            match open(spec, opts, p) {
                Ok(o) => per.push((p, o)),
                Err(e) => {
                    report.error = Some(e);
                    report.elapsed = started.elapsed();
                    return report;
                }
            }
        }
        opened.push(per);
    }
    let next = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let shared = Mutex::new(Tally::default());
    let findings = AtomicUsize::new(0);
    let deadline = opts.duration.map(|d| started + d);
    std::thread::scope(|s| {
        // A target that serves one connection at a time (the blocking model) gets one session
        // at a time, without background connections: a second connection would wait in its
        // listen backlog, which no client can tell from a server that does not answer.
        let jobs = if targets.iter().any(serial) {
            1
        } else {
            opts.jobs.max(1)
        };
        for _ in 0..jobs {
            s.spawn(|| {
                loop {
                    if stop.load(Ordering::Acquire) || deadline.is_some_and(|d| Instant::now() >= d)
                    {
                        return;
                    }
                    let k = next.fetch_add(1, Ordering::AcqRel);
                    if opts.sessions.is_some_and(|n| k >= n) {
                        return;
                    }
                    let i = opts.first + k;
                    let seed = session_seed(opts.seed, i);
                    for (k, per) in opened.iter().enumerate() {
                        let (profile, t) = &per[(seed % per.len() as u64) as usize];
                        let r = one_session(opts, &targets[k], *profile, t, i, seed, on);
                        let mut tally = shared.lock().unwrap_or_else(|p| p.into_inner());
                        tally.add(r, *profile);
                        if let Some(f) = tally.new_finding.take() {
                            findings.fetch_add(1, Ordering::AcqRel);
                            on(Progress::Found(&f));
                            tally.findings.push(f);
                            if opts.stop_at_first {
                                stop.store(true, Ordering::Release);
                            }
                        }
                    }
                    let done = {
                        let t = shared.lock().unwrap_or_else(|p| p.into_inner());
                        t.sessions
                    };
                    on(Progress::Session {
                        done,
                        findings: findings.load(Ordering::Acquire),
                    });
                }
            });
        }
    });
    let tally = shared.into_inner().unwrap_or_else(|p| p.into_inner());
    report.sessions = tally.sessions / targets.len() as u64;
    report.passed = tally.passed;
    report.inconclusive = tally.inconclusive;
    report.unconfirmed = tally.unconfirmed;
    report.oracle_nodes = tally.nodes;
    report.profiles = tally.profiles;
    report.unreached = unreached(&tally.cells);
    report.cells = tally
        .cells
        .into_iter()
        .map(|(c, n)| (format!("{} / {} / {}", c.state, c.message, c.outcome), n))
        .collect();
    report.findings = tally.findings;
    report.findings.sort_by_key(|f| f.session);
    report.elapsed = started.elapsed();
    report
}

#[derive(Default)]
struct Tally {
    sessions: u64,
    passed: u64,
    inconclusive: u64,
    unconfirmed: u64,
    nodes: u64,
    cells: BTreeMap<Cell, u64>,
    profiles: BTreeMap<String, u64>,
    findings: Vec<Finding>,
    new_finding: Option<Finding>,
}

enum SessionResult {
    Passed { nodes: usize, cells: Vec<Cell> },
    Inconclusive,
    Unconfirmed,
    Found(Box<Finding>),
}

impl Tally {
    fn add(&mut self, r: SessionResult, profile: Profile) {
        self.sessions += 1;
        *self.profiles.entry(profile.name().to_string()).or_default() += 1;
        match r {
            SessionResult::Passed { nodes, cells } => {
                self.passed += 1;
                self.nodes += nodes as u64;
                for c in cells {
                    *self.cells.entry(c).or_default() += 1;
                }
            }
            SessionResult::Inconclusive => self.inconclusive += 1,
            SessionResult::Unconfirmed => self.unconfirmed += 1,
            SessionResult::Found(f) => self.new_finding = Some(*f),
        }
    }
}

/// Runs one session against one target (a fresh instance if it signals), confirms and shrinks
/// a divergence.
fn one_session(
    opts: &FuzzOptions,
    spec: &TargetSpec,
    profile: Profile,
    t: &Opened,
    index: u64,
    seed: u64,
    on: &(dyn Fn(Progress<'_>) + Sync),
) -> SessionResult {
    let cfg = grammar::GenConfig {
        timeouts: t.target.timeouts,
        limit: t.info.max_frame_size,
        v2: t.info.version >= 2,
        rkyv: t.info.capabilities & echowire_codec::message::CAP_RKYV != 0,
        may_signal: t.target.controlled(),
        concurrent: !serial(spec),
        slack_ms: opts.slack_ms,
        slow_cost: t.slow_cost,
    };
    let session = grammar::session(seed, &cfg);
    on(Progress::Drawn(index, &session.steps));
    let cut = cut_for(seed, &session.steps);
    let run =
        |steps: &[Step], cut: Cut| -> RunResult { run_on(opts, spec, profile, t, steps, cut) };
    let first = run(&session.steps, cut.clone());
    let how = match (&first.oracle, &first.failure) {
        (Some(o), _) if o.divergence.is_some() => "diverged".to_string(),
        (Some(o), _) if o.inconclusive => format!("inconclusive after {} model states", o.nodes),
        (Some(o), _) => format!("passed ({} model states)", o.nodes),
        (None, Some(f)) => format!("failed before the judge: {}: {}", f.expected, f.observed),
        (None, None) => "ended without a judgement".to_string(),
    };
    on(Progress::Ended(index, &format!("{how}, split {cut}")));
    let Some(d) = first.oracle.as_ref().and_then(|o| o.divergence.clone()) else {
        return match first.oracle {
            Some(o) if o.inconclusive => SessionResult::Inconclusive,
            Some(o) => SessionResult::Passed {
                nodes: o.nodes,
                cells: o.cells,
            },
            // Failed before the judge (the target died, a send could not be built): count it
            // as a finding only through the oracle; here, a replay decides.
            None if first.failure.is_some() => SessionResult::Unconfirmed,
            None => SessionResult::Inconclusive,
        };
    };
    on(Progress::Diverged(&d.observed));
    // Confirm: the same session, the same split, must fail again.
    let tries = 3;
    let mut again = 0;
    for _ in 0..tries {
        if run(&session.steps, cut.clone()).failure.is_some() {
            again += 1;
            break;
        }
    }
    if again == 0 {
        return SessionResult::Unconfirmed;
    }
    let (steps, cut, last) = if opts.shrink {
        shrink::shrink(&session.steps, cut, first.clone(), &d, &run)
    } else {
        (session.steps.clone(), cut, first.clone())
    };
    let divergence = last
        .oracle
        .as_ref()
        .and_then(|o| o.divergence.clone())
        .unwrap_or(d);
    let mut f = Finding {
        target: spec.to_string(),
        session: index,
        session_seed: seed,
        profile: profile.name().into(),
        cut: cut.to_string(),
        confirmed: (again, tries.min(again + 1)),
        steps: (session.steps.len(), steps.len()),
        sentence: divergence.sentence(),
        divergence,
        case_file: None,
        run: last,
        shrunk: steps,
    };
    if let Some(dir) = &opts.out_dir {
        match shrink::write_case(dir, opts.seed, &f) {
            Ok(p) => f.case_file = Some(p.display().to_string()),
            Err(e) => f.case_file = Some(format!("(not written: {e})")),
        }
    }
    SessionResult::Found(Box::new(f))
}

/// Runs steps once; a session that signals runs on a fresh instance of its own.
fn run_on(
    opts: &FuzzOptions,
    spec: &TargetSpec,
    profile: Profile,
    t: &Opened,
    steps: &[Step],
    cut: Cut,
) -> RunResult {
    let signals = steps.iter().any(|s| matches!(s, Step::Signal(_)));
    if !signals {
        return exec::run(&t.target, steps, settings(opts, t, cut));
    }
    match open(spec, opts, profile) {
        Ok(own) => exec::run(&own.target, steps, settings(opts, &own, cut)),
        Err(e) => RunResult::failed_to_start(cut, "a fresh instance of the target", e),
    }
}

/// Whether the target serves one connection at a time.
fn serial(spec: &TargetSpec) -> bool {
    matches!(spec, TargetSpec::Embedded(echowire_server::Model::Blocking))
}

/// The universe of cells: each state a frame can arrive in, by each type a client sends.
fn universe() -> BTreeSet<(&'static str, String)> {
    use echowire_codec::frame::{Direction, MessageType};
    let mut types: Vec<String> = MessageType::DEFINED
        .iter()
        .filter(|t| matches!(t.direction(), Direction::ToServer | Direction::Both))
        .filter_map(|t| t.name().map(str::to_string))
        .collect();
    types.extend(["application".to_string(), "unknown".to_string()]);
    let mut u = BTreeSet::new();
    for state in ["handshake", "open", "draining"] {
        for t in &types {
            u.insert((state, t.clone()));
        }
    }
    u
}

fn unreached(cells: &BTreeMap<Cell, u64>) -> Vec<String> {
    let reached: BTreeSet<(&'static str, String)> =
        cells.keys().map(|c| (c.state, c.message.clone())).collect();
    universe()
        .into_iter()
        .filter(|k| !reached.contains(k))
        .map(|(s, t)| format!("{s} / {t}"))
        .collect()
}
