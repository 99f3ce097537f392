//! Client conformance: the runner plays the server. The codec's two clients (blocking and tokio)
//! and a client written in Python from the spec pass every client case under every split of the
//! server's octets; every mutant of the Python client (one realistic bug each) is killed by the
//! case named beside it.

use std::sync::Arc;
use std::time::Duration;

use echowire_conformance::client;
use echowire_conformance::split::{Cut, Strategy};
use echowire_conformance::verdict::Outcome;
use echowire_conformance::{Options, Report};

use echowire_test_support::{json as validate_json, junit as validate_junit};

const BLOCKING: &str = env!("CARGO_BIN_EXE_echowire-blocking-client-driver");
const ASYNC: &str = env!("CARGO_BIN_EXE_echowire-async-client-driver");
const PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../impls/python");

fn run(commands: &[String], strategies: Vec<Strategy>, cases: Vec<client::ClientCase>) -> Report {
    let opts = Options {
        strategies,
        // Only a failing step waits this long. A driver is started for every run (a Python
        // one through a shell and pyenv's shims): under CPU steal a start took over 5 s now
        // and then ("no connection before the deadline").
        timeout: Duration::from_secs(10),
        jobs: 4,
        ..Options::default()
    };
    client::run(commands, cases, opts, &|_| {})
}

fn failures(report: &Report) -> Vec<String> {
    let mut bad = Vec::new();
    for t in &report.targets {
        for (c, r) in report.cases.iter().zip(&t.results) {
            if r.outcome != Outcome::Pass {
                let f = r
                    .failures
                    .first()
                    .and_then(|f| f.failure.clone().map(|x| (f.cut.clone(), x)));
                bad.push(format!("{} {} {:?}: {:?}", t.name, c.id, r.outcome, f));
            }
        }
    }
    bad
}

#[test]
fn the_client_cases_load_and_cover_section_9() {
    let cases = client::builtin();
    assert!(cases.len() >= 60, "{} client cases", cases.len());
    for s in ["9.1", "9.2", "9.3", "9.4"] {
        assert!(cases.iter().any(|c| c.section == s), "no case for {s}");
    }
    for c in &cases {
        assert!(!c.spec.is_empty(), "{} has no spec reference", c.id);
        for r in &c.spec {
            echowire_conformance::spec::resolve(r).unwrap_or_else(|e| panic!("{}: {e}", c.id));
        }
    }
}

#[test]
fn the_rust_clients_pass_every_case_under_every_split() {
    let report = run(
        &[BLOCKING.to_string(), ASYNC.to_string()],
        vec![
            Strategy::Whole,
            Strategy::Bytewise,
            Strategy::Random(2),
            Strategy::Delayed,
        ],
        client::builtin(),
    );
    let bad = failures(&report);
    assert!(
        bad.is_empty(),
        "{} failure(s):\n{}",
        bad.len(),
        bad.join("\n")
    );
    // The client reports are the server reports: valid JUnit and JSON.
    validate_junit::validate(&echowire_conformance::report::junit::render(&report, true));
    validate_json::validate(&echowire_conformance::report::json::render(&report));
}

#[test]
fn the_python_client_passes_every_case() {
    let report = run(
        &[format!("python3 {PY}/echowire_client.py")],
        vec![Strategy::Whole, Strategy::Bytewise],
        client::builtin(),
    );
    let bad = failures(&report);
    assert!(
        bad.is_empty(),
        "{} failure(s):\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn every_client_mutant_is_killed_by_its_case() {
    let out = std::process::Command::new("python3")
        .arg(format!("{PY}/client_mutants.py"))
        .arg("--list")
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(list.len() >= 10);
    let all = client::builtin();
    // Whole writes, then bytewise, then the first frame's Length field one octet at a time with
    // pauses (a client that reads quickly cannot coalesce those pieces): the first split that
    // fails the killer case kills the mutant. Four mutants at a time.
    let length_field = Cut::Set(Arc::from([1u64, 2, 3]));
    let splits = [
        Strategy::Whole,
        Strategy::Bytewise,
        Strategy::Exactly(length_field),
    ];
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                loop {
                    let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(m) = list.get(k) else { break };
                    let name = m["name"].as_str().unwrap();
                    let killer = m["killer"].as_str().unwrap();
                    let case = all
                        .iter()
                        .find(|c| c.id == killer)
                        .unwrap_or_else(|| panic!("mutant {name}: no case {killer}"))
                        .clone();
                    let mut outcome = (Outcome::Pass, String::new());
                    // Up to three rounds: on a busy machine the client may be descheduled past
                    // the runner's pauses, so pieces coalesce and a short read never happens
                    // (a round that kills is enough; a mutant the case cannot kill survives
                    // every round).
                    for split in splits.iter().cycle().take(3 * splits.len()) {
                        let opts = Options {
                            strategies: vec![split.clone()],
                            timeout: Duration::from_secs(2),
                            jobs: 1,
                            ..Options::default()
                        };
                        let command = format!("python3 {PY}/client_mutants.py {name}");
                        let report = client::run(&[command], vec![case.clone()], opts, &|_| {});
                        let o = report.targets[0].results[0].outcome;
                        if o != Outcome::Pass {
                            outcome = (o, split.to_string());
                            break;
                        }
                    }
                    results.lock().unwrap().push((k, name, killer, outcome));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|r| r.0);
    let mut matrix = Vec::new();
    let mut survivors = Vec::new();
    for (_, name, killer, (outcome, split)) in &results {
        matrix.push(format!("  {name:<32} {killer:<46} {outcome:?} ({split})"));
        if *outcome == Outcome::Pass {
            survivors.push(name.to_string());
        }
    }
    println!(
        "client mutant kill matrix ({} mutants):\n{}",
        list.len(),
        matrix.join("\n")
    );
    assert!(
        survivors.is_empty(),
        "surviving client mutants: {survivors:?}"
    );
}

#[test]
fn the_client_command_line_runs_lists_and_reports() {
    let bin = env!("CARGO_BIN_EXE_echowire-conformance");
    let out = std::process::Command::new(bin)
        .args(["client", "--exec", BLOCKING, "--list"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("9.3-unknown-id") && text.contains("client cases"),
        "{text}"
    );
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let out = std::process::Command::new(bin)
        .args(["client", "--exec", BLOCKING, "--case", "9.3-*", "--quiet"])
        .args([
            "--splits",
            "whole,bytewise",
            "--json",
            json.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    validate_json::validate(&v);
    // A driver that does not start is a failure, at once, not a hang.
    let out = std::process::Command::new(bin)
        .args([
            "client",
            "--exec",
            "/nonexistent/driver",
            "--case",
            "9.1-goodbye",
            "--quiet",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("the driver exited"));
}
