//! One self-contained HTML file (inline CSS, no scripts or external assets): a summary per target,
//! the case × target matrix grouped by section, and per-case detail like Autobahn's reports.

use std::fmt::Write;

use super::{Counts, sections, wire_lines};
use crate::Report;
use crate::verdict::Outcome;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn class(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "pass",
        Outcome::Fail => "fail",
        Outcome::NonStrict => "nonstrict",
        Outcome::Info => "info",
        Outcome::Skipped => "skipped",
    }
}

/// Renders the report.
pub fn render(report: &Report) -> String {
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Echowire conformance report</title>\n<style>\n");
    h.push_str("body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}");
    h.push_str(".pass{background:#d7f5d7}.fail{background:#f7c6c6;font-weight:bold}.nonstrict{background:#fbe7b5}.info{background:#d5ecf7}.skipped{background:#eee;color:#777}");
    h.push_str("pre{background:#f6f6f6;padding:.5em;overflow-x:auto;font-size:12px}details{margin:.3em 0}h2{margin-top:2em}code{font-size:13px}\n</style></head><body>\n");
    let _ = writeln!(
        h,
        "<h1>Echowire conformance report</h1><p>{} cases, splits <code>{}</code>, seed {}, {:.1} s.</p>",
        report.cases.len(),
        esc(&report
            .options
            .strategies
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(",")),
        report.options.seed,
        report.elapsed.as_secs_f64()
    );
    h.push_str("<h2>Targets</h2><table><tr><th>target</th><th>address</th><th>offers</th><th>pass</th><th>fail</th><th>non-strict</th><th>info</th><th>skipped</th><th>notes</th></tr>\n");
    for t in &report.targets {
        let c = Counts::of(report, t, None);
        let offers = t
            .info
            .as_ref()
            .map(|i| {
                format!(
                    "v{} caps {:#x} limit {} {}",
                    i.version,
                    i.capabilities,
                    i.max_frame_size,
                    esc(&i.agent)
                )
            })
            .unwrap_or_default();
        let note = t
            .error
            .clone()
            .or(t.died_after.as_ref().map(|d| format!("died after {d}")))
            .unwrap_or_default();
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{offers}</td><td class=pass>{}</td><td class=fail>{}</td><td class=nonstrict>{}</td><td class=info>{}</td><td class=skipped>{}</td><td>{}</td></tr>",
            esc(&t.name),
            esc(&t.address),
            c.pass,
            c.fail,
            c.non_strict,
            c.info,
            c.skipped,
            esc(&note)
        );
    }
    h.push_str("</table>\n");
    for s in sections(report) {
        let _ = writeln!(
            h,
            "<h2>Section {}</h2><table><tr><th>case</th><th>level</th><th>title</th>",
            esc(&s)
        );
        for t in &report.targets {
            let _ = write!(h, "<th>{}</th>", esc(&t.name));
        }
        h.push_str("</tr>\n");
        for (i, case) in report
            .cases
            .iter()
            .enumerate()
            .filter(|(_, c)| c.section == s)
        {
            let _ = write!(
                h,
                "<tr><td><a href=\"#{0}\">{0}</a></td><td>{1}</td><td>{2}</td>",
                esc(&case.id),
                case.level,
                esc(&case.title)
            );
            for t in &report.targets {
                let o = t.results.get(i).map_or(Outcome::Skipped, |r| r.outcome);
                let _ = write!(h, "<td class={}>{}</td>", class(o), o.label());
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</table>\n");
    }
    h.push_str("<h2>Case details</h2>\n");
    for (i, case) in report.cases.iter().enumerate() {
        let _ = writeln!(
            h,
            "<details id=\"{}\"><summary><b>{}</b> [{}] {}</summary><p>{}</p>",
            esc(&case.id),
            esc(&case.id),
            case.level,
            esc(&case.title),
            esc(&case.description)
        );
        for t in &report.targets {
            let Some(r) = t.results.get(i) else { continue };
            let _ = writeln!(
                h,
                "<p class={}>{}: {} ({} runs, {} ms) {}</p>",
                class(r.outcome),
                esc(&t.name),
                r.outcome.label(),
                r.runs,
                r.millis,
                esc(r.reason.as_deref().unwrap_or(""))
            );
            for f in &r.failures {
                if let Some(x) = &f.failure {
                    let _ = writeln!(
                        h,
                        "<p>split <code>{}</code>, local address <code>{}</code>, step {}:<br>expected <code>{}</code><br>observed <code>{}</code></p><pre>{}</pre>",
                        esc(&f.cut),
                        esc(&f.local_addr),
                        x.step,
                        esc(&x.expected),
                        esc(&x.observed),
                        esc(&wire_lines(&f.wire, 240).join("\n"))
                    );
                }
            }
        }
        let _ = writeln!(
            h,
            "<pre>{}</pre></details>",
            esc(&serde_json::to_string_pretty(&case.steps).unwrap_or_default())
        );
    }
    h.push_str("</body></html>\n");
    h
}
