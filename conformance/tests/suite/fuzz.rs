//! The fuzzer tests itself: correct implementations raise no alarm, and the combination mutants
//! of the Python server (impls/python/fuzz_mutants.py, bugs where two rules meet, written from
//! the spec without reading the cases) are found by campaigns with a fixed seed: at least 10 of
//! the 12 quickest under `cargo test` (90 s each at most), every one of the 33 with
//! `ECHOWIRE_FUZZ_ALL_MUTANTS=1` (120 s each). Prints the kill matrix (mutant, sessions until found, seconds,
//! the rule).
//!
//! The seed of the no-false-alarm campaigns is fixed unless `ECHOWIRE_FUZZ_SEED` is set (`.ci/run`
//! sets and prints one from the clock): a false alarm is a bug in the oracle, and a seed that
//! shows one is a test case (seed 1796674989 was one; its cause has a unit test in the oracle).

use std::time::{Duration, Instant};

use echowire_conformance::fuzz::{self, FuzzOptions, FuzzReport};
use echowire_conformance::target::{ExecSpec, TargetSpec};

use crate::pyserver;

/// Sessions per correct implementation in `cargo test` (the 10-minute campaigns are run by hand;
/// the closing notes of the fuzzing work give their figures).
const CLEAN_SESSIONS: u64 = 20;
/// A mutant must be found within this long (a campaign of one session at a time; about 100
/// sessions on an idle machine) when every mutant is hunted (`ECHOWIRE_FUZZ_ALL_MUTANTS=1`).
const MUTANT_BUDGET: Duration = Duration::from_secs(120);
/// The budget of each mutant in the default `cargo test` hunt ([`QUICK`], at least
/// [`MUST_FIND`] found): a guard; those mutants are found in well under a minute.
const QUICK_BUDGET: Duration = Duration::from_secs(90);
/// The mutants `cargo test` hunts: the twelve that a hunt with seed 1 found within about 20
/// sessions each (2 to 36 s under load; a hunt of the first 20 on a busy machine, kill matrix
/// of 2026-12-07). The other 21 take up to the whole 120 s budget or, under load, miss it: six
/// of that run's 20 were not found within 90 s, and those six alone took most of the test's
/// 280 s. They are hunted with `ECHOWIRE_FUZZ_ALL_MUTANTS=1`, which requires every one.
const QUICK: [&str; 12] = [
    "busy-refused-request-stays-outstanding",
    "cancel-after-answer-poisons-reused-id",
    "cancel-of-running-request-forgets-it",
    "cancelled-request-stays-outstanding",
    "client-error-0-drains",
    "client-error-0-ignored-while-draining",
    "client-error-0-request-code-ignored",
    "idle-period-not-restarted-after-work",
    "ping-answered-while-draining",
    "shutting-down-before-invalid-argument",
    "truncated-frame-ends-drain-at-once",
    "truncated-frame-not-reported-while-draining",
];
/// Of which at least this many must be found. Not all: the sessions a campaign draws do not
/// depend on the machine, but whether a session shows a mutant can (a timer firing while a frame
/// is on its way), and a busy machine runs fewer sessions in the budget. The test prints how
/// many were found; a drop below this is a regression.
const MUST_FIND: usize = 10;
/// Campaigns at once (one session each: most of a session is waiting on the server's timers).
const HUNTERS: usize = 4;

/// The seed of the no-false-alarm campaigns (server and client fuzzers alike).
pub(crate) fn seed() -> u64 {
    std::env::var("ECHOWIRE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_207)
}

fn exec(script_and_args: &str) -> TargetSpec {
    TargetSpec::Exec(ExecSpec {
        template: pyserver::template(script_and_args),
        unix: false,
        name: None,
    })
}

fn campaign(target: TargetSpec, sessions: u64, seed: u64) -> FuzzReport {
    let out = tempfile::tempdir().expect("temp dir");
    let opts = FuzzOptions {
        target,
        seed,
        sessions: Some(sessions),
        duration: None,
        jobs: 2,
        out_dir: Some(out.path().to_path_buf()),
        ..FuzzOptions::default()
    };
    fuzz::campaign(&opts, &|_| {})
}

fn assert_clean(name: &str, r: &FuzzReport) {
    eprint!("{name}: {}", fuzz::report::text(r));
    let texts: Vec<String> = r.findings.iter().map(fuzz::report::finding_text).collect();
    assert!(
        r.passed(),
        "{name}: false alarm(s) with seed {} (a bug in the oracle or the implementation):\n{}{}",
        r.seed,
        texts.join("\n"),
        r.error.as_deref().unwrap_or("")
    );
    assert_eq!(r.sessions, CLEAN_SESSIONS, "{name}: every session ran");
    // Most sessions are decided: an oracle that gives up on everything proves nothing.
    assert!(
        r.passed * 10 >= r.sessions * 9,
        "{name}: only {} of {} sessions passed ({} inconclusive, {} unconfirmed)",
        r.passed,
        r.sessions,
        r.inconclusive,
        r.unconfirmed
    );
}

#[test]
fn the_reference_server_raises_no_false_alarm() {
    let seed = seed();
    eprintln!("fuzz seed {seed} (ECHOWIRE_FUZZ_SEED replays it)");
    for model in [
        echowire_server::Model::Reactor,
        echowire_server::Model::Threaded,
        echowire_server::Model::Blocking,
    ] {
        let target = TargetSpec::Embedded(model);
        let name = target.to_string();
        let r = campaign(target, CLEAN_SESSIONS, seed);
        assert_clean(&name, &r);
    }
}

#[test]
fn the_python_server_raises_no_false_alarm() {
    let seed = seed();
    eprintln!("fuzz seed {seed} (ECHOWIRE_FUZZ_SEED replays it)");
    let r = campaign(exec("echowire_server.py"), CLEAN_SESSIONS, seed);
    assert_clean("python", &r);
}

/// The mutants, as `fuzz_mutants.py --list` gives them.
fn mutants() -> Vec<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../impls/python");
    let out = std::process::Command::new("python3")
        .arg(format!("{dir}/fuzz_mutants.py"))
        .arg("--list")
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "fuzz_mutants.py --list failed");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON list");
    v.as_array()
        .expect("a list")
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap_or_default().to_string(),
                m["spec"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

struct Kill {
    name: String,
    found: Option<(u64, String)>,
    sessions: u64,
    secs: f64,
    /// The finding's case file, read back.
    case_file: Option<String>,
}

fn hunt(name: &str, budget: Duration) -> Kill {
    let out = tempfile::tempdir().expect("temp dir");
    let opts = FuzzOptions {
        target: exec(&format!("fuzz_mutants.py {name}")),
        seed: 1,
        sessions: None,
        duration: Some(budget),
        jobs: 1,
        stop_at_first: true,
        shrink: false,
        out_dir: Some(out.path().to_path_buf()),
        ..FuzzOptions::default()
    };
    let started = Instant::now();
    let r = fuzz::campaign(&opts, &|_| {});
    let case_file = r
        .findings
        .first()
        .and_then(|f| f.case_file.as_ref())
        .and_then(|p| std::fs::read_to_string(p).ok());
    Kill {
        case_file,
        name: name.to_string(),
        found: r
            .findings
            .first()
            .map(|f| (f.session, f.divergence.rule.spec().section)),
        sessions: r.sessions,
        secs: started.elapsed().as_secs_f64(),
    }
}

#[test]
fn every_combination_mutant_is_found_within_its_budget() {
    let mut all = mutants();
    assert!(all.len() >= 15, "at least 15 combination mutants");
    let every = std::env::var_os("ECHOWIRE_FUZZ_ALL_MUTANTS").is_some_and(|v| v == "1");
    let (must_find, budget) = if every {
        (all.len(), MUTANT_BUDGET)
    } else {
        for q in QUICK {
            assert!(
                all.iter().any(|(n, _)| n == q),
                "{q} is not a mutant of fuzz_mutants.py"
            );
        }
        all.retain(|(n, _)| QUICK.contains(&n.as_str()));
        (MUST_FIND, QUICK_BUDGET)
    };
    let next = std::sync::atomic::AtomicUsize::new(0);
    let kills = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..HUNTERS {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                    let Some((name, _)) = all.get(i) else { return };
                    let k = hunt(name, budget);
                    kills.lock().unwrap_or_else(|p| p.into_inner()).push(k);
                }
            });
        }
    });
    let mut kills = kills.into_inner().unwrap_or_else(|p| p.into_inner());
    kills.sort_by(|a, b| a.name.cmp(&b.name));
    eprintln!("\nkill matrix (fuzz, seed 1, budget {budget:?}):");
    eprintln!(
        "  {:<48} {:>9} {:>8}  rule",
        "mutant", "sessions", "seconds"
    );
    for k in &kills {
        match &k.found {
            Some((session, section)) => eprintln!(
                "  {:<48} {:>9} {:>8.1}  §{section} (session {session})",
                k.name, k.sessions, k.secs
            ),
            None => eprintln!(
                "  {:<48} {:>9} {:>8.1}  NOT FOUND",
                k.name, k.sessions, k.secs
            ),
        }
    }
    // A finding is a case file the suite replays: it passes on the unbroken server and fails on
    // the mutant (a timing-dependent one may need a second try). Checked for the first three
    // found under the whole split (the replay's split).
    let whole = |k: &&Kill| {
        k.case_file.as_deref().is_some_and(|t| {
            serde_json::from_str::<serde_json::Value>(t)
                .is_ok_and(|v| v["cases"][0]["finding"]["split"] == "whole")
        })
    };
    for k in kills.iter().filter(whole).take(3) {
        let text = k.case_file.as_deref().unwrap_or_default();
        let cases = echowire_conformance::case::parse(&[("finding.json", text)])
            .unwrap_or_else(|e| panic!("{}: the finding's case file does not load: {e}", k.name));
        let replay = |target: TargetSpec| {
            let opts = echowire_conformance::Options {
                targets: vec![target],
                strategies: vec![echowire_conformance::split::Strategy::Whole],
                liveness: false,
                force: true,
                shrink: false,
                ..echowire_conformance::Options::default()
            };
            echowire_conformance::run(cases.clone(), opts, &|_| {}).passed(false)
        };
        assert!(
            replay(exec("echowire_server.py")),
            "{}: the finding fails on the unbroken server too:\n{text}",
            k.name
        );
        assert!(
            (0..3).any(|_| !replay(exec(&format!("fuzz_mutants.py {}", k.name)))),
            "{}: the finding's case passes on the mutant in 3 replays",
            k.name
        );
    }
    let missed: Vec<&str> = kills
        .iter()
        .filter(|k| k.found.is_none())
        .map(|k| k.name.as_str())
        .collect();
    let found = kills.len() - missed.len();
    eprintln!(
        "found {found} of {} mutants (at least {must_find} required)",
        kills.len()
    );
    assert!(
        found >= must_find,
        "the fuzzer found {found} of {} mutants, fewer than {must_find}; missed: {missed:?}",
        kills.len()
    );
}
