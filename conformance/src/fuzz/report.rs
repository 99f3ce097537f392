//! A campaign's report: a finding in words (the divergence, the spec sentence, the shrunk
//! session's wire log and how to replay it), the campaign's summary with its coverage, and JUnit
//! XML (one test case per target and per finding).

use std::fmt::Write as _;

use quick_junit::{NonSuccessKind, TestCase, TestSuite};

use super::{Finding, FuzzReport};
use crate::report::junit::{clean, non_success};

/// A finding in words.
pub fn finding_text(f: &Finding) -> String {
    let d = &f.divergence;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "FINDING on {} (session {}, profile {}, split {}, {} steps shrunk to {}; failed {} of {} replays)",
        f.target, f.session, f.profile, f.cut, f.steps.0, f.steps.1, f.confirmed.0, f.confirmed.1
    );
    let at = d.at_ms.map(|ms| format!(" at {ms} ms")).unwrap_or_default();
    let _ = writeln!(s, "  observed{at}: {}", d.observed);
    let _ = writeln!(s, "  the model allowed: {}", d.expected);
    let _ = writeln!(
        s,
        "  after {} octets of the client's stream",
        d.input_offset
    );
    let _ = writeln!(s, "  rule: {}", f.sentence);
    for line in crate::report::wire_text(&crate::wire::decode(&f.run.wire)) {
        let _ = writeln!(s, "    {line}");
    }
    match &f.case_file {
        Some(p) if !p.starts_with('(') => {
            let _ = writeln!(
                s,
                "  written to {p}; replay: echowire-conformance <target> --case-file {} --splits {}",
                crate::report::shell_quote(p),
                if f.cut == "whole" {
                    "whole"
                } else {
                    "whole,random:3"
                }
            );
        }
        Some(p) => {
            let _ = writeln!(s, "  {p}");
        }
        None => {}
    }
    s
}

/// The campaign's summary.
pub fn text(r: &FuzzReport) -> String {
    let mut s = String::new();
    let secs = r.elapsed.as_secs_f64();
    let _ = writeln!(
        s,
        "echowire-conformance fuzz: {} — seed {}, {} sessions in {secs:.0} s ({:.1}/s), {} passed, {} inconclusive, {} unconfirmed, {} finding(s)",
        r.targets.join(" vs "),
        r.seed,
        r.sessions,
        r.sessions as f64 / secs.max(0.001),
        r.passed,
        r.inconclusive,
        r.unconfirmed,
        r.findings.len()
    );
    if !r.profiles.is_empty() {
        let per: Vec<String> = r.profiles.iter().map(|(p, n)| format!("{p} {n}")).collect();
        let _ = writeln!(
            s,
            "  profiles: {}; model states visited: {}",
            per.join(", "),
            r.oracle_nodes
        );
    }
    let reached = r
        .cells
        .keys()
        .map(|k| k.rsplit_once(" / ").map_or(k.as_str(), |(a, _)| a))
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let _ = writeln!(
        s,
        "  coverage: {} (state, type, outcome) cells; {} (state, type) pairs reached, {} not reached{}",
        r.cells.len(),
        reached,
        r.unreached.len(),
        if r.unreached.is_empty() {
            String::new()
        } else {
            format!(": {}", r.unreached.join(", "))
        }
    );
    for f in &r.findings {
        let _ = writeln!(
            s,
            "  FINDING session {} ({}): {} — {}",
            f.session,
            f.target,
            f.divergence.observed,
            f.case_file.as_deref().unwrap_or("not written")
        );
    }
    if let Some(e) = &r.error {
        let _ = writeln!(s, "  ERROR: {e}");
    }
    s
}

/// JUnit XML: per target a suite with the campaign as one passing test case, and each finding
/// as a failing one (its whole text in the description).
pub fn junit(r: &FuzzReport) -> String {
    let mut out = quick_junit::Report::new("echowire-conformance-fuzz");
    out.set_time(r.elapsed);
    for t in &r.targets {
        let mut suite = TestSuite::new(clean(&format!("echowire-conformance fuzz {t}")));
        suite.set_time(r.elapsed);
        let campaign = match &r.error {
            Some(e) => non_success(NonSuccessKind::Error, e, "UNREACHABLE", e.clone()),
            None => quick_junit::TestCaseStatus::success(),
        };
        let mut tc = TestCase::new(
            clean(&format!(
                "campaign seed {}: {} sessions, {} passed, {} inconclusive",
                r.seed, r.sessions, r.passed, r.inconclusive
            )),
            campaign,
        );
        tc.set_classname("echowire.fuzz");
        suite.add_test_case(tc);
        for f in r.findings.iter().filter(|f| &f.target == t) {
            let section = f.divergence.rule.spec().section;
            let mut tc = TestCase::new(
                clean(&format!("session {}: {}", f.session, f.divergence.observed)),
                non_success(
                    NonSuccessKind::Failure,
                    &f.sentence,
                    "DIVERGENCE",
                    finding_text(f),
                ),
            );
            tc.set_classname(crate::report::junit::classname(&section));
            suite.add_test_case(tc);
        }
        out.add_test_suite(suite);
    }
    out.to_string().unwrap_or_default()
}
