//! The whole suite against the reference server, every model: all MUST and SHOULD cases pass.
//! Plus the runner's own contracts: case files, reports, exit codes, unreachable targets.

use std::process::Command;
use std::time::Duration;

use echowire_conformance::split::Strategy;
use echowire_conformance::target::TargetSpec;
use echowire_conformance::verdict::Outcome;
use echowire_conformance::{Options, Report, case};
use echowire_server::Model;

use echowire_test_support::{json as validate_json, junit as validate_junit};

fn run(model: Model, strategies: Vec<Strategy>, jobs: usize) -> Report {
    run_selected(model, strategies, jobs, &[])
}

/// Runs the cases `select` names (IDs or globs; all if empty).
fn run_selected(model: Model, strategies: Vec<Strategy>, jobs: usize, select: &[&str]) -> Report {
    let select: Vec<String> = select.iter().map(|s| s.to_string()).collect();
    let cases = echowire_conformance::select(case::builtin(), &select, &[], &[]);
    let opts = Options {
        targets: vec![TargetSpec::Embedded(model)],
        strategies,
        jobs,
        timeout: Duration::from_secs(15),
        // A case that fails is run again alone: on a loaded machine a HELLO can reach the
        // embedded server after its 2 s handshake timeout (a timing hiccup, not a verdict);
        // a real failure fails every time and is reported as before.
        retries: 2,
        ..Options::default()
    };
    echowire_conformance::run(cases, opts, &|_| {})
}

/// Prints the cases that passed only when run again alone.
fn print_flaky(report: &Report) {
    for t in &report.targets {
        for (c, r) in report.cases.iter().zip(&t.results) {
            if let Some(rt) = r.retried.as_ref().filter(|rt| rt.passed) {
                println!(
                    "{}: {} {}",
                    t.name,
                    c.id,
                    echowire_conformance::report::retried_text(rt)
                );
            }
        }
    }
}

fn assert_all_pass(report: &Report) {
    print_flaky(report);
    let t = &report.targets[0];
    assert!(t.error.is_none(), "{:?}", t.error);
    assert!(t.died_after.is_none(), "died after {:?}", t.died_after);
    let bad: Vec<String> = report
        .cases
        .iter()
        .zip(&t.results)
        .filter(|(_, r)| matches!(r.outcome, Outcome::Fail | Outcome::NonStrict))
        .map(|(c, r)| {
            let f = r
                .failures
                .first()
                .and_then(|f| f.failure.clone().map(|x| (f.cut.clone(), x)));
            format!("{} {:?}: {:?}", c.id, r.outcome, f)
        })
        .collect();
    assert!(
        bad.is_empty(),
        "{} case(s) failed against {}:\n{}",
        bad.len(),
        t.name,
        bad.join("\n")
    );
    assert!(report.passed(true));
    // The reference server offers everything: nothing is skipped.
    assert!(t.results.iter().all(|r| r.outcome != Outcome::Skipped));
}

// What runs here is what `cargo test` can afford on a small machine: the reactor (the model a
// deployment runs) under the default splits, and the framing cases cut at every offset. CI's
// exhaustive step (`.ci/exhaustive`) runs the release runner over every case cut at every
// offset, the threaded and blocking models under several splits, and the server started through
// `--exec` over TCP and a Unix socket; it fails CI if any case fails or is skipped there. The
// three models' own behaviour (shutdown, limits, backpressure) is tested in server/tests.

#[test]
fn reactor_passes_every_case_under_the_default_splits() {
    let report = run(
        Model::Reactor,
        echowire_conformance::default_strategies(),
        4,
    );
    assert_all_pass(&report);
    // The reports of a passing run of the whole suite: valid, and the HTML compact.
    let html = echowire_conformance::report::html::render(&report);
    println!("HTML report of a passing run: {} bytes", html.len());
    assert!(html.len() < 200 * 1024, "{} bytes", html.len());
    validate_junit::validate(&echowire_conformance::report::junit::render(&report, true));
    validate_json::validate(&echowire_conformance::report::json::render(&report));
}

#[test]
fn reactor_passes_the_framing_cases_cut_at_every_offset() {
    // Framing, preface, flags and request IDs: where a cut inside a Length, a header or the
    // preface is most likely to expose a reader that assumes whole frames.
    let report = run_selected(
        Model::Reactor,
        vec![Strategy::Boundaries],
        4,
        &["2.2-*", "2.4-*", "2.5-*", "3.1-*"],
    );
    assert!(report.cases.len() >= 60, "{} cases", report.cases.len());
    assert_all_pass(&report);
}

#[test]
fn case_files_are_valid_and_cover_the_spec() {
    let cases = case::builtin();
    assert!(cases.len() >= 120, "{} cases", cases.len());
    let sections: std::collections::BTreeSet<&str> = cases
        .iter()
        .map(|c| c.section.split('.').next().unwrap())
        .collect();
    for s in ["2", "3", "4", "5", "6", "8"] {
        assert!(sections.contains(s), "no case for section {s}");
    }
    // IDs start with their section and are unique (checked by the loader); every case has a level,
    // a title and a description.
    for c in &cases {
        assert!(!c.title.is_empty() && !c.description.is_empty(), "{}", c.id);
        assert!(!c.steps.is_empty(), "{}", c.id);
    }
    // The loader rejects duplicate IDs and IDs that do not start with their section.
    let dup = r#"{"format":"echowire-conformance","format_version":1,"cases":[
        {"id":"2.2-a","section":"2.2","level":"MUST","title":"t","description":"d","steps":[]},
        {"id":"2.2-a","section":"2.2","level":"MUST","title":"t","description":"d","steps":[]}]}"#;
    assert!(
        case::parse(&[("x.json", dup)])
            .unwrap_err()
            .contains("duplicate")
    );
    let bad = r#"{"format":"echowire-conformance","format_version":1,"cases":[
        {"id":"9.9-a","section":"2.2","level":"MUST","title":"t","description":"d","steps":[]}]}"#;
    assert!(case::parse(&[("x.json", bad)]).is_err());
    // Selecting by glob, section and exclusion never renumbers anything: IDs are names.
    let some = echowire_conformance::select(
        cases.clone(),
        &["3.1-*".into()],
        &[],
        &["3.1-http-*".into()],
    );
    assert!(
        some.iter()
            .all(|c| c.id.starts_with("3.1-") && !c.id.starts_with("3.1-http-"))
    );
    let sec = echowire_conformance::select(cases, &[], &["3".into()], &[]);
    assert!(sec.iter().all(|c| c.section.starts_with("3.")));
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_echowire-conformance"))
}

#[test]
fn cli_reports_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let (json, junit, html) = (
        dir.path().join("r.json"),
        dir.path().join("r.xml"),
        dir.path().join("r.html"),
    );
    let out = bin()
        .args([
            "run",
            "--section",
            "3.1",
            "--splits",
            "whole,bytewise",
            "--quiet",
        ])
        .args([
            "--json",
            json.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("== Summary"), "{stdout}");
    assert!(
        !stdout.contains('\x1b'),
        "no colours when NO_COLOR is set / not a terminal"
    );
    // JSON: its schema.
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["schema_version"], 2);
    validate_json::validate(&v);
    assert!(v["cases"].as_array().unwrap().len() >= 10);
    assert_eq!(v["targets"][0]["summary"]["fail"], 0);
    // JUnit: the XSD, consistent counts, classnames CI systems split correctly.
    let x = std::fs::read_to_string(&junit).unwrap();
    validate_junit::validate(&x);
    assert!(x.contains("classname=\"echowire.section-3-1\""), "{x}");
    // HTML: one self-contained file.
    let h = std::fs::read_to_string(&html).unwrap();
    assert!(h.starts_with("<!DOCTYPE html>") && h.contains("</html>"));
    assert!(
        !h.contains("<script") && !h.contains("src=") && !h.contains("<link"),
        "no external assets"
    );

    // An unreachable target is one clear error, not a wall of failures.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = bin()
        .args([
            "--target",
            &free.to_string(),
            "--quiet",
            "--splits",
            "whole",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("cannot connect"), "{text}");
    assert!(!text.contains("FAIL "), "{text}");

    // Bad usage: exit 2.
    for args in [
        &["--splits", "sideways"][..],
        &["--case", "no-such-case"][..],
        &["--target", "nowhere"][..],
    ] {
        let out = bin().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    // list
    let out = bin().arg("list").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("3.1-http-get") && text.contains("MUST"));
}

#[test]
fn several_targets_one_comparison_report() {
    let opts = Options {
        targets: vec![
            TargetSpec::Embedded(Model::Reactor),
            TargetSpec::Embedded(Model::Threaded),
        ],
        strategies: vec![Strategy::Whole],
        ..Options::default()
    };
    let cases = echowire_conformance::select(case::builtin(), &[], &["4".into()], &[]);
    let report = echowire_conformance::run(cases, opts, &|_| {});
    assert_eq!(report.targets.len(), 2);
    let text = echowire_conformance::report::terminal::render(&report, false);
    assert!(text.contains("== Comparison (case × target)"), "{text}");
    assert!(report.passed(true));
}

/// Spec Appendix C names, for every point document 1.1 resolved, the cases that pin it: every
/// case ID it names must exist (a renamed or removed case fails here, not silently in the text),
/// and every case's requirements must be ones the runner knows.
#[test]
fn appendix_c_names_only_existing_cases_and_requirements_are_known() {
    let cases = case::builtin();
    let clients = echowire_conformance::client::builtin();
    // Appendices C and D name server cases and client cases.
    let ids: std::collections::HashSet<&str> = cases
        .iter()
        .map(|c| c.id.as_str())
        .chain(clients.iter().map(|c| c.id.as_str()))
        .collect();
    let spec =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/PROTOCOL.md")).unwrap();
    let appendix = &spec[spec.find("## Appendix C").expect("Appendix C exists")..];
    let mut named = 0;
    for word in appendix.split(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == '|') {
        let w = word.trim_matches(|c: char| c == '.' || c == '(' || c == ')');
        let looks_like_id = w.split_once('-').is_some_and(|(sec, rest)| {
            !rest.is_empty()
                && sec.contains('.')
                && sec
                    .split('.')
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        });
        if looks_like_id {
            assert!(
                ids.contains(w),
                "Appendix C or D names {w}, which is not a case"
            );
            named += 1;
        }
    }
    assert!(named >= 60, "Appendix C names only {named} cases");
    // An unknown requirement is a load error (requirements are typed).
    let unknown = r#"{"format":"echowire-conformance","format_version":1,"cases":[
        {"id":"2.2-a","section":"2.2","level":"MUST","title":"t","description":"d","steps":[],
         "requires":["v3"]}]}"#;
    let e = case::parse(&[("x.json", unknown)]).unwrap_err();
    assert!(e.contains("v3"), "{e}");
}
