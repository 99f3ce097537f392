//! Report formats: [`terminal`], [`json`] (schema in `spec/conformance/schema/report.schema.json`),
//! [`junit`], [`html`]. They share the counting, the decoded wire log's text form and the
//! failure text here, so every format says the same thing about a failure.

pub mod html;
pub mod json;
pub mod junit;
pub mod terminal;

use std::fmt::Write;

use crate::case::Case;
use crate::verdict::{Outcome, cut};
use crate::wire::{self, Item, Kind};
use crate::{CaseResult, Report, TargetReport};

/// Counts by outcome for one target.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Counts {
    /// Passed.
    pub pass: usize,
    /// MUST failed.
    pub fail: usize,
    /// SHOULD not met.
    pub non_strict: usize,
    /// Informational.
    pub info: usize,
    /// Skipped.
    pub skipped: usize,
    /// Failed as the expected-failures list says.
    pub expected_fail: usize,
    /// Passed although listed as expected failures.
    pub unexpected_pass: usize,
}

impl Counts {
    /// Counts a target's results, optionally only those of one section.
    pub fn of(report: &Report, t: &TargetReport, section: Option<&str>) -> Counts {
        let mut c = Counts::default();
        for (case, r) in report.cases.iter().zip(&t.results) {
            if section.is_some_and(|s| s != case.section) {
                continue;
            }
            match r.outcome {
                Outcome::Pass => c.pass += 1,
                Outcome::Fail => c.fail += 1,
                Outcome::NonStrict => c.non_strict += 1,
                Outcome::Info => c.info += 1,
                Outcome::Skipped => c.skipped += 1,
                Outcome::ExpectedFail => c.expected_fail += 1,
                Outcome::UnexpectedPass => c.unexpected_pass += 1,
            }
        }
        c
    }

    /// Total.
    pub fn total(&self) -> usize {
        self.pass
            + self.fail
            + self.non_strict
            + self.info
            + self.skipped
            + self.expected_fail
            + self.unexpected_pass
    }
}

/// Sections in spec order.
pub fn sections(report: &Report) -> Vec<String> {
    let mut s: Vec<String> = report.cases.iter().map(|c| c.section.clone()).collect();
    s.dedup();
    s
}

/// Lines of a decoded log shown at most; a longer log keeps its start and its end (where the
/// server's last answer is) and says how much it left out.
pub const MAX_LOG_LINES: usize = 80;

/// The decoded wire log as text: per item a summary line and a hex + ASCII line.
pub fn wire_text(items: &[Item]) -> Vec<String> {
    let line = |it: &Item| {
        let dir = match it.dir {
            crate::exec::Dir::ClientToServer => "C>S",
            crate::exec::Dir::ServerToClient => "S>C",
        };
        let mut out = vec![format!(
            "{:>6} ms {dir} @{:<6} {}{}",
            it.at_ms,
            it.offset,
            it.text,
            match (it.kind, it.writes) {
                (Kind::Note, _) => String::new(),
                (_, 1) => format!("  [{} octets, 1 {}]", it.octets, io_word(it, false)),
                (_, w) => format!("  [{} octets, {w} {}]", it.octets, io_word(it, true)),
            }
        )];
        if !it.hex.is_empty() {
            let more = if it.more > 0 {
                format!(" …+{} octets", it.more)
            } else {
                String::new()
            };
            out.push(format!("{:>21}{}{more}  |{}|", "", it.hex, it.ascii));
        }
        out
    };
    let mut out = Vec::new();
    let per = 2;
    if items.len() * per <= MAX_LOG_LINES {
        for it in items {
            out.extend(line(it));
        }
        return out;
    }
    let keep = MAX_LOG_LINES / per / 2;
    for it in &items[..keep] {
        out.extend(line(it));
    }
    out.push(format!(
        "{:>21}… {} frames and events left out …",
        "",
        items.len() - 2 * keep
    ));
    for it in &items[items.len() - keep..] {
        out.extend(line(it));
    }
    out
}

fn io_word(it: &Item, plural: bool) -> &'static str {
    match (it.dir, plural) {
        (crate::exec::Dir::ClientToServer, false) => "write",
        (crate::exec::Dir::ClientToServer, true) => "writes",
        (crate::exec::Dir::ServerToClient, false) => "read",
        (crate::exec::Dir::ServerToClient, true) => "reads",
    }
}

/// The arguments that select a target on the command line (for replay commands).
pub fn target_args(report: &Report, t: &TargetReport) -> String {
    let spec = report
        .options
        .targets
        .iter()
        .find(|s| s.to_string() == t.name);
    if let Some(command) = t.name.strip_prefix("client:") {
        return format!("client --exec {}", shell_quote(command));
    }
    match spec {
        Some(crate::target::TargetSpec::Exec(e)) => format!(
            "--exec {}{}",
            shell_quote(&e.template),
            if e.unix { " --exec-unix" } else { "" }
        ),
        _ => format!("--target {}", shell_quote(&t.name)),
    }
}

/// The full command of an `--exec` target (its name is short).
pub fn command_of(report: &Report, t: &TargetReport) -> Option<String> {
    report.options.targets.iter().find_map(|s| match s {
        crate::target::TargetSpec::Exec(e) if s.to_string() == t.name => Some(format!(
            "{}{}",
            e.template,
            if e.unix { " (--exec-unix)" } else { "" }
        )),
        _ => None,
    })
}

/// `s` quoted for a POSIX shell when it needs it.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@=,+".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// What the re-runs of a failing case found, in one line.
pub fn retried_text(rt: &crate::Retried) -> String {
    if rt.passed {
        format!(
            "FLAKY: passed on re-run {} (run alone) after failing {}",
            rt.reruns, rt.first_failure
        )
    } else {
        format!("failed again on {} re-run(s), each run alone", rt.reruns)
    }
}

/// The one-line reason of a result: the first failure's expected/observed, else its reason.
pub fn summary(r: &CaseResult) -> String {
    let first = r.failures.iter().find_map(|f| {
        f.failure.as_ref().map(|x| {
            format!(
                "step {}: expected {}; observed {}",
                x.step,
                cut(&x.expected, 300),
                cut(&x.observed, 300)
            )
        })
    });
    first
        .or_else(|| r.reason.clone())
        .unwrap_or_else(|| r.outcome.label().to_string())
}

/// The whole failure, as text: the spec's sentences, each failing run with its decoded wire
/// log, and the smallest failing split with its replay command.
pub fn failure_text(report: &Report, t: &TargetReport, case: &Case, r: &CaseResult) -> String {
    let mut d = String::new();
    for s in case.requirement() {
        let _ = writeln!(d, "spec: {s}");
    }
    if let Some(reason) = &r.reason {
        let _ = writeln!(d, "note: {reason}");
    }
    if let Some(rt) = &r.retried {
        let _ = writeln!(d, "note: {}", retried_text(rt));
    }
    let files: String = report
        .options
        .case_files
        .iter()
        .map(|p| format!(" --case-file {}", p.display()))
        .collect();
    let base = format!("echowire-conformance {}{files}", target_args(report, t));
    // A failure is shown in full once; the other splits it failed under the same way (same
    // step, same expectation, same observation) are listed with it.
    let key = |f: &crate::exec::RunResult| {
        f.failure
            .as_ref()
            .map(|x| (x.step, x.expected.clone(), x.observed.clone()))
    };
    for (i, f) in r.failures.iter().enumerate() {
        let Some(x) = &f.failure else { continue };
        if r.failures[..i].iter().any(|g| key(g) == key(f)) {
            continue;
        }
        let same: Vec<&str> = r.failures[i + 1..]
            .iter()
            .filter(|g| key(g) == key(f))
            .map(|g| g.cut.as_str())
            .collect();
        let also = if same.is_empty() {
            String::new()
        } else {
            format!("   (the same failure under: {})", same.join("; "))
        };
        let _ = writeln!(
            d,
            "split: {}   local address: {}{also}",
            f.cut, f.local_addr
        );
        let _ = writeln!(d, "step {}: expected {}", x.step, x.expected);
        let _ = writeln!(d, "        observed {}", x.observed);
        if let Some(rule) = step_sentence(case, x.step) {
            let _ = writeln!(d, "        the step's rule: {rule}");
        }
        let _ = writeln!(
            d,
            "wire log (C>S: runner to server, S>C: server to runner):"
        );
        for l in wire_text(&wire::decode(&f.wire)) {
            let _ = writeln!(d, "  {l}");
        }
        let _ = writeln!(
            d,
            "replay: {base} --case {} {}",
            case.id,
            replay_split(&f.cut, &report.options)
        );
    }
    if let Some(s) = &r.shrunk {
        let _ = writeln!(
            d,
            "smallest failing split (from {}, {} cuts, {} replays): {}",
            s.from, s.cuts_before, s.runs, s.words
        );
        let _ = writeln!(d, "replay: {base} {}", s.replay);
    }
    d
}

/// The sentence behind what step `step` of `case` expects, where the step itself names one and
/// it is not already among the case's own citations: the rule of the error code it expects
/// (spec 7.1's table points each code at the sentence that says when it is sent), or the time
/// bound of spec 8.3 for a step held to one (`at_most_ms`). A case cites the sentences it was
/// written for; a failure at a step that checks a neighbouring rule quotes that rule too.
pub fn step_sentence(case: &Case, step: usize) -> Option<String> {
    use crate::oracle::rules::Rule;
    use crate::step::{ExpectKind, Step};
    let Some(Step::Expect(e)) = case.steps.get(step) else {
        return None;
    };
    let rule = match &e.kind {
        ExpectKind::Frame(p) => error_code(p).map(Rule::Code),
        ExpectKind::OneOf(ps) | ExpectKind::Unordered(ps) => {
            // One rule only if every pattern names the same code.
            let codes: Vec<_> = ps.iter().map(error_code).collect();
            match codes.first() {
                Some(Some(c)) if codes.iter().all(|x| x == &Some(*c)) => Some(Rule::Code(*c)),
                _ => None,
            }
        }
        _ => None,
    }
    .or_else(|| e.at_most_ms.as_ref().map(|_| Rule::TimerWindow))?;
    let r = rule.spec();
    let cited = case.spec.iter().any(|c| {
        c.section == r.section && (c.quote.starts_with(&r.quote) || r.quote.starts_with(&c.quote))
    });
    if cited {
        return None;
    }
    Some(match crate::spec::resolve(&r) {
        Ok(s) => crate::spec::display(s),
        Err(_) => format!("§{}: {}", r.section, r.quote),
    })
}

/// The ERROR code a frame pattern asks for, if it names one.
fn error_code(p: &crate::step::Pattern) -> Option<echowire_codec::ErrorCode> {
    if p.0["type"].as_str() != Some("ERROR") {
        return None;
    }
    echowire_codec::ErrorCode::from_name(p.0["body"]["code"].as_str()?)
}

/// The `--splits`/`--seed`/`--cut-at` arguments that replay a run's cut.
pub fn replay_split(cut: &str, opts: &crate::Options) -> String {
    let seed = opts.seed;
    if let Some(k) = cut.strip_prefix("boundaries k=") {
        return format!("--cut-at {k}");
    }
    if let Some(list) = cut.strip_prefix("cut-at ") {
        return format!("--cut-at {list}");
    }
    let strategy = cut.split_whitespace().next().unwrap_or("whole");
    match strategy {
        "random" => {
            let n = opts
                .strategies
                .iter()
                .find_map(|s| match s {
                    crate::split::Strategy::Random(n) => Some(*n),
                    _ => None,
                })
                .unwrap_or(1);
            format!("--splits random:{n} --seed {seed}")
        }
        "delayed" => format!("--splits delayed --seed {seed}"),
        other => format!("--splits {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(id: &str) -> Case {
        crate::case::builtin()
            .into_iter()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("no case {id}"))
    }

    #[test]
    fn a_failing_step_quotes_its_own_rule_when_the_case_cites_another() {
        // Cited for "Every request ... MUST carry a non-zero request ID"; its step 3 expects
        // DUPLICATE_REQUEST_ID, whose rule is another sentence of 2.5.
        let c = case("2.5-duplicate-outstanding");
        let rule = step_sentence(&c, 3).expect("the step names a rule");
        assert!(rule.contains("DUPLICATE_REQUEST_ID"), "{rule}");
        assert!(
            !c.requirement().iter().any(|s| s == &rule),
            "the case cites it already: {rule}"
        );
        // Not repeated where the case cites the step's rule itself.
        let c = case("2.4-echo-bit-1");
        let step = c
            .steps
            .iter()
            .position(|s| matches!(s, crate::step::Step::Expect(_)))
            .expect("an expect step");
        let flags = (step..c.steps.len()).find(|&k| {
            matches!(&c.steps[k], crate::step::Step::Expect(e)
                if matches!(&e.kind, crate::step::ExpectKind::Frame(p) if p.0["body"]["code"] == "INVALID_FLAGS"))
        });
        let flags = flags.expect("a step expecting INVALID_FLAGS");
        assert_eq!(step_sentence(&c, flags), None);
        // A step that expects no error code names no rule.
        assert_eq!(step_sentence(&c, 0), None);
    }
}
