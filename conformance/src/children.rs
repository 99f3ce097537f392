//! The processes the runner starts (`--exec` targets, client drivers): each is spawned as the
//! leader of a process group of its own, and registered here while it runs, so that
//!
//! * stopping one stops everything it started (a shell script's children, a server's workers):
//!   signals go to the group, not only to the process the runner knows;
//! * an interrupted run (SIGINT, SIGTERM) can stop and reap every one of them before it exits
//!   ([`stop_all`]), leaving no orphan behind.
//!
//! A group of its own also means the terminal's Ctrl-C reaches the runner alone: the runner
//! decides how its targets stop (a drain the case is in the middle of is not the user's
//! interrupt).

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;

/// Process groups started and not yet reaped.
static GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Makes `command` start a process group of its own (call before `spawn`).
pub fn own_group(command: &mut Command) -> &mut Command {
    command.process_group(0)
}

/// Registers a started child (the leader of its group).
pub fn register(pid: u32) {
    tracing::debug!(pid, "started a process (group leader)");
    if let Ok(pid) = i32::try_from(pid) {
        GROUPS.lock().unwrap_or_else(|p| p.into_inner()).push(pid);
    }
}

/// Forgets a child its owner has reaped.
pub fn forget(pid: u32) {
    let mut g = GROUPS.lock().unwrap_or_else(|p| p.into_inner());
    g.retain(|&p| i64::from(p) != i64::from(pid));
}

/// Sends `sig` to the child's whole group.
pub fn signal_group(pid: u32, sig: Signal) -> std::io::Result<()> {
    let pid = i32::try_from(pid).map_err(|_| std::io::Error::other("pid out of range"))?;
    killpg(Pid::from_raw(pid), sig).map_err(std::io::Error::from)
}

/// Stops every registered group: SIGTERM, up to `grace` for the leaders to exit, then SIGKILL;
/// reaps the leaders. Returns how many groups were still running. For an interrupted run about
/// to exit (the owners' destructors will not run).
pub fn stop_all(grace: Duration) -> usize {
    let groups: Vec<i32> = std::mem::take(&mut *GROUPS.lock().unwrap_or_else(|p| p.into_inner()));
    tracing::info!(?groups, "stopping every process group the runner started");
    for &g in &groups {
        let _ = killpg(Pid::from_raw(g), Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    let mut left: Vec<i32> = groups.clone();
    while !left.is_empty() && Instant::now() < deadline {
        left.retain(|&g| {
            matches!(
                waitpid(Pid::from_raw(g), Some(WaitPidFlag::WNOHANG)),
                Ok(nix::sys::wait::WaitStatus::StillAlive)
            )
        });
        if !left.is_empty() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    for &g in &groups {
        // The leader may be gone while what it started is not: the whole group, always.
        let _ = killpg(Pid::from_raw(g), Signal::SIGKILL);
    }
    for &g in &left {
        let _ = waitpid(Pid::from_raw(g), None);
    }
    groups.len()
}
