//! Zero-downtime restart: a running server hands its listening sockets to a newly started one
//! over a Unix socket (`SCM_RIGHTS`), then drains and exits; and listening sockets inherited
//! from systemd socket activation (`LISTEN_FDS`).
//!
//! **The hand-over** (`--handover PATH`). A server started with it listens for a successor on
//! the control socket `PATH`. A new server started with the same `--handover PATH` connects
//! there first:
//!
//! ```text
//!  new                                         old
//!   | ---- "TAKE 1\n" ------------------------> |
//!   | <--- listener lines + SCM_RIGHTS fds ---- |  the listening sockets (and Unix path locks)
//!   |   starts serving on them                  |  both accept from the same kernel queues
//!   | ---- "READY\n" -----------------------> |
//!   |                                           |  stops accepting, unlinks PATH, drains
//!   | <--- "RELEASED\n" ----------------------- |
//!   |   binds PATH for its own successor        |  ... finishes its connections, exits 0
//! ```
//!
//! The listening sockets are never closed in between — the kernel keeps completing connections
//! into their queues, and whichever process accepts serves them — so no connection attempt is
//! refused during the hand-over. The old server leaves Unix socket files in place and does not
//! release their path locks (the lock belongs to the open file description, which the new
//! server now shares). If nobody listens on `PATH` (first start, or a stale file), the server
//! binds `--listen` as usual.
//!
//! **systemd** (`LISTEN_PID` = this process, `LISTEN_FDS` = n): descriptors 3 .. 3+n are the
//! listening sockets; they replace `--listen`. They are read first thing in `main`, before the
//! process opens a descriptor of its own, and each is checked (open, a listening stream socket
//! of IPv4, IPv6 or Unix) before any is taken ([`from_systemd`]); any mistake is exit 2.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

use crate::listener::{Bound, PathLock};

/// Most listeners one hand-over carries.
const MAX_LISTENERS: usize = 64;
/// How long either side waits for the other's next message.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a new server waits for the running one's first answer: a peer on the control path
/// that does not speak the hand-over is named as such this soon.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// Checks `--handover PATH` before the server starts: its directory exists and is writable (the
/// server binds its control socket there), and `PATH`, if it exists, is a socket.
pub fn check_path(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {}
        Ok(m) if m.is_dir() => {
            return Err(format!(
                "{} is a directory, not a socket path",
                path.display()
            ));
        }
        Ok(_) => return Err(format!("{} exists and is not a socket", path.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", path.display())),
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    nix::unistd::access(
        dir,
        nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK,
    )
    .map_err(|e| format!("cannot create the control socket in {}: {e}", dir.display()))
}

/// The listening sockets received from a running server, and the connection to it.
#[derive(Debug)]
pub struct Taken {
    /// The listeners, in the old server's order.
    pub listeners: Vec<Bound>,
    conn: UnixStream,
}

/// Connects to a running server's control socket at `path` and takes its listeners. `Ok(None)`:
/// nobody is listening there (start normally).
pub fn take(path: &Path) -> io::Result<Option<Taken>> {
    let mut conn = match UnixStream::connect(path) {
        Ok(c) => c,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    conn.set_read_timeout(Some(ANSWER_TIMEOUT))?;
    conn.set_write_timeout(Some(ANSWER_TIMEOUT))?;
    conn.write_all(b"TAKE 1\n")?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut space = nix::cmsg_space!([RawFd; 2 * MAX_LISTENERS]);
    let (n, fds) = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(|e| match e {
            nix::Error::EAGAIN => io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the peer on the control socket did not answer the hand-over within {} s \
                     (no Echowire server listens there?)",
                    ANSWER_TIMEOUT.as_secs()
                ),
            ),
            e => io::Error::from(e),
        })?;
        if msg.bytes == 0 {
            return Err(bad(
                "the peer on the control socket closed without answering",
            ));
        }
        let mut fds = Vec::new();
        for c in msg.cmsgs().map_err(io::Error::from)? {
            if let ControlMessageOwned::ScmRights(raw) = c {
                fds.extend(raw.into_iter().map(owned));
            }
        }
        (msg.bytes, fds)
    };
    let text =
        std::str::from_utf8(&buf[..n]).map_err(|_| bad("the listener description is not UTF-8"))?;
    let mut fds = fds.into_iter();
    let mut listeners = Vec::new();
    for line in text.lines() {
        let mut fd = || {
            fds.next()
                .ok_or_else(|| bad("fewer descriptors than listeners"))
        };
        match line.split_once(' ') {
            Some(("tcp", _)) => {
                listeners.push(Bound::Tcp(std::net::TcpListener::from(fd()?)));
            }
            Some(("unix", rest)) => {
                let (locked, path) = rest
                    .split_once(' ')
                    .ok_or_else(|| bad("unix line without a path"))?;
                let listener = UnixListener::from(fd()?);
                let lock = if locked == "locked" {
                    let file = std::fs::File::from(fd()?);
                    // The old server holds this lock on the same open file description; taking
                    // it again through our descriptor succeeds at once and keeps it ours.
                    let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
                        .map_err(|(_, e)| io::Error::from(e))?;
                    PathLock(Some(Arc::new(lock)))
                } else {
                    PathLock(None)
                };
                listeners.push(Bound::Unix(listener, PathBuf::from(path), lock));
            }
            _ => return Err(bad(&format!("unexpected line {line:?}"))),
        }
    }
    if listeners.is_empty() {
        return Err(bad("the running server has no listeners"));
    }
    conn.set_read_timeout(Some(STEP_TIMEOUT))?;
    conn.set_write_timeout(Some(STEP_TIMEOUT))?;
    Ok(Some(Taken { listeners, conn }))
}

impl Taken {
    /// Tells the old server that this one accepts now; waits until it has stopped accepting and
    /// given up the control socket's path.
    pub fn confirm(mut self) -> io::Result<()> {
        self.conn.write_all(b"READY\n")?;
        let mut answer = [0u8; 9];
        self.conn.read_exact(&mut answer)?;
        if &answer != b"RELEASED\n" {
            return Err(bad("the old server did not release"));
        }
        Ok(())
    }
}

/// A descriptor the kernel just installed for us.
#[allow(unsafe_code)]
fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` came out of an SCM_RIGHTS control message that `recvmsg` just received: the
    // kernel installed it in this process's descriptor table for this message alone, so it is
    // open and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("hand-over: {what}"))
}

/// What the offering side sends: one line per listener and their descriptors (plus the path
/// locks' descriptors).
#[derive(Debug)]
pub struct Offer {
    lines: String,
    fds: Vec<OwnedFd>,
}

impl Offer {
    /// Duplicates the descriptors of `listeners` (the server keeps its own).
    pub fn new(listeners: &[Bound]) -> io::Result<Offer> {
        let mut lines = String::new();
        let mut fds = Vec::new();
        for l in listeners {
            match l {
                Bound::Tcp(t) => {
                    lines.push_str(&format!("tcp {}\n", t.local_addr()?));
                    fds.push(t.as_fd().try_clone_to_owned()?);
                }
                Bound::Unix(u, path, lock) => {
                    fds.push(u.as_fd().try_clone_to_owned()?);
                    let locked = match &lock.0 {
                        Some(f) => {
                            fds.push(f.as_fd().try_clone_to_owned()?);
                            "locked"
                        }
                        None => "unlocked",
                    };
                    lines.push_str(&format!("unix {locked} {}\n", path.display()));
                }
            }
        }
        Ok(Offer { lines, fds })
    }
}

/// The control socket on which a running server waits for its successor.
#[derive(Debug)]
pub struct Control {
    listener: UnixListener,
    path: PathBuf,
}

impl Control {
    /// Binds the control socket at `path` (a stale file is replaced; a live one is an error).
    pub fn bind(path: &Path) -> io::Result<Control> {
        crate::listener::remove_stale_socket(path)?;
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        Ok(Control {
            listener,
            path: path.to_owned(),
        })
    }

    /// Waits for a successor and hands `offer` to it. Returns once the successor accepts on
    /// the listeners; the caller must then stop accepting and call [`Handing::release`]. An
    /// offer taken out of `offer` meanwhile (the server is shutting down: its listeners must
    /// close with it) ends the wait with an error at the next attempt.
    pub fn wait(&self, offer: &std::sync::Mutex<Option<Offer>>) -> io::Result<Handing> {
        loop {
            let (mut conn, _) = self.listener.accept()?;
            let guard = offer.lock().unwrap_or_else(|p| p.into_inner());
            let Some(offer) = guard.as_ref() else {
                return Err(bad("the server is shutting down"));
            };
            match Self::hand(&mut conn, offer) {
                Ok(()) => {
                    return Ok(Handing {
                        conn,
                        path: self.path.clone(),
                    });
                }
                Err(e) => tracing::warn!(error = %e, "hand-over attempt failed; still serving"),
            }
        }
    }

    fn hand(conn: &mut UnixStream, offer: &Offer) -> io::Result<()> {
        conn.set_read_timeout(Some(STEP_TIMEOUT))?;
        conn.set_write_timeout(Some(STEP_TIMEOUT))?;
        let mut hello = [0u8; 7];
        conn.read_exact(&mut hello)?;
        if &hello != b"TAKE 1\n" {
            return Err(bad("unknown request"));
        }
        let raw: Vec<RawFd> = offer.fds.iter().map(|f| f.as_raw_fd()).collect();
        let iov = [IoSlice::new(offer.lines.as_bytes())];
        sendmsg::<()>(
            conn.as_raw_fd(),
            &iov,
            &[ControlMessage::ScmRights(&raw)],
            MsgFlags::empty(),
            None,
        )
        .map_err(io::Error::from)?;
        let mut ready = [0u8; 6];
        conn.read_exact(&mut ready)?;
        if &ready != b"READY\n" {
            return Err(bad("the successor did not confirm"));
        }
        Ok(())
    }
}

/// A hand-over in progress: the successor accepts; this server must stop.
#[derive(Debug)]
pub struct Handing {
    conn: UnixStream,
    path: PathBuf,
}

impl Handing {
    /// Gives up the control socket's path and tells the successor, which binds it next.
    pub fn release(mut self) -> io::Result<()> {
        let _ = std::fs::remove_file(&self.path);
        self.conn.write_all(b"RELEASED\n")
    }
}

/// Most sockets socket activation may pass (`LISTEN_FDS`).
pub const MAX_SYSTEMD_SOCKETS: usize = MAX_LISTENERS;

/// Listening sockets passed by systemd socket activation (`LISTEN_PID`, `LISTEN_FDS`), checked.
///
/// Call it first in `main`, before anything opens a descriptor: the passed sockets are 3, 4, …
/// and a descriptor this process opened itself (a signal pipe, a log file) must never be taken
/// for one. `Ok(None)`: `LISTEN_FDS` is not set. Every other mistake is an error that names it,
/// and no descriptor is taken unless all of them pass: `LISTEN_FDS` not a number in
/// 1..=[`MAX_SYSTEMD_SOCKETS`]; `LISTEN_PID` missing or not this process; a descriptor that is
/// not open, not a socket, not listening, not a stream socket, or of a family other than IPv4,
/// IPv6 or Unix.
pub fn from_systemd() -> Result<Option<Vec<Bound>>, String> {
    let Some(n) = std::env::var_os("LISTEN_FDS") else {
        return Ok(None);
    };
    let n = n.to_string_lossy().into_owned();
    let count = match n.trim().parse::<usize>() {
        Ok(c) if (1..=MAX_SYSTEMD_SOCKETS).contains(&c) => c,
        _ => {
            return Err(format!(
                "LISTEN_FDS={n:?}: socket activation passes 1 to {MAX_SYSTEMD_SOCKETS} sockets"
            ));
        }
    };
    let me = std::process::id();
    match std::env::var("LISTEN_PID") {
        Ok(p) if p.trim().parse::<u32>() == Ok(me) => {}
        Ok(p) => {
            return Err(format!(
                "LISTEN_FDS is set but LISTEN_PID={p:?} is not this process ({me}): the sockets \
                 were meant for another process"
            ));
        }
        Err(_) => {
            return Err(format!(
                "LISTEN_FDS={count} is set without LISTEN_PID (it must name this process, {me})"
            ));
        }
    }
    // 1. Every descriptor is open and a socket, before any is taken.
    const FIRST: RawFd = 3;
    for i in 0..count {
        let fd = FIRST + i as RawFd;
        match std::fs::read_link(format!("/proc/self/fd/{fd}")) {
            Ok(target) if target.to_string_lossy().starts_with("socket:") => {}
            Ok(target) => {
                return Err(format!(
                    "LISTEN_FDS={count}: descriptor {fd} is not a socket ({})",
                    target.display()
                ));
            }
            Err(_) => {
                return Err(format!(
                    "LISTEN_FDS={count}: descriptor {fd} is not open (socket activation passes \
                     descriptors 3 to {})",
                    FIRST + count as RawFd - 1
                ));
            }
        }
    }
    // 2. Take them, then check what kind of socket each is.
    let fds: Vec<OwnedFd> = (0..count).map(|i| inherited(FIRST + i as RawFd)).collect();
    let mut out = Vec::with_capacity(count);
    for (i, fd) in fds.into_iter().enumerate() {
        let n = FIRST + i as RawFd;
        use nix::sys::socket::{AddressFamily, SockType, SockaddrLike, SockaddrStorage};
        use nix::sys::socket::{getsockname, getsockopt, sockopt};
        let what = |e: nix::Error| format!("LISTEN_FDS={count}: descriptor {n}: {e}");
        if !getsockopt(&fd, sockopt::AcceptConn).map_err(what)? {
            return Err(format!(
                "LISTEN_FDS={count}: descriptor {n} is a socket that is not listening"
            ));
        }
        if getsockopt(&fd, sockopt::SockType).map_err(what)? != SockType::Stream {
            return Err(format!(
                "LISTEN_FDS={count}: descriptor {n} is not a stream socket"
            ));
        }
        let addr: SockaddrStorage = getsockname(fd.as_raw_fd()).map_err(what)?;
        // The descriptor stays open in this process only (not across an exec).
        let _ = nix::fcntl::fcntl(
            &fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
        match addr.family() {
            Some(AddressFamily::Inet | AddressFamily::Inet6) => {
                out.push(Bound::Tcp(std::net::TcpListener::from(fd)));
            }
            Some(AddressFamily::Unix) => {
                let u = UnixListener::from(fd);
                let path = u
                    .local_addr()
                    .ok()
                    .and_then(|a| a.as_pathname().map(Path::to_owned))
                    .unwrap_or_else(|| PathBuf::from(format!("(systemd socket {i})")));
                out.push(Bound::Unix(u, path, PathLock(None)));
            }
            other => {
                return Err(format!(
                    "LISTEN_FDS={count}: descriptor {n} is of family {other:?}; supported: IPv4, \
                     IPv6, Unix"
                ));
            }
        }
    }
    Ok(Some(out))
}

/// A descriptor passed by socket activation.
#[allow(unsafe_code)]
fn inherited(fd: RawFd) -> OwnedFd {
    // SAFETY: `from_systemd` runs first in `main`, before this process opens any descriptor,
    // and has just seen in /proc/self/fd that `fd` is open and a socket; `LISTEN_PID` names this
    // process, so systemd passed it to us alone, and each descriptor is taken once.
    unsafe { OwnedFd::from_raw_fd(fd) }
}
