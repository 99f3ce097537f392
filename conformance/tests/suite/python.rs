//! The suite against a second implementation: `impls/python/echowire_server.py`, a small server
//! written from the spec in another language, started by the runner through `--exec` (every
//! profile, a fresh instance for each shutdown case), over TCP here and over a Unix socket in
//! CI's exhaustive step (`.ci/exhaustive`). It must pass every case; only the cases of the
//! optional RKYV capability, which it does not offer, may be skipped.

use std::time::Duration;

use echowire_conformance::split::Strategy;
use echowire_conformance::target::{ExecSpec, TargetSpec};
use echowire_conformance::verdict::Outcome;
use echowire_conformance::{Options, case};

use crate::pyserver;

fn run(unix: bool, strategies: Vec<Strategy>) {
    let spec = ExecSpec {
        template: pyserver::template("echowire_server.py"),
        unix,
        name: None,
    };
    spec.validate().expect("the template is valid");
    let opts = Options {
        targets: vec![TargetSpec::Exec(spec)],
        strategies,
        timeout: Duration::from_secs(15),
        // Two cases at a time: the server hashes under one interpreter lock, so more slow
        // COMPUTEs side by side would outlast the profile's drain timeout on a 2-core machine.
        jobs: 2,
        // A failing case is run again alone, up to twice: under CPU steal an interpreted
        // server's slow COMPUTE can outlast a profile's timeout (a hiccup, not a verdict).
        retries: 2,
        ..Options::default()
    };
    let report = echowire_conformance::run(case::builtin(), opts, &|_| {});
    let t = &report.targets[0];
    assert!(
        t.error.is_none(),
        "{:?} (stderr: {:?})",
        t.error,
        t.log_tail
    );
    assert!(t.died_after.is_none(), "died after {:?}", t.died_after);
    let mut bad = Vec::new();
    for (c, r) in report.cases.iter().zip(&t.results) {
        if let Some(rt) = r.retried.as_ref().filter(|rt| rt.passed) {
            println!(
                "{} {}",
                c.id,
                echowire_conformance::report::retried_text(rt)
            );
        }
        let rkyv = c.requires.contains(&case::Requirement::Rkyv);
        match r.outcome {
            Outcome::Pass => {}
            Outcome::Skipped if rkyv => {}
            _ => bad.push(format!(
                "{} {:?} {:?} {:?}",
                c.id,
                r.outcome,
                r.reason,
                r.failures.first().map(|f| (&f.cut, &f.failure))
            )),
        }
    }
    assert!(
        bad.is_empty(),
        "the Python server fails {} case(s) (stderr: {:?}):\n{}",
        bad.len(),
        t.log_tail,
        bad.join("\n")
    );
    let passed = t
        .results
        .iter()
        .filter(|r| r.outcome == Outcome::Pass)
        .count();
    println!(
        "python server over {}: {passed} of {} cases pass, the rest need RKYV",
        if unix { "a Unix socket" } else { "TCP" },
        t.results.len()
    );
}

// Over a Unix socket, under whole and coalesced writes, it runs in CI's exhaustive step
// (`.ci/exhaustive`).
#[test]
fn the_python_server_passes_over_tcp() {
    // Whole and bytewise: the two extremes of how a stream is cut (a random split costs a
    // minute here and is exercised against the reference server in reference.rs).
    run(false, vec![Strategy::Whole, Strategy::Bytewise]);
}

/// A correct but slow server (the Python server computes about a million SHA-256 iterations a
/// second) declares its COMPUTE speed with `--compute-rate`, and the waits grow with the case's
/// COMPUTE costs instead of failing it for its speed, which the spec does not bound (4.6).
#[test]
fn a_declared_compute_rate_extends_the_waits_of_compute_cases() {
    let cases = echowire_conformance::select(
        echowire_conformance::case::builtin(),
        &["3.6-slow-request-does-not-block".into()],
        &[],
        &[],
    );
    assert_eq!(cases.len(), 1);
    assert_eq!(
        echowire_conformance::compute_allowance(&cases[0], Some(1_000_000)),
        Duration::from_secs(2),
        "the case sends one COMPUTE of cost 2,000,000"
    );
    let outcome = |rate: Option<u64>| {
        let opts = Options {
            targets: vec![TargetSpec::Exec(ExecSpec {
                template: pyserver::template("echowire_server.py"),
                unix: false,
                name: None,
            })],
            strategies: vec![echowire_conformance::split::Strategy::Whole],
            // Far below the Python server's time for 2,000,000 iterations (1.7 s here).
            timeout: Duration::from_millis(500),
            compute_rate: rate,
            liveness: false,
            shrink: false,
            ..Options::default()
        };
        echowire_conformance::run(cases.clone(), opts, &|_| {}).targets[0].results[0].outcome
    };
    assert_eq!(outcome(None), Outcome::Fail, "too slow for a 500 ms wait");
    assert_eq!(outcome(Some(100_000)), Outcome::Pass, "declared: 20 s more");
}
