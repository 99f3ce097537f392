//! The terminal report: results grouped by section, each failure with the spec's sentence, what
//! was expected and observed, the decoded wire log, the smallest failing split and a replay
//! command; then the summary. Colours only when the caller says so (a terminal, and `NO_COLOR`
//! unset or empty).

use std::fmt::Write;

use super::{Counts, failure_text, sections};
use crate::Report;
use crate::verdict::Outcome;

/// `s` in the outcome's colour.
pub fn paint(color: bool, outcome: Outcome, s: &str) -> String {
    if !color {
        return s.to_string();
    }
    let code = match outcome {
        Outcome::Pass => "32",
        Outcome::Fail | Outcome::UnexpectedPass => "31;1",
        Outcome::NonStrict => "33",
        Outcome::Info => "36",
        Outcome::Skipped => "90",
        Outcome::ExpectedFail => "35",
    };
    format!("\x1b[{code}m{s}\x1b[0m")
}

/// Whether a result is shown with its details.
pub fn is_problem(o: Outcome) -> bool {
    matches!(
        o,
        Outcome::Fail | Outcome::NonStrict | Outcome::UnexpectedPass
    )
}

/// The full report.
pub fn render(report: &Report, color: bool) -> String {
    let mut out = String::new();
    for t in &report.targets {
        let _ = writeln!(out, "\n== Target {} ({})", t.name, t.address);
        if let Some(command) = super::command_of(report, t) {
            let _ = writeln!(out, "   command: {command}");
        }
        if let Some(e) = &t.error {
            let _ = writeln!(out, "   ERROR: {e}");
            continue;
        }
        if let Some(w) = &t.warning {
            let _ = writeln!(out, "   WARNING: {w}");
        }
        if let Some(i) = &t.info {
            let _ = writeln!(
                out,
                "   offers version {} (from 1..=255), capabilities {:#x}, max_frame_size {}, agent {:?}",
                i.version, i.capabilities, i.max_frame_size, i.agent
            );
        }
        for s in sections(report) {
            let c = Counts::of(report, t, Some(&s));
            let _ = write!(
                out,
                "\n   §{s:<6} {:>3} pass {:>3} fail {:>3} non-strict {:>3} info {:>3} skipped",
                c.pass, c.fail, c.non_strict, c.info, c.skipped
            );
            if c.expected_fail + c.unexpected_pass > 0 {
                let _ = write!(
                    out,
                    " {:>3} xfail {:>3} xpass",
                    c.expected_fail, c.unexpected_pass
                );
            }
            out.push('\n');
            for (case, r) in report
                .cases
                .iter()
                .zip(&t.results)
                .filter(|(c, _)| c.section == s)
            {
                let label = paint(color, r.outcome, &format!("{:<10}", r.outcome.label()));
                // A skip always says why (what the target lacks, the option that would run it).
                let why = match (&r.outcome, &r.reason) {
                    (Outcome::Skipped, Some(reason)) => {
                        paint(color, Outcome::Skipped, &format!(" — skipped: {reason}"))
                    }
                    _ => String::new(),
                };
                let _ = writeln!(
                    out,
                    "     {label} {:<6} {:<44} {}{why}",
                    case.level.to_string(),
                    case.id,
                    case.title
                );
            }
        }
        let problems: Vec<_> = report
            .cases
            .iter()
            .zip(&t.results)
            .filter(|(_, r)| is_problem(r.outcome))
            .collect();
        if !problems.is_empty() {
            let _ = writeln!(out, "\n   Failures ({}, {}):", t.name, problems.len());
        }
        for (case, r) in problems {
            let _ = writeln!(
                out,
                "\n   {} {} [{}] {}",
                paint(color, r.outcome, r.outcome.label()),
                case.id,
                case.level,
                case.title
            );
            for l in failure_text(report, t, case, r).lines() {
                let _ = writeln!(out, "     {l}");
            }
        }
        let flaky: Vec<_> = report
            .cases
            .iter()
            .zip(&t.results)
            .filter_map(|(c, r)| r.retried.as_ref().filter(|rt| rt.passed).map(|rt| (c, rt)))
            .collect();
        if !flaky.is_empty() {
            let _ = writeln!(
                out,
                "\n   Flaky ({}, {}): failed, then passed when run again alone",
                t.name,
                flaky.len()
            );
            for (case, rt) in flaky {
                let _ = writeln!(out, "     {} {}", case.id, super::retried_text(rt));
            }
        }
        if let Some(d) = &t.died_after {
            let _ = writeln!(
                out,
                "\n   The target DIED after case {d}: later cases were not run{}.",
                t.died_reason
                    .as_ref()
                    .map(|r| format!(" (liveness probe: {r})"))
                    .unwrap_or_default()
            );
        }
        if let Some(tail) = &t.log_tail
            && report
                .targets
                .iter()
                .any(|t| t.results.iter().any(|r| is_problem(r.outcome)))
        {
            let _ = writeln!(out, "\n   The target's last output:");
            for l in tail.lines() {
                let _ = writeln!(out, "     | {l}");
            }
        }
    }
    if report.targets.len() > 1 {
        let _ = writeln!(out, "\n== Comparison (case × target)");
        let _ = write!(out, "   {:<44}", "case");
        for t in &report.targets {
            let _ = write!(out, " {:<20}", crate::verdict::cut(&t.name, 20));
        }
        let _ = writeln!(out);
        for (i, case) in report.cases.iter().enumerate() {
            let _ = write!(out, "   {:<44}", case.id);
            for t in &report.targets {
                let o = t.results.get(i).map_or(Outcome::Skipped, |r| r.outcome);
                let _ = write!(out, " {}", paint(color, o, &format!("{:<20}", o.label())));
            }
            let _ = writeln!(out);
        }
    }
    let _ = writeln!(
        out,
        "\n== Summary ({:.1} s, splits: {})",
        report.elapsed.as_secs_f64(),
        report
            .options
            .strategies
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    for t in &report.targets {
        let c = Counts::of(report, t, None);
        let _ = write!(
            out,
            "   {}: {} cases: {} passed, {} failed, {} non-strict, {} info, {} skipped",
            t.name,
            c.total(),
            c.pass,
            c.fail,
            c.non_strict,
            c.info,
            c.skipped,
        );
        if c.expected_fail + c.unexpected_pass > 0 {
            let _ = write!(
                out,
                ", {} expected failures, {} listed but passing",
                c.expected_fail, c.unexpected_pass
            );
        }
        if let Some(e) = &t.error {
            let _ = write!(out, " — ERROR: {e}");
        }
        out.push('\n');
    }
    if let Some(why) = &report.incomplete {
        let not_run = report
            .targets
            .iter()
            .flat_map(|t| &t.results)
            .filter(|r| {
                r.reason
                    .as_deref()
                    .is_some_and(|x| x.starts_with(crate::NOT_RUN))
            })
            .count();
        let _ = writeln!(
            out,
            "   INCOMPLETE: {why}; {not_run} case run(s) not started (reported as skipped)"
        );
    }
    out
}
