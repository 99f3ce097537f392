//! Progress on standard error while the suite runs (standard output carries only the report).
//!
//! On a terminal: an `indicatif` bar with the counts, elapsed time, ETA, the failures so far and
//! the cases running (with how long each has been running, so a slow case is never silent).
//! Elsewhere (CI logs, pipes): a plain line every few seconds with the same information, and one
//! line per failure as it happens.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::Event;
use crate::report::terminal::{is_problem, paint};

/// How often a plain progress line is written when standard error is not a terminal.
pub const LINE_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct State {
    done: usize,
    failed: usize,
    running: Vec<(String, String, Instant)>,
    last_line: Instant,
}

/// The progress display. Feed it every [`Event`]; call [`Progress::finish`] at the end.
#[derive(Debug)]
pub struct Progress {
    total: usize,
    started: Instant,
    state: Mutex<State>,
    bar: Option<ProgressBar>,
    color: bool,
    stop: AtomicBool,
}

impl Progress {
    /// A display for `total` case runs (cases × targets); `terminal`: standard error is one.
    pub fn new(total: usize, terminal: bool, color: bool) -> Arc<Progress> {
        let bar = terminal.then(|| {
            let b = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} cases, ETA {eta} {msg}",
            ) {
                b.set_style(style.progress_chars("=> "));
            }
            b
        });
        let now = Instant::now();
        Arc::new(Progress {
            total,
            started: now,
            state: Mutex::new(State {
                done: 0,
                failed: 0,
                running: Vec::new(),
                last_line: now,
            }),
            bar,
            color,
            stop: AtomicBool::new(false),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records an event.
    pub fn event(&self, ev: Event<'_>) {
        match ev {
            Event::Started { target, case } => {
                self.state()
                    .running
                    .push((target.to_string(), case.id.clone(), Instant::now()));
            }
            Event::Finished {
                target,
                case,
                result,
                ..
            } => {
                let failed = is_problem(result.outcome);
                {
                    let mut s = self.state();
                    s.done += 1;
                    s.failed += usize::from(failed);
                    if let Some(i) = s
                        .running
                        .iter()
                        .position(|(t, c, _)| t == target && *c == case.id)
                    {
                        s.running.remove(i);
                    }
                }
                if failed {
                    let line = format!(
                        "{} {} ({target}): {}",
                        paint(self.color, result.outcome, result.outcome.label()),
                        case.id,
                        crate::verdict::cut(&crate::report::summary(result), 240)
                    );
                    match &self.bar {
                        Some(b) => b.println(line),
                        None => eprintln!("{line}"),
                    }
                }
                if let Some(b) = &self.bar {
                    b.inc(1);
                }
            }
        }
        self.refresh(false);
    }

    /// The status: counts, time, ETA, running cases.
    pub fn status(&self) -> String {
        let s = self.state();
        let elapsed = self.started.elapsed();
        let eta = if s.done > 0 {
            let per = elapsed.as_secs_f64() / s.done as f64;
            format!(
                ", ETA {:.0} s",
                per * self.total.saturating_sub(s.done) as f64
            )
        } else {
            String::new()
        };
        let running: Vec<String> = s
            .running
            .iter()
            .take(4)
            .map(|(_, c, at)| format!("{c} ({} s)", at.elapsed().as_secs()))
            .collect();
        format!(
            "{}/{} cases, {} failed, {:.0} s elapsed{eta}{}",
            s.done,
            self.total,
            s.failed,
            elapsed.as_secs_f64(),
            if running.is_empty() {
                String::new()
            } else {
                format!(", running {}", running.join(", "))
            }
        )
    }

    /// Updates the bar, or writes a plain line when [`LINE_EVERY`] has passed (`force`: now).
    fn refresh(&self, force: bool) {
        if let Some(b) = &self.bar {
            let s = self.state();
            let running: Vec<String> = s
                .running
                .iter()
                .take(2)
                .map(|(_, c, at)| format!("{c} ({} s)", at.elapsed().as_secs()))
                .collect();
            b.set_message(format!("· {} failed · {}", s.failed, running.join(", ")));
            return;
        }
        let due = {
            let mut s = self.state();
            let due = force || s.last_line.elapsed() >= LINE_EVERY;
            if due {
                s.last_line = Instant::now();
            }
            due
        };
        if due {
            eprintln!("[progress] {}", self.status());
        }
    }

    /// Starts a thread that keeps the display current while cases run (a slow case still
    /// produces a line every few seconds). It stops at [`Progress::finish`].
    pub fn spawn_ticker(self: &Arc<Self>) -> std::thread::JoinHandle<()> {
        let me = Arc::clone(self);
        std::thread::spawn(move || {
            while !me.stop.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(250));
                me.refresh(false);
            }
        })
    }

    /// Ends the display: clears the bar, or writes a last line.
    pub fn finish(&self) {
        self.stop.store(true, Ordering::Release);
        match &self.bar {
            Some(b) => b.finish_and_clear(),
            None => eprintln!("[progress] {}", self.status()),
        }
    }
}
