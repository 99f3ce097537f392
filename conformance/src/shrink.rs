//! The smallest failing split: when a case fails under a split that cut the client's stream at
//! many points (bytewise, random, delayed), the runner replays it with subsets of those cuts
//! (delta debugging, Zeller's ddmin) until no single cut can be dropped, and reports the cuts that
//! remain in words ("cut after octet 13: inside the Length field of frame 1") with a command that
//! replays exactly that split (`--cut-at 13`).
//!
//! Shrinking starts only when the case passed unsplit (a failure under `whole` is not about the
//! split) and has a budget of runs and time; when the budget runs out the result is reported as
//! smaller, not minimal.

use std::time::{Duration, Instant};

use crate::exec::{Dir, RunResult};
use crate::split::Cut;
use crate::wire;

/// Runs per shrink at most.
pub const MAX_RUNS: usize = 128;
/// Time per shrink at most.
pub const MAX_TIME: Duration = Duration::from_secs(30);

/// What shrinking found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Shrunk {
    /// The split that failed first.
    pub from: String,
    /// The cuts that split made inside the case's sends.
    pub cuts_before: usize,
    /// The cuts left (connection offsets: a cut after that many octets).
    pub cuts: Vec<u64>,
    /// Replays spent.
    pub runs: usize,
    /// Every single remaining cut was tried away and the case then passed.
    pub minimal: bool,
    /// The result in words.
    pub words: String,
    /// Arguments that replay the shrunk split (after the target's own arguments).
    pub replay: String,
    /// The failing run under the shrunk split (its wire log).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<RunResult>,
}

/// The offsets where the runner's writes (in direction `dir`) began, after the first.
fn write_starts(r: &RunResult, dir: Dir) -> Vec<u64> {
    let mut v: Vec<u64> = r
        .wire
        .iter()
        .filter(|e| e.dir == dir && !e.hex.is_empty() && e.offset > 0)
        .map(|e| e.offset)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Shrinks the cuts of `failed` (a run under `cut`) with `run` (one replay under a cut). `dir`
/// is the direction the runner writes: the client's stream when it tests a server, the
/// server's when it tests a client.
pub fn shrink(
    case_id: &str,
    cut: &Cut,
    failed: &RunResult,
    run: &dyn Fn(Cut) -> RunResult,
    dir: Dir,
) -> Shrunk {
    let started = Instant::now();
    let mut runs = 0usize;
    let stream = wire::stream(&failed.wire, dir);
    let result =
        |cuts: Vec<u64>, minimal: bool, words: String, runs: usize, last: Option<RunResult>| {
            let list: Vec<String> = cuts.iter().map(u64::to_string).collect();
            Shrunk {
                from: cut.to_string(),
                cuts_before: 0,
                replay: if cuts.is_empty() {
                    format!("--case {case_id} --splits whole")
                } else {
                    format!("--case {case_id} --cut-at {}", list.join(","))
                },
                cuts,
                runs,
                minimal,
                words,
                run: last,
            }
        };
    // The writes every split makes anyway (one per send, trickle, ...) are not cuts.
    runs += 1;
    let whole = run(Cut::Whole);
    if whole.failure.is_some() {
        return result(
            Vec::new(),
            true,
            "fails unsplit too (whole) when replayed: the split is not the cause".into(),
            runs,
            Some(whole),
        );
    }
    let natural = write_starts(&whole, dir);
    let all: Vec<u64> = write_starts(failed, dir)
        .into_iter()
        .filter(|k| natural.binary_search(k).is_err())
        .collect();
    let before = all.len();
    let mut last = None;
    let mut test = |set: &[u64], runs: &mut usize| -> bool {
        *runs += 1;
        let r = run(Cut::Set(set.into()));
        let failed = r.failure.is_some();
        if failed {
            last = Some(r);
        }
        failed
    };
    if all.is_empty() || !test(&all, &mut runs) {
        let mut s = result(
            Vec::new(),
            false,
            format!(
                "did not fail again when replayed with the same {before} cuts at a steady pace: \
                 it depends on timing, not only on where the stream is cut (replay the original \
                 split with its seed)"
            ),
            runs,
            None,
        );
        s.cuts_before = before;
        s.replay = format!("--case {case_id} (with the original --splits and --seed)");
        return s;
    }
    // ddmin: try each of n parts, then each complement; refine n when neither fails.
    let mut cuts = all;
    let mut n = 2usize;
    let over = |runs: usize| runs >= MAX_RUNS || started.elapsed() >= MAX_TIME;
    let mut exhausted = false;
    while cuts.len() >= 2 {
        if over(runs) {
            exhausted = true;
            break;
        }
        let parts: Vec<Vec<u64>> = chunks(&cuts, n);
        let mut reduced = false;
        for p in &parts {
            if over(runs) {
                break;
            }
            if test(p, &mut runs) {
                cuts = p.clone();
                n = 2;
                reduced = true;
                break;
            }
        }
        if !reduced && n > 2 {
            for i in 0..parts.len() {
                if over(runs) {
                    break;
                }
                let complement: Vec<u64> = parts
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .flat_map(|(_, p)| p.iter().copied())
                    .collect();
                if test(&complement, &mut runs) {
                    cuts = complement;
                    n = (n - 1).max(2);
                    reduced = true;
                    break;
                }
            }
        }
        if !reduced {
            if over(runs) {
                exhausted = true;
                break;
            }
            if n >= cuts.len() {
                break;
            }
            n = (n * 2).min(cuts.len());
        }
    }
    let minimal = !exhausted;
    let places: Vec<String> = cuts
        .iter()
        .map(|&k| format!("after octet {k} ({})", wire::locate(&stream, k)))
        .collect();
    let words = format!(
        "fails when the {} stream is cut {}{}",
        match dir {
            Dir::ClientToServer => "client's",
            Dir::ServerToClient => "server's",
        },
        places.join(" and "),
        if minimal {
            String::new()
        } else {
            format!(
                " (the budget of {MAX_RUNS} runs or {} s ran out: smaller, not proven minimal)",
                MAX_TIME.as_secs()
            )
        }
    );
    let mut s = result(cuts, minimal, words, runs, last);
    s.cuts_before = before;
    s
}

/// `v` in `n` nearly equal consecutive parts.
fn chunks(v: &[u64], n: usize) -> Vec<Vec<u64>> {
    let n = n.clamp(1, v.len().max(1));
    let (q, r) = (v.len() / n, v.len() % n);
    let mut out = Vec::with_capacity(n);
    let mut at = 0;
    for i in 0..n {
        let len = q + usize::from(i < r);
        out.push(v[at..at + len].to_vec());
        at += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::WireEntry;

    fn run_with(cut: &Cut, bad: &[u64]) -> RunResult {
        // A fake target: fails when every cut in `bad` is among the cuts; logs the writes.
        let ks: Vec<u64> = match cut {
            Cut::Set(ks) => ks.to_vec(),
            Cut::Bytewise => (1..40).collect(),
            _ => Vec::new(),
        };
        let mut starts = vec![0];
        starts.extend(ks.iter().copied());
        let wire = starts
            .iter()
            .map(|&o| WireEntry {
                dir: Dir::ClientToServer,
                at_ms: 0,
                offset: o,
                hex: "00".into(),
                note: None,
                at_us: 0,
            })
            .collect();
        let failed = bad.iter().all(|b| ks.contains(b));
        RunResult {
            cut: cut.to_string(),
            local_addr: String::new(),
            failure: failed.then(|| crate::exec::Failure {
                step: 0,
                expected: String::new(),
                observed: String::new(),
            }),
            wire,
            sent_bytes: 40,
            oracle: None,
            started: None,
            peer_addr: String::new(),
        }
    }

    #[test]
    fn ddmin_finds_the_cuts_that_matter() {
        for bad in [vec![13u64], vec![5, 27], vec![1, 2, 39]] {
            let failed = run_with(&Cut::Bytewise, &bad);
            let s = shrink(
                "x",
                &Cut::Bytewise,
                &failed,
                &|c| run_with(&c, &bad),
                Dir::ClientToServer,
            );
            assert_eq!(s.cuts, bad, "{s:?}");
            assert!(s.minimal, "{s:?}");
            assert_eq!(s.cuts_before, 39);
            assert!(s.runs < MAX_RUNS, "{}", s.runs);
        }
    }

    #[test]
    fn a_failure_that_does_not_replay_is_reported_as_timing() {
        let failed = run_with(&Cut::Bytewise, &[3]);
        let s = shrink(
            "x",
            &Cut::Bytewise,
            &failed,
            &|c| run_with(&c, &[99]),
            Dir::ClientToServer,
        );
        assert!(s.cuts.is_empty());
        assert!(s.words.contains("timing"), "{}", s.words);
    }
}
