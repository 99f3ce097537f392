//! Shrinking a fuzz finding, and writing it as a case file.
//!
//! A session that diverged is made smaller while it still diverges *by the same rule* (a
//! smaller session that fails for another reason is a different finding, not a smaller one):
//!
//! 1. whole steps, by delta debugging (Zeller's ddmin: drop halves, then quarters, ... then
//!    single steps) — the final `judge` step always stays;
//! 2. the split: `whole` is tried first, then the cuts of the original split are shrunk with
//!    the fixed suite's cut shrinker ([`crate::shrink`]);
//! 3. pauses: each is dropped, else halved.
//!
//! Every try is a real run against the target, so the budget is counted in runs and in time
//! ([`MAX_RUNS`], [`MAX_TIME`]); when it runs out the session is reported as smaller, not
//! minimal. A timing-dependent divergence may not reproduce on every try: a try that passes is
//! simply not taken, which can only leave the result larger, never wrong (the written case is
//! the last session that failed).

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use super::Finding;
use crate::exec::{Dir, RunResult};
use crate::oracle::Divergence;
use crate::oracle::rules::Rule;
use crate::split::Cut;
use crate::step::Step;

/// Runs per shrink at most.
pub const MAX_RUNS: usize = 150;
/// Time per shrink at most.
pub const MAX_TIME: Duration = Duration::from_secs(90);

/// Whether `r` diverges by `rule`.
fn same(r: &RunResult, rule: Rule) -> bool {
    r.oracle
        .as_ref()
        .and_then(|o| o.divergence.as_ref())
        .is_some_and(|d| d.rule == rule)
}

struct Budget {
    started: Instant,
    runs: usize,
}

impl Budget {
    fn left(&self) -> bool {
        self.runs < MAX_RUNS && self.started.elapsed() < MAX_TIME
    }
}

/// Shrinks `steps` (which failed under `cut` with `first`, diverging as `d`); `run` replays
/// steps under a split. Returns the smallest failing steps, their split and their failing run.
pub fn shrink(
    steps: &[Step],
    cut: Cut,
    first: RunResult,
    d: &Divergence,
    run: &dyn Fn(&[Step], Cut) -> RunResult,
) -> (Vec<Step>, Cut, RunResult) {
    let rule = d.rule;
    let mut b = Budget {
        started: Instant::now(),
        runs: 0,
    };
    let mut best: Vec<Step> = steps.to_vec();
    let mut best_cut = cut;
    let mut best_run = first;
    let attempt = |cand: &[Step], cut: &Cut, b: &mut Budget| -> Option<RunResult> {
        if !b.left() || crate::step::validate(cand).is_err() {
            return None;
        }
        b.runs += 1;
        let r = run(cand, cut.clone());
        same(&r, rule).then_some(r)
    };

    // 1. ddmin over the steps before the judge.
    let judge = best.pop();
    let mut n = 2usize;
    while best.len() >= 2 && b.left() {
        let chunk = best.len().div_ceil(n);
        let mut reduced = false;
        let mut start = 0;
        while start < best.len() && b.left() {
            let end = (start + chunk).min(best.len());
            let mut cand: Vec<Step> = best[..start].to_vec();
            cand.extend_from_slice(&best[end..]);
            cand.extend(judge.clone());
            if let Some(r) = attempt(&cand, &best_cut, &mut b) {
                cand.pop();
                best = cand;
                best_run = r;
                reduced = true;
                n = (n - 1).max(2);
                break;
            }
            start = end;
        }
        if !reduced {
            if n >= best.len() {
                break;
            }
            n = (n * 2).min(best.len());
        }
    }
    best.extend(judge);

    // 2. The split.
    if best_cut != Cut::Whole && b.left() {
        if let Some(r) = attempt(&best, &Cut::Whole, &mut b) {
            best_cut = Cut::Whole;
            best_run = r;
        } else if b.left() {
            let s = crate::shrink::shrink(
                "fuzz",
                &best_cut,
                &best_run,
                &|c| {
                    let r = run(&best, c);
                    if same(&r, rule) {
                        r
                    } else {
                        // The cut shrinker counts any failure; only this rule's counts here.
                        RunResult { failure: None, ..r }
                    }
                },
                Dir::ClientToServer,
            );
            b.runs += s.runs;
            if let Some(r) = s.run
                && same(&r, rule)
            {
                best_cut = if s.cuts.is_empty() {
                    Cut::Whole
                } else {
                    Cut::Set(s.cuts.into())
                };
                best_run = r;
            }
        }
    }

    // 3. Pauses: adjacent ones merged (the same timing), then each dropped, else halved.
    let mut merged: Vec<Step> = Vec::with_capacity(best.len());
    for step in best.drain(..) {
        if let (
            Some(Step::Pause(crate::step::Wait {
                ms: crate::step::Millis::Number(a),
            })),
            Step::Pause(crate::step::Wait {
                ms: crate::step::Millis::Number(b),
            }),
        ) = (merged.last_mut(), &step)
        {
            *a += *b;
            continue;
        }
        merged.push(step);
    }
    best = merged;
    let mut i = 0;
    while i < best.len() && b.left() {
        if let Step::Pause(w) = &best[i] {
            let half = match w.ms {
                crate::step::Millis::Number(ms) if ms >= 20 => Some(ms / 2),
                _ => None,
            };
            let mut cand = best.clone();
            cand.remove(i);
            if let Some(r) = attempt(&cand, &best_cut, &mut b) {
                best = cand;
                best_run = r;
                continue;
            }
            if let Some(half) = half {
                let mut cand = best.clone();
                cand[i] = Step::Pause(crate::step::Wait {
                    ms: crate::step::Millis::Number(half),
                });
                if let Some(r) = attempt(&cand, &best_cut, &mut b) {
                    best = cand;
                    best_run = r;
                    continue;
                }
            }
        }
        i += 1;
    }
    (best, best_cut, best_run)
}

/// The case ID of a finding: `<section>-fuzz-<campaign seed>-<session>`.
pub fn case_id(seed: u64, f: &Finding) -> String {
    format!(
        "{}-fuzz-{seed}-{}",
        f.divergence.rule.spec().section,
        f.session
    )
}

/// Writes a finding as a case file `fuzz-<seed>-<session>.json` in `dir` (created if missing),
/// in the suite's own format, so `echowire-conformance --cases DIR` replays it; the file also
/// carries the finding (seed, divergence, the failing run's wire log decoded) as information.
/// The shrunk session's exchange goes beside it as `fuzz-<seed>-<session>.pcapng`
/// ([`crate::capture`]).
pub fn write_case(dir: &Path, seed: u64, f: &Finding) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let spec = f.divergence.rule.spec();
    let id = case_id(seed, f);
    let wire: Vec<String> = crate::report::wire_text(&crate::wire::decode(&f.run.wire));
    let case = json!({
        "id": id,
        "section": spec.section,
        "level": "MUST",
        "title": format!("fuzz finding: {}", one_line(&f.divergence.observed, 100)),
        "description": format!(
            "Found by `echowire-conformance fuzz --seed {seed}` (session {}, profile {}, split {}). \
             The server sent {}; the model allowed {}. {}",
            f.session, f.profile, f.cut, f.divergence.observed, f.divergence.expected, f.sentence
        ),
        "spec": [{"section": spec.section, "quote": spec.quote}],
        "profile": f.profile,
        "timing_sensitive": f.cut == "whole",
        "steps": f.shrunk,
        "finding": {
            "target": f.target,
            "campaign_seed": seed,
            "session": f.session,
            "session_seed": f.session_seed,
            "split": f.cut,
            "confirmed": [f.confirmed.0, f.confirmed.1],
            "steps_before_and_after_shrinking": [f.steps.0, f.steps.1],
            "divergence": f.divergence,
            "wire": wire,
            "log": f.run.wire,
        },
    });
    let file = json!({
        "format": "echowire-conformance",
        "format_version": 1,
        "generated_by": "echowire-conformance fuzz",
        "cases": [case],
    });
    let path = dir.join(format!("fuzz-{seed}-{}.json", f.session));
    let text = serde_json::to_string_pretty(&file).map_err(io::Error::other)?;
    std::fs::write(&path, text + "\n")?;
    // The shrunk session's exchange beside it, for Wireshark (spec/wireshark/).
    let about = format!(
        "Echowire fuzz finding: campaign seed {seed}, session {}, against {}: {}",
        f.session, f.target, f.sentence
    );
    let comment = format!(
        "session {} (shrunk) under {}: the server sent {}; the model allowed {}",
        f.session, f.cut, f.divergence.observed, f.divergence.expected
    );
    crate::capture::write(
        &path.with_extension("pcapng"),
        &one_line(&about, 500),
        &[crate::capture::Conversation::of(
            &f.run,
            one_line(&comment, 1000),
        )],
    )?;
    Ok(path)
}

fn one_line(s: &str, max: usize) -> String {
    let s = s.replace('\n', " ");
    if s.chars().count() <= max {
        s
    } else {
        s.chars().take(max).collect::<String>() + "…"
    }
}
