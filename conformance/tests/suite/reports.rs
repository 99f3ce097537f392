//! What the runner shows when a server fails: reports against deliberately broken servers are
//! valid (JUnit XSD, JSON schema), consistent and say what happened; expected-failure lists,
//! shrinking and progress behave as documented.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use echowire_conformance::split::Strategy;
use echowire_conformance::target::TargetSpec;
use echowire_conformance::verdict::Outcome;
use echowire_conformance::{Options, case, report};

use crate::pyserver;
use echowire_test_support::{json as validate_json, junit as validate_junit};

/// A server that echoes every byte back and never speaks Echowire: it fails every case it is
/// forced through (shared with the other parts of the suite).
pub(crate) fn byte_echo_server() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn a_byte_echo_server_gets_valid_reports_that_say_what_arrived() {
    let addr = byte_echo_server();
    let opts = Options {
        targets: vec![TargetSpec::Tcp(addr.to_string())],
        strategies: vec![Strategy::Whole],
        timeout: Duration::from_millis(500),
        jobs: 1,
        // Run the cases although the probe sees no Echowire server (the next test checks the
        // stop without it): the reports must say what arrived.
        force: true,
        ..Options::default()
    };
    let cases = echowire_conformance::select(case::builtin(), &[], &["3.2".into()], &[]);
    let n = cases.len();
    let report = echowire_conformance::run(cases, opts, &|_| {});
    let t = &report.targets[0];
    // The handshake probe failed (a warning, not a crash) and the target died after a case.
    assert!(
        t.warning
            .as_deref()
            .unwrap_or("")
            .contains("handshake probe failed")
    );
    assert!(t.died_after.is_some(), "{:?}", t.died_after);
    assert!(t.died_reason.is_some());
    assert!(!report.passed(false));

    let text = report::terminal::render(&report, false);
    // The failure states what did arrive, decoded: the echoed preface read as a Length.
    assert!(text.contains("what arrived is"), "{text}");
    assert!(text.contains("of its"), "{text}");
    assert!(text.contains("spec: §"), "{text}");
    assert!(text.contains("The target DIED after case"), "{text}");

    let junit = report::junit::render(&report, false);
    validate_junit::validate(&junit);
    // Every case plus one error test case for the death, with its reason.
    assert_eq!(junit.matches("<testcase ").count(), n + 1);
    assert!(junit.contains("liveness probe"), "{junit}");
    validate_json::validate(&report::json::render(&report));

    let html = report::html::render(&report);
    assert!(html.contains("WARNING: handshake probe failed"));
    assert!(html.contains("<details open"));
    assert!(html.contains("died after"));
}

#[test]
fn an_unreachable_target_is_one_error_in_every_report() {
    let free = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let opts = Options {
        targets: vec![TargetSpec::Tcp(free.to_string())],
        strategies: vec![Strategy::Whole],
        ..Options::default()
    };
    let report = echowire_conformance::run(case::builtin(), opts, &|_| {});
    let junit = report::junit::render(&report, false);
    validate_junit::validate(&junit);
    assert_eq!(junit.matches("<testcase ").count(), 1, "{junit}");
    assert!(junit.contains("cannot connect"), "{junit}");
    validate_json::validate(&report::json::render(&report));
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_echowire-conformance"))
}

#[test]
fn expected_failures_excuse_listed_failures_and_catch_listed_passes() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("failing.txt");
    let template = pyserver::template("mutants.py limit-off-by-one");
    let run = |cases: &[&str], listed: &str| {
        std::fs::write(&list, listed).unwrap();
        let mut cmd = bin();
        cmd.args(["--exec", &template, "--splits", "whole", "--quiet"])
            .args(["--expected-failures", list.to_str().unwrap()]);
        for c in cases {
            cmd.args(["--case", c]);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    // The mutant fails 2.2-length-at-limit: listed, the run passes (XFAIL).
    let (code, text) = run(&["2.2-length-at-limit"], "# known\n2.2-length-at-limit\n");
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("XFAIL"), "{text}");
    // A listed case that passes fails the run and names the line to remove.
    let (code, text) = run(
        &["2.2-length-at-limit", "2.2-echo-1"],
        "2.2-length-at-limit\n2.2-echo-1  # fixed since\n",
    );
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("XPASS") && text.contains(":2 lists it"),
        "{text}"
    );
    // An entry that matches no case is a usage error.
    let (code, text) = run(&["2.2-echo-1"], "2.2-no-such-case\n");
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("matches no case"), "{text}");
}

#[test]
fn a_split_dependent_failure_is_shrunk_to_one_cut_with_a_replay_command() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let template = pyserver::template("mutants.py short-read-at-frame-start-dropped");
    let out = bin()
        .args([
            "--exec",
            &template,
            "--case",
            "2.2-echo-1",
            "--timeout",
            "2s",
        ])
        .args(["--splits", "whole,random:2,delayed"])
        .args(["--json", json.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    // Progress goes to standard error only.
    assert!(stderr.contains("[progress]"), "{stderr}");
    assert!(!stdout.contains("[progress]"), "{stdout}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    validate_json::validate(&v);
    let r = &v["cases"][0]["results"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .clone();
    assert_eq!(r["outcome"], "fail");
    let s = &r["shrunk"];
    let cuts = s["cuts"].as_array().unwrap();
    assert!(
        !cuts.is_empty() && cuts.len() < s["cuts_before"].as_u64().unwrap() as usize,
        "{s}"
    );
    let words = s["words"].as_str().unwrap();
    assert!(words.contains("inside the Length field"), "{words}");
    assert!(s["replay"].as_str().unwrap().contains("--cut-at"), "{s}");
    assert!(stdout.contains("smallest failing split"), "{stdout}");
    // The replay command reproduces the failure under exactly that split.
    let replay: Vec<String> = s["replay"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let out = bin()
        .args([
            "--exec",
            &template,
            "--timeout",
            "2s",
            "--quiet",
            "--no-shrink",
        ])
        .args(&replay)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn listed_outcomes_count_in_the_run_verdict() {
    let opts = Options {
        strategies: vec![Strategy::Whole],
        ..Options::default()
    };
    let cases = echowire_conformance::select(case::builtin(), &["3.1-http-get".into()], &[], &[]);
    let all = case::builtin();
    let mut report = echowire_conformance::run(cases, opts, &|_| {});
    assert!(report.passed(true));
    let list =
        echowire_conformance::expected::ExpectedFailures::parse("list", "3.1-http-get\n", &all)
            .unwrap();
    list.apply(&mut report);
    assert_eq!(
        report.targets[0].results[0].outcome,
        Outcome::UnexpectedPass
    );
    assert!(!report.passed(false));
    validate_junit::validate(&report::junit::render(&report, false));
}
