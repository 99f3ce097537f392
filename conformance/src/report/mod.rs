//! Report formats: [`terminal`], [`json`] (documented schema), [`junit`], [`html`].

pub mod html;
pub mod json;
pub mod junit;
pub mod terminal;

use crate::verdict::Outcome;
use crate::{Report, TargetReport};

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
            }
        }
        c
    }

    /// Total.
    pub fn total(&self) -> usize {
        self.pass + self.fail + self.non_strict + self.info + self.skipped
    }
}

/// Sections in spec order.
pub fn sections(report: &Report) -> Vec<String> {
    let mut s: Vec<String> = report.cases.iter().map(|c| c.section.clone()).collect();
    s.dedup();
    s
}

/// A wire log as text lines (`c2s +offset hex`), each entry cut to `max` hex characters.
pub fn wire_lines(wire: &[crate::exec::WireEntry], max: usize) -> Vec<String> {
    wire.iter()
        .map(|w| {
            let dir = match w.dir {
                crate::exec::Dir::ClientToServer => "C>S",
                crate::exec::Dir::ServerToClient => "S>C",
            };
            // Entries are hex or notes ("write error: ..."): cut at a character boundary.
            let hex = match w.hex.char_indices().nth(max) {
                Some((at, _)) => format!("{}… ({} bytes)", &w.hex[..at], w.hex.len() / 2),
                None => w.hex.clone(),
            };
            format!("{:>6}ms {dir} @{:<6} {hex}", w.at_ms, w.offset)
        })
        .collect()
}
