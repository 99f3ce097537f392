//! JUnit XML, written with `quick-junit` (the counts are derived from the test cases, so they
//! always agree). One `<testsuite>` per target. Every `<testcase>`:
//!
//! * `classname` is `echowire.section-2-2`: CI systems split a classname at its last dot into
//!   package and class, so the section's own dots are written as dashes;
//! * `name` is the case ID and title;
//! * MUST failures, SHOULD failures under `--strict`, and listed cases that pass (`XPASS`) are
//!   `<failure>`; a target that cannot be reached or dies is one `<error>` test case; skipped,
//!   SHOULD (non-strict) and expected failures are `<skipped>`; every one carries its reason in
//!   `message`, and failures the whole text (spec sentence, decoded wire log, replay command).

use std::time::Duration;

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};

use super::{failure_text, retried_text, summary};
use crate::Report;
use crate::verdict::Outcome;

/// The classname of a section (`echowire.section-2-2`).
pub fn classname(section: &str) -> String {
    format!("echowire.section-{}", section.replace('.', "-"))
}

/// XML 1.0 cannot carry most control characters, even escaped.
pub(crate) fn clean(s: &str) -> String {
    s.chars()
        .filter(|&c| {
            matches!(c, '\t' | '\n' | '\r')
                || (c >= ' ' && c != '\u{fffe}' && c != '\u{ffff}' && c != '\u{7f}')
        })
        .collect()
}

pub(crate) fn non_success(
    kind: NonSuccessKind,
    message: &str,
    ty: &str,
    text: String,
) -> TestCaseStatus {
    let mut st = TestCaseStatus::non_success(kind);
    st.set_message(clean(message))
        .set_type(ty)
        .set_description(clean(&text));
    st
}

fn skipped(message: &str) -> TestCaseStatus {
    let mut st = TestCaseStatus::skipped();
    st.set_message(clean(message));
    st
}

/// Renders the report.
pub fn render(report: &Report, strict: bool) -> String {
    let mut out = quick_junit::Report::new("echowire-conformance");
    out.set_time(report.elapsed);
    for t in &report.targets {
        let mut suite = TestSuite::new(clean(&format!("echowire-conformance {}", t.name)));
        suite.set_time(report.elapsed);
        if let Some(why) = &report.incomplete {
            let text = format!(
                "the run stopped before every case ran ({why}); the cases not started are skipped"
            );
            let mut tc = TestCase::new(
                "run complete",
                non_success(NonSuccessKind::Error, &text, "INCOMPLETE", text.clone()),
            );
            tc.set_classname("echowire.run");
            suite.add_test_case(tc);
        }
        if let Some(e) = &t.error {
            let mut tc = TestCase::new(
                "target reachable",
                non_success(NonSuccessKind::Error, e, "UNREACHABLE", e.clone()),
            );
            tc.set_classname("echowire.target");
            suite.add_test_case(tc);
        }
        if let Some(d) = &t.died_after {
            let why = format!(
                "the target stopped serving after case {d}: the liveness probe (a new connection, handshake and one ECHO) failed: {}",
                t.died_reason.as_deref().unwrap_or("no reason recorded")
            );
            let mut tc = TestCase::new(
                "target alive after every case",
                non_success(NonSuccessKind::Error, &why, "DIED", why.clone()),
            );
            tc.set_classname("echowire.target");
            suite.add_test_case(tc);
        }
        for (case, r) in report.cases.iter().zip(&t.results) {
            let text = || failure_text(report, t, case, r);
            let status = match (r.outcome, strict) {
                (Outcome::Fail, _) | (Outcome::NonStrict, true) | (Outcome::UnexpectedPass, _) => {
                    non_success(
                        NonSuccessKind::Failure,
                        &summary(r),
                        r.outcome.label(),
                        text(),
                    )
                }
                (Outcome::NonStrict, false) => {
                    skipped(&format!("SHOULD not met (non-strict): {}", summary(r)))
                }
                (Outcome::ExpectedFail, _) => skipped(&format!(
                    "{}: {}",
                    r.reason.as_deref().unwrap_or("expected failure"),
                    summary(r)
                )),
                (Outcome::Skipped, _) => skipped(r.reason.as_deref().unwrap_or("skipped")),
                (Outcome::Pass | Outcome::Info, _) => TestCaseStatus::success(),
            };
            let mut tc = TestCase::new(clean(&format!("{} {}", case.id, case.title)), status);
            tc.set_classname(classname(&case.section))
                .set_time(Duration::from_millis(r.millis));
            if let Some(rt) = &r.retried {
                tc.set_system_out(clean(&retried_text(rt)));
            }
            suite.add_test_case(tc);
        }
        out.add_test_suite(suite);
    }
    out.to_string().unwrap_or_else(|e| {
        // Only an I/O error of the in-memory writer could get here; say so in valid JUnit.
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"echowire-conformance\" tests=\"1\" failures=\"0\" errors=\"1\"><testsuite name=\"echowire-conformance\" tests=\"1\" failures=\"0\" errors=\"1\"><testcase classname=\"echowire.report\" name=\"report written\"><error message=\"cannot write the JUnit report: {}\"/></testcase></testsuite></testsuites>\n",
            clean(&e.to_string()).replace(['<', '>', '&', '"'], "_")
        )
    })
}
