//! The terminal report: progress while running, results grouped by section, failure details,
//! summary. Colours only on a terminal and never when `NO_COLOR` is set (decided by the caller).

use std::fmt::Write;

use super::{Counts, sections, wire_lines};
use crate::Report;
use crate::case::Case;
use crate::verdict::Outcome;

fn paint(color: bool, outcome: Outcome, s: &str) -> String {
    if !color {
        return s.to_string();
    }
    let code = match outcome {
        Outcome::Pass => "32",
        Outcome::Fail => "31;1",
        Outcome::NonStrict => "33",
        Outcome::Info => "36",
        Outcome::Skipped => "90",
    };
    format!("\x1b[{code}m{s}\x1b[0m")
}

/// One progress line.
pub fn progress_line(
    target: &str,
    n: usize,
    total: usize,
    case: &Case,
    r: &crate::CaseResult,
    color: bool,
) -> String {
    let label = paint(color, r.outcome, &format!("{:<10}", r.outcome.label()));
    format!(
        "[{n:>3}/{total}] {target} {label} {} ({} runs, {} ms)",
        case.id, r.runs, r.millis
    )
}

/// The full report.
pub fn render(report: &Report, color: bool) -> String {
    let mut out = String::new();
    for t in &report.targets {
        let _ = writeln!(out, "\n== Target {} ({})", t.name, t.address);
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
            let _ = writeln!(
                out,
                "\n   §{s:<6} {:>3} pass {:>3} fail {:>3} non-strict {:>3} info {:>3} skipped",
                c.pass, c.fail, c.non_strict, c.info, c.skipped
            );
            for (case, r) in report
                .cases
                .iter()
                .zip(&t.results)
                .filter(|(c, _)| c.section == s)
            {
                let label = paint(color, r.outcome, &format!("{:<10}", r.outcome.label()));
                let _ = writeln!(
                    out,
                    "     {label} {:<6} {:<44} {}",
                    case.level.to_string(),
                    case.id,
                    case.title
                );
            }
        }
        let mut first = true;
        for (case, r) in report.cases.iter().zip(&t.results) {
            if !matches!(r.outcome, Outcome::Fail | Outcome::NonStrict) {
                continue;
            }
            if first {
                let _ = writeln!(out, "\n   Failures ({}):", t.name);
                first = false;
            }
            let _ = writeln!(
                out,
                "\n   {} {} [{}] {}",
                paint(color, r.outcome, r.outcome.label()),
                case.id,
                case.level,
                case.title
            );
            let _ = writeln!(out, "     requirement: {}", case.description);
            for f in &r.failures {
                let Some(fail) = &f.failure else { continue };
                let _ = writeln!(
                    out,
                    "     split: {}   local address: {}",
                    f.cut, f.local_addr
                );
                let _ = writeln!(out, "     step {}: expected {}", fail.step, fail.expected);
                let _ = writeln!(out, "             observed {}", fail.observed);
                let _ = writeln!(out, "     wire log:");
                for l in wire_lines(&f.wire, 160).iter().take(60) {
                    let _ = writeln!(out, "       {l}");
                }
            }
        }
        if let Some(d) = &t.died_after {
            let _ = writeln!(
                out,
                "\n   The target DIED after case {d}: later cases were not run."
            );
        }
    }
    if report.targets.len() > 1 {
        let _ = writeln!(out, "\n== Comparison (case × target)");
        let _ = write!(out, "   {:<44}", "case");
        for t in &report.targets {
            let _ = write!(out, " {:<20}", t.name);
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
        let _ = writeln!(
            out,
            "   {}: {} cases: {} passed, {} failed, {} non-strict, {} info, {} skipped{}",
            t.name,
            c.total(),
            c.pass,
            c.fail,
            c.non_strict,
            c.info,
            c.skipped,
            t.error
                .as_ref()
                .map(|e| format!(" — ERROR: {e}"))
                .unwrap_or_default()
        );
    }
    out
}
