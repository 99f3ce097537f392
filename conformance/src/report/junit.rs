//! JUnit XML: one `<testsuite>` per target; every `<testcase>` has a `name` (the case ID and
//! title) and a `classname` (the spec section); MUST failures are `<failure message=...>`,
//! skipped and non-strict cases `<skipped message=...>` (so SHOULD misses do not fail CI unless
//! `--strict`, where they become failures).

use std::fmt::Write;

use super::{Counts, wire_lines};
use crate::Report;
use crate::verdict::Outcome;

fn esc(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect::<String>()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// Renders the report.
pub fn render(report: &Report, strict: bool) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"echowire-conformance\">\n",
    );
    for t in &report.targets {
        let c = Counts::of(report, t, None);
        let failures = c.fail + if strict { c.non_strict } else { 0 };
        let skipped = c.skipped + if strict { 0 } else { c.non_strict };
        let errors = usize::from(t.error.is_some() || t.died_after.is_some());
        let _ = writeln!(
            out,
            "  <testsuite name=\"echowire-conformance/{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{:.3}\">",
            esc(&t.name),
            c.total(),
            report.elapsed.as_secs_f64()
        );
        if let Some(e) = t.error.as_ref().or(t.died_after.as_ref()) {
            let _ = writeln!(
                out,
                "    <testcase classname=\"target\" name=\"target reachable and alive\"><error message=\"{}\"/></testcase>",
                esc(e)
            );
        }
        for (case, r) in report.cases.iter().zip(&t.results) {
            let _ = write!(
                out,
                "    <testcase classname=\"section {}\" name=\"{} {}\" time=\"{:.3}\"",
                esc(&case.section),
                esc(&case.id),
                esc(&case.title),
                r.millis as f64 / 1000.0
            );
            let detail = || {
                let mut d = format!("{}\nrequirement: {}\n", case.level, case.description);
                for f in &r.failures {
                    if let Some(x) = &f.failure {
                        let _ = writeln!(
                            d,
                            "split {} local {} step {}: expected {} observed {}",
                            f.cut, f.local_addr, x.step, x.expected, x.observed
                        );
                        for l in wire_lines(&f.wire, 200).iter().take(40) {
                            let _ = writeln!(d, "  {l}");
                        }
                    }
                }
                d
            };
            let first = r
                .failures
                .iter()
                .find_map(|f| f.failure.as_ref())
                .map(|f| format!("expected {}; observed {}", f.expected, f.observed))
                .unwrap_or_default();
            match (r.outcome, strict) {
                (Outcome::Fail, _) | (Outcome::NonStrict, true) => {
                    let _ = writeln!(
                        out,
                        ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>",
                        esc(&first),
                        r.outcome.label(),
                        esc(&detail())
                    );
                }
                (Outcome::NonStrict, false) => {
                    let _ = writeln!(
                        out,
                        ">\n      <skipped message=\"SHOULD not met (non-strict): {}\"/>\n    </testcase>",
                        esc(&first)
                    );
                }
                (Outcome::Skipped, _) => {
                    let _ = writeln!(
                        out,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        esc(r.reason.as_deref().unwrap_or("skipped"))
                    );
                }
                _ => {
                    let _ = writeln!(out, "/>");
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
