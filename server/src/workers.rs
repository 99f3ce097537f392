//! The worker pool for heavy requests (COMPUTE).
//!
//! A fixed number of threads take jobs from one bounded MPMC queue (crossbeam-channel). The pool
//! admits at most `threads + depth` jobs at once — every worker busy and `depth` jobs waiting —
//! counted from submission to the end of the job; beyond that [`Pool::submit`] fails at once and
//! the caller answers ERROR BUSY (spec §8.4): the server never queues without limit. Counting
//! admitted jobs, not the channel's length, makes the bound exact: with the channel alone, a job
//! a worker had not yet taken would make the bound depend on thread scheduling. Workers never touch sockets: a job carries a `reply`
//! closure that hands the response back to the connection's owner (the reactor's completion
//! channel plus its `mio::Waker`, or a connection thread's channel).
//!
//! Cancellation (spec §3.7) is a compare-and-swap on the job's [`JobState`]: the connection's
//! owner moves `Queued → Cancelled` (and answers CANCELLED itself), a worker moves
//! `Queued → Running`; whoever wins decides, so a request is answered exactly once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Sender, TrySendError, bounded};
use echowire_codec::message::Message;

/// Where a job is (spec §3.7: only a job that has not started can be cancelled).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum JobState {
    /// Not yet taken by a worker.
    Queued = 0,
    /// A worker is running it; it can no longer be cancelled.
    Running = 1,
    /// Cancelled before it ran; workers skip it.
    Cancelled = 2,
}

/// A job's state, shared by the connection's owner and the worker; every move is one
/// compare-and-swap from `Queued`, so exactly one side wins.
#[derive(Clone, Debug)]
pub struct JobCell(Arc<AtomicU8>);

impl JobCell {
    /// A queued job.
    pub fn new() -> Self {
        JobCell(Arc::new(AtomicU8::new(JobState::Queued as u8)))
    }

    fn advance(&self, to: JobState) -> bool {
        self.0
            .compare_exchange(
                JobState::Queued as u8,
                to as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// Cancels the job if no worker has taken it: `true` if the caller must now answer it.
    pub fn try_cancel(&self) -> bool {
        self.advance(JobState::Cancelled)
    }

    /// A worker takes the job: `false` if it was cancelled first.
    fn try_start(&self) -> bool {
        self.advance(JobState::Running)
    }

    /// The current state.
    pub fn state(&self) -> JobState {
        match self.0.load(Ordering::Acquire) {
            0 => JobState::Queued,
            1 => JobState::Running,
            _ => JobState::Cancelled,
        }
    }
}

impl Default for JobCell {
    fn default() -> Self {
        Self::new()
    }
}

/// Where a job's response goes.
pub type Reply = Box<dyn FnOnce(Message) + Send>;

/// One heavy request.
pub struct Job {
    /// The work.
    pub work: Box<dyn FnOnce() -> Message + Send>,
    /// Queued, running or cancelled.
    pub state: JobCell,
    /// Hands the response back.
    pub reply: Reply,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("state", &self.state.state())
            .finish_non_exhaustive()
    }
}

/// The pool. Dropping it lets queued jobs finish, then joins the threads.
#[derive(Debug)]
pub struct Pool {
    tx: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
    /// Jobs submitted and not yet finished (or skipped as cancelled).
    admitted: Arc<AtomicUsize>,
    /// `threads + depth`.
    capacity: usize,
}

impl Pool {
    /// Starts `threads` workers with a queue of `depth` jobs.
    pub fn new(
        threads: usize,
        depth: usize,
        counters: Arc<crate::counters::Counters>,
    ) -> std::io::Result<Self> {
        let capacity = threads.max(1) + depth.max(1);
        // Room for every admitted job, so a send never blocks and never fails for space.
        let (tx, rx) = bounded::<Job>(capacity);
        let admitted = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let counters = counters.clone();
            let admitted = admitted.clone();
            handles.push(
                std::thread::Builder::new()
                    .name(format!("echowire-worker-{i}"))
                    .spawn(move || {
                        for job in rx {
                            if !job.state.try_start() {
                                // Cancelled while queued: the owner already answered.
                                admitted.fetch_sub(1, Ordering::AcqRel);
                                continue;
                            }
                            let response = (job.work)();
                            counters.jobs_completed.fetch_add(1, Ordering::Relaxed);
                            // The place is free before the reply, so a client that sends its
                            // next request on reading this one's result finds it free.
                            admitted.fetch_sub(1, Ordering::AcqRel);
                            (job.reply)(response);
                        }
                    })?,
            );
        }
        Ok(Pool {
            tx: Some(tx),
            threads: handles,
            admitted,
            capacity,
        })
    }

    /// Queues a job, or gives it back if the queue is full (answer BUSY).
    pub fn submit(&self, job: Job) -> Result<(), Job> {
        let Some(tx) = &self.tx else { return Err(job) };
        let admit = self
            .admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.capacity).then_some(n + 1)
            });
        if admit.is_err() {
            return Err(job);
        }
        tx.try_send(job).map_err(|e| {
            self.admitted.fetch_sub(1, Ordering::AcqRel);
            match e {
                TrySendError::Full(j) | TrySendError::Disconnected(j) => j,
            }
        })
    }

    /// Jobs waiting for a worker.
    pub fn queued(&self) -> usize {
        self.tx.as_ref().map_or(0, |t| t.len())
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.tx.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
