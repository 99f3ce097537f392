//! One self-contained HTML file (inline CSS, no scripts or external assets), compact enough to
//! attach to a CI run: the targets with what they offer and any warning, a per-section summary,
//! the failures first (open, each with the spec's sentence, expected and observed, the decoded
//! wire log and the replay command), then the case × target matrix. Passing cases are one row
//! of the matrix each (a passing run of the whole suite is well under 200 KB).

use std::fmt::Write;

use super::terminal::is_problem;
use super::{Counts, failure_text, sections};
use crate::Report;
use crate::verdict::Outcome;

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn class(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "p",
        Outcome::Fail | Outcome::UnexpectedPass => "f",
        Outcome::NonStrict => "n",
        Outcome::Info => "i",
        Outcome::Skipped => "s",
        Outcome::ExpectedFail => "x",
    }
}

/// An anchor for a target's failure of a case.
fn anchor(ti: usize, id: &str) -> String {
    let id: String = id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("t{ti}-{id}")
}

/// Renders the report.
pub fn render(report: &Report) -> String {
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Echowire conformance report</title>\n<style>\n");
    h.push_str("body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}");
    h.push_str(".p{background:#d7f5d7}.f{background:#f7c6c6;font-weight:bold}.n{background:#fbe7b5}.i{background:#d5ecf7}.s{background:#eee;color:#777}.x{background:#ead7f5}.w{background:#fff3c4}");
    h.push_str("pre{background:#f6f6f6;padding:.5em;overflow-x:auto;font-size:12px;white-space:pre-wrap;overflow-wrap:anywhere}details{margin:.5em 0;border-left:4px solid #c33;padding-left:.5em}th.sec{background:#f0f0f0}code{font-size:13px}\n</style></head><body>\n");
    let splits = report
        .options
        .strategies
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let _ = writeln!(
        h,
        "<h1>Echowire conformance report</h1><p>{} cases, splits <code>{}</code>, seed {}, {:.1} s, {}.</p>",
        report.cases.len(),
        esc(&splits),
        report.options.seed,
        report.elapsed.as_secs_f64(),
        if report.passed(false) {
            "<b>passed</b>"
        } else {
            "<b>FAILED</b>"
        }
    );
    if let Some(why) = &report.incomplete {
        let _ = writeln!(
            h,
            "<p class=w><b>INCOMPLETE</b>: {}; the cases not started are marked skipped.</p>",
            esc(why)
        );
    }
    h.push_str("<h2>Targets</h2><table><tr><th>target</th><th>address</th><th>offers</th><th>pass</th><th>fail</th><th>non-strict</th><th>info</th><th>skipped</th><th>xfail</th><th>xpass</th><th>notes</th></tr>\n");
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
        let mut notes = Vec::new();
        if let Some(e) = &t.error {
            notes.push(format!("<span class=f>ERROR: {}</span>", esc(e)));
        }
        if let Some(w) = &t.warning {
            notes.push(format!("<span class=w>WARNING: {}</span>", esc(w)));
        }
        if let Some(command) = super::command_of(report, t) {
            notes.push(format!("command: <code>{}</code>", esc(&command)));
        }
        if let Some(d) = &t.died_after {
            notes.push(format!(
                "<span class=f>died after {}: {}</span>",
                esc(d),
                esc(t.died_reason.as_deref().unwrap_or(""))
            ));
        }
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{offers}</td><td class=p>{}</td><td class=f>{}</td><td class=n>{}</td><td class=i>{}</td><td class=s>{}</td><td class=x>{}</td><td class=f>{}</td><td>{}</td></tr>",
            esc(&t.name),
            esc(&t.address),
            c.pass,
            c.fail,
            c.non_strict,
            c.info,
            c.skipped,
            c.expected_fail,
            c.unexpected_pass,
            notes.join("<br>")
        );
    }
    h.push_str("</table>\n<h2>Per section</h2><table><tr><th>section</th>");
    for t in &report.targets {
        let _ = write!(h, "<th>{}</th>", esc(&t.name));
    }
    h.push_str("</tr>\n");
    for s in sections(report) {
        let _ = write!(h, "<tr><td><a href=\"#s{0}\">§{0}</a></td>", esc(&s));
        for t in &report.targets {
            let c = Counts::of(report, t, Some(&s));
            let worst = if c.fail + c.unexpected_pass > 0 {
                "f"
            } else if c.non_strict > 0 {
                "n"
            } else if c.pass + c.info > 0 {
                "p"
            } else {
                "s"
            };
            let _ = write!(
                h,
                "<td class={worst}>{} of {} pass{}{}{}</td>",
                c.pass + c.info,
                c.total(),
                if c.fail + c.unexpected_pass > 0 {
                    format!(", {} fail", c.fail + c.unexpected_pass)
                } else {
                    String::new()
                },
                if c.non_strict > 0 {
                    format!(", {} non-strict", c.non_strict)
                } else {
                    String::new()
                },
                if c.skipped > 0 {
                    format!(", {} skipped", c.skipped)
                } else {
                    String::new()
                },
            );
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
    let mut any = false;
    for (ti, t) in report.targets.iter().enumerate() {
        for (case, r) in report.cases.iter().zip(&t.results) {
            if !is_problem(r.outcome) {
                continue;
            }
            if !any {
                h.push_str("<h2>Failures</h2>\n");
                any = true;
            }
            let _ = writeln!(
                h,
                "<details open id=\"{}\"><summary><span class={}>{}</span> <b>{}</b> [{}] {} — {}</summary><pre>{}</pre></details>",
                anchor(ti, &case.id),
                class(r.outcome),
                r.outcome.label(),
                esc(&case.id),
                case.level,
                esc(&case.title),
                esc(&t.name),
                esc(&failure_text(report, t, case, r))
            );
        }
    }
    h.push_str("<h2>Cases</h2><table><tr><th>case</th><th>level</th><th>title</th>");
    for t in &report.targets {
        let _ = write!(h, "<th>{}</th>", esc(&t.name));
    }
    h.push_str("</tr>\n");
    for s in sections(report) {
        let _ = writeln!(
            h,
            "<tr><th class=sec id=\"s{0}\" colspan={1}>§{0}</th></tr>",
            esc(&s),
            3 + report.targets.len()
        );
        for (i, case) in report
            .cases
            .iter()
            .enumerate()
            .filter(|(_, c)| c.section == s)
        {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td>",
                esc(&case.id),
                case.level,
                esc(&case.title)
            );
            for (ti, t) in report.targets.iter().enumerate() {
                let o = t.results.get(i).map_or(Outcome::Skipped, |r| r.outcome);
                if is_problem(o) {
                    let _ = write!(
                        h,
                        "<td class={}><a href=\"#{}\">{}</a></td>",
                        class(o),
                        anchor(ti, &case.id),
                        o.label()
                    );
                } else if let Some(why) = t
                    .results
                    .get(i)
                    .filter(|r| r.outcome == Outcome::Skipped)
                    .and_then(|r| r.reason.as_deref())
                {
                    // The reason is shown, not only hovered: a skip says what would run it.
                    let _ = write!(
                        h,
                        "<td class={} title=\"{}\">{}<br><small>{}</small></td>",
                        class(o),
                        esc(why),
                        o.label(),
                        esc(why)
                    );
                } else {
                    let _ = write!(h, "<td class={}>{}</td>", class(o), o.label());
                }
            }
            h.push_str("</tr>\n");
        }
    }
    h.push_str("</table>\n</body></html>\n");
    h
}
