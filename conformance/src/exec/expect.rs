//! Expectations: what must arrive next, matched against what the reader observed.

use std::time::Instant;

use serde_json::Value;

use super::reader::{Closed, Ev};
use super::{Exec, StepResult, fail};
use crate::step::{CloseHow, Expect, ExpectKind, Pattern};
use crate::verdict::{describe, expand, matches};

impl Exec {
    /// Writes what coalescing held back and checks the expectations deferred behind it.
    pub(super) fn flush_and_check(&mut self) -> StepResult {
        if !self.pending.is_empty() {
            let bytes = std::mem::take(&mut self.pending);
            self.writer.send(super::Cmd::Data(bytes));
        }
        // Spec §3.6.1: responses to frames that went out in one write may come in any order, so
        // consecutive deferred response expectations are matched as one unordered group.
        let deferred = std::mem::take(&mut self.deferred);
        let mut k = 0;
        while k < deferred.len() {
            let (i, e) = &deferred[k];
            let group: Vec<Vec<Pattern>> = deferred[k..]
                .iter()
                .map_while(|(_, e)| e.response_patterns())
                .collect();
            if group.len() > 1 {
                k += group.len();
                let deadline = self.deadline(e);
                self.expect_unordered(*i, &group.concat(), deadline)?;
                continue;
            }
            self.expect(*i, e)?;
            k += 1;
        }
        Ok(())
    }

    /// What was observed, saying so when a bound the spec sets ran out.
    fn observed(&self, e: &Expect, ev: &Ev) -> String {
        match (ev, &e.at_most_ms) {
            (Ev::Timeout(partial), Some(ms)) => format!(
                "no whole frame within {} ms, the bound this case holds the server to{}",
                self.ms(ms).as_millis(),
                partial
                    .as_ref()
                    .map(|p| format!("; what arrived is {p}"))
                    .unwrap_or_default()
            ),
            (Ev::Timeout(partial), None) => {
                // Which deadline ran out, and the option that moves it.
                let (waited, from) = match &e.within_ms {
                    Some(ms) if self.ms(ms) > self.settings.timeout => (
                        self.ms(ms),
                        "the case's own wait, longer than --timeout".to_string(),
                    ),
                    _ => (
                        self.settings.timeout,
                        "--timeout, plus the case's COMPUTE time at a declared \
                         --compute-rate; raise either for a slow target"
                            .to_string(),
                    ),
                };
                let what = partial.as_ref().map_or("nothing".to_string(), |p| {
                    format!("no whole frame; what arrived is {p}")
                });
                format!(
                    "{what} within the {:.1} s deadline ({from})",
                    waited.as_secs_f64()
                )
            }
            _ => ev.describe(),
        }
    }

    /// The deadline of an expectation: its `at_most_ms` exactly (a bound the spec sets), or its
    /// own `within_ms` (never below the run's default), or the run's default.
    fn deadline(&self, e: &Expect) -> Instant {
        let d = match (&e.at_most_ms, &e.within_ms) {
            (Some(ms), _) => self.ms(ms),
            (None, Some(ms)) => self.ms(ms).max(self.settings.timeout),
            (None, None) => self.settings.timeout,
        };
        Instant::now() + d
    }

    fn expanded(&self, p: &Pattern) -> Value {
        expand(&p.0, self.limit.unwrap_or(u32::MAX))
    }

    pub(super) fn expect(&mut self, i: usize, e: &Expect) -> StepResult {
        match &e.kind {
            ExpectKind::Frame(p) => {
                let p = self.expanded(p);
                let ev = self.next_event(self.deadline(e));
                match &ev {
                    Ev::Frame(v) if matches(&p, v) => Ok(()),
                    _ => Err(fail(
                        i,
                        format!("frame {}", describe(&p)),
                        self.observed(e, &ev),
                    )),
                }
            }
            ExpectKind::OneOf(alts) => {
                let alts: Vec<Value> = alts.iter().map(|a| self.expanded(a)).collect();
                let ev = self.next_event(self.deadline(e));
                match &ev {
                    Ev::Frame(v) if alts.iter().any(|a| matches(a, v)) => Ok(()),
                    _ => Err(fail(
                        i,
                        format!("one of {}", describe(&Value::Array(alts))),
                        self.observed(e, &ev),
                    )),
                }
            }
            ExpectKind::Unordered(pats) => self.expect_unordered(i, pats, self.deadline(e)),
            ExpectKind::Closed(how) | ExpectKind::ClosedAfterFrames(how) => {
                let deadline = self.deadline(e);
                let mut ev = self.next_event(deadline);
                if matches!(e.kind, ExpectKind::ClosedAfterFrames(_)) {
                    while matches!(ev, Ev::Frame(_)) {
                        ev = self.next_event(deadline);
                    }
                    // An abortive close cuts the frame in flight: what was buffered is dropped.
                    if let (Ev::Invalid(_), Some(c)) = (&ev, self.closed) {
                        self.buf.clear();
                        ev = Ev::Closed(c);
                    }
                }
                // Over a Unix-domain socket there is no reset: an abortive close is an end of
                // stream.
                let reset_visible = self.conn.has_reset();
                match (&ev, how) {
                    (Ev::Closed(Closed::Clean), CloseHow::Clean | CloseHow::Any)
                    | (Ev::Closed(Closed::Reset), CloseHow::Any | CloseHow::Reset) => Ok(()),
                    (Ev::Closed(Closed::Clean), CloseHow::Reset) if !reset_visible => Ok(()),
                    _ => Err(fail(
                        i,
                        match how {
                            CloseHow::Clean => "a clean end of stream (FIN, no RST)",
                            CloseHow::Reset => "an abortive close (RST) with no frame before it",
                            CloseHow::Any => "the connection closed (FIN or RST)",
                        },
                        ev.describe(),
                    )),
                }
            }
            ExpectKind::Nothing(ms) => {
                let d = self.ms(ms);
                let ev = self.next_event(Instant::now() + d);
                match ev {
                    Ev::Timeout(_) => Ok(()),
                    other => Err(fail(
                        i,
                        format!("nothing for {} ms", d.as_millis()),
                        other.describe(),
                    )),
                }
            }
        }
    }

    /// The next `pats.len()` frames match `pats` in any order.
    fn expect_unordered(&mut self, i: usize, pats: &[Pattern], deadline: Instant) -> StepResult {
        let mut left: Vec<Value> = pats.iter().map(|p| self.expanded(p)).collect();
        let total = left.len();
        while !left.is_empty() {
            let ev = self.next_event(deadline);
            let found = match &ev {
                Ev::Frame(v) => left.iter().position(|p| matches(p, v)),
                _ => None,
            };
            let Some(k) = found else {
                let expected = format!(
                    "{} more of {total} frames in any order, e.g. {}",
                    left.len(),
                    describe(&left[0])
                );
                return Err(fail(i, expected, ev.describe()));
            };
            left.swap_remove(k);
        }
        Ok(())
    }
}
