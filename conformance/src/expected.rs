//! Expected failures: a list of cases a target is known to fail (as protobuf's conformance
//! runner keeps one per implementation). A listed case that fails does not fail the run
//! (`XFAIL`); a listed case that passes does (`XPASS`), until its line is removed, so the list
//! cannot go stale and hide a regression later.
//!
//! The file: one case ID (or glob with `*`) per line; `#` starts a comment; blank lines are
//! ignored. Every entry must match a case of the suite: a typo would otherwise excuse nothing
//! and say nothing.

use crate::case::{Case, glob_match};
use crate::verdict::Outcome;
use crate::{CaseResult, Report};

/// A parsed expected-failures list.
#[derive(Clone, Debug, Default)]
pub struct ExpectedFailures {
    /// Where it came from (for messages).
    pub source: String,
    /// (line number, pattern).
    pub entries: Vec<(usize, String)>,
}

impl ExpectedFailures {
    /// Parses the file's text; every entry must match a case of `all`.
    pub fn parse(source: &str, text: &str, all: &[Case]) -> Result<Self, String> {
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let entry = line.split('#').next().unwrap_or("").trim();
            if entry.is_empty() {
                continue;
            }
            if entry.split_whitespace().count() != 1 {
                return Err(format!(
                    "{source}:{}: one case ID or glob per line, found {entry:?}",
                    n + 1
                ));
            }
            if !all.iter().any(|c| glob_match(entry, &c.id)) {
                return Err(format!(
                    "{source}:{}: {entry:?} matches no case of the suite (a stale or mistyped entry)",
                    n + 1
                ));
            }
            entries.push((n + 1, entry.to_string()));
        }
        Ok(ExpectedFailures {
            source: source.to_string(),
            entries,
        })
    }

    /// The line that lists `id`, if any.
    pub fn line_of(&self, id: &str) -> Option<usize> {
        self.entries
            .iter()
            .find(|(_, p)| glob_match(p, id))
            .map(|(n, _)| *n)
    }

    /// Marks listed failures XFAIL and listed passes XPASS, with the reason.
    pub fn apply(&self, report: &mut Report) {
        for t in &mut report.targets {
            for (case, r) in report.cases.iter().zip(t.results.iter_mut()) {
                let Some(line) = self.line_of(&case.id) else {
                    continue;
                };
                mark(r, &self.source, line);
            }
        }
    }
}

fn mark(r: &mut CaseResult, source: &str, line: usize) {
    match r.outcome {
        Outcome::Fail | Outcome::NonStrict => {
            r.outcome = Outcome::ExpectedFail;
            r.reason = Some(format!("expected failure ({source}:{line})"));
        }
        Outcome::Pass => {
            r.outcome = Outcome::UnexpectedPass;
            r.reason = Some(format!(
                "passes, but {source}:{line} lists it as an expected failure: remove that line"
            ));
        }
        Outcome::Info | Outcome::Skipped | Outcome::ExpectedFail | Outcome::UnexpectedPass => {}
    }
}

/// The failure list a run would need (`--write-failures`): the IDs of every case that failed
/// (MUST or SHOULD) on any target, one per line.
pub fn failure_list(report: &Report) -> String {
    let mut out = String::from(
        "# Cases this target fails (echowire-conformance --expected-failures).\n# Remove a line once the case passes.\n",
    );
    for (i, case) in report.cases.iter().enumerate() {
        let failed = report.targets.iter().any(|t| {
            t.results.get(i).is_some_and(|r| {
                matches!(
                    r.outcome,
                    Outcome::Fail | Outcome::NonStrict | Outcome::ExpectedFail
                )
            })
        });
        if failed {
            out.push_str(&case.id);
            out.push('\n');
        }
    }
    out
}
