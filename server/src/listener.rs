//! Binding listeners (TCP and Unix-domain), stale socket files, peer credentials.
//!
//! * TCP: `SO_REUSEADDR` (restart without waiting out TIME_WAIT), non-blocking, backlog 1024.
//! * Unix: first an exclusive `flock` on `PATH.lock` (created if missing). A clean stop removes
//!   it while still holding the lock; so that a server which opened the file just before could
//!   not go on holding a lock on a file no longer at the path (two servers would then both hold
//!   "the" lock), a server that got the lock checks that the file it locked is still the one at
//!   `PATH.lock` (same device and inode) and otherwise starts over. Without the lock, two servers started at once on the same stale path could both find it stale,
//!   both unlink and bind, and one would be left listening on a socket file that no longer
//!   exists. Under the lock, an existing file at the path is removed only if it is a socket
//!   *and* connecting to it is refused (nobody accepts on it: a crashed server's leftover). A
//!   live socket or any other file is an error. The new socket's mode is set explicitly (spec
//!   §8.5). The lock is held as long as the listener lives — in this process, or in the one it
//!   is handed to at a restart (the lock's descriptor travels with the socket's).
//! * Peer credentials come from `SO_PEERCRED` through `nix` (no `unsafe` here).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use socket2::{Domain, Socket, Type};

/// An address to listen on, as given on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    /// `HOST:PORT` (`127.0.0.1:7878`, `[::1]:0`).
    Tcp(SocketAddr),
    /// `unix:/path/to.sock`.
    Unix(PathBuf),
}

impl FromStr for ListenAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a path, e.g. unix:/tmp/echowire.sock".into());
            }
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        s.parse::<SocketAddr>()
            .map(ListenAddr::Tcp)
            .map_err(|e| format!("{s:?} is neither HOST:PORT nor unix:/path ({e})"))
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "{a}"),
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// A bound listener, before it is handed to an I/O model.
#[derive(Debug)]
pub enum Bound {
    /// TCP.
    Tcp(std::net::TcpListener),
    /// Unix-domain; the path is removed when the server stops (unless the listener was handed
    /// to a new server).
    Unix(std::os::unix::net::UnixListener, PathBuf, PathLock),
}

/// The lock on a Unix socket path (see the module docs); `None` for a listener inherited
/// without one (systemd socket activation: systemd owns the path).
#[derive(Debug, Clone)]
pub struct PathLock(pub Option<Arc<nix::fcntl::Flock<std::fs::File>>>);

impl Bound {
    /// The real bound address (port 0 resolved).
    pub fn addr(&self) -> io::Result<ListenAddr> {
        Ok(match self {
            Bound::Tcp(l) => ListenAddr::Tcp(l.local_addr()?),
            Bound::Unix(_, p, _) => ListenAddr::Unix(p.clone()),
        })
    }
}

/// The lock file of a Unix socket path: `PATH.lock`.
fn lock_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the lock on `path`'s lock file (`PATH.lock`), without waiting.
fn lock_path(path: &Path) -> io::Result<PathLock> {
    use std::os::unix::fs::MetadataExt;
    let name = lock_name(path);
    // A stopping server removes the file while holding the lock: what we locked may be gone
    // from the path by the time we hold it. Then lock the new file (a few rounds at most).
    for _ in 0..8 {
        let lock = lock_once(path, &name)?;
        let file: &std::fs::File = lock.0.as_deref().expect("locked");
        let (held, now) = (file.metadata()?, std::fs::metadata(&name));
        if let Ok(now) = now
            && (now.dev(), now.ino()) == (held.dev(), held.ino())
        {
            return Ok(lock);
        }
    }
    Err(io::Error::other(format!(
        "lock file {name:?} keeps being replaced; is another server starting and stopping on {}?",
        path.display()
    )))
}

fn lock_once(path: &Path, name: &Path) -> io::Result<PathLock> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(name)
        .map_err(|e| io::Error::new(e.kind(), format!("lock file {name:?}: {e}")))?;
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(locked) => Ok(PathLock(Some(Arc::new(locked)))),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "{} is claimed by another server (it holds {name:?})",
                path.display()
            ),
        )),
        Err((_, e)) => Err(io::Error::from(e)),
    }
}

/// The kernel buffer sizes a connection gets ([`set_socket_buffers`]): half the per-connection
/// cap each way, within 64 KiB ..= 8 MiB.
pub fn socket_buffer_size(max_connection_memory: usize) -> usize {
    (max_connection_memory / 2).clamp(64 * 1024, 8 << 20)
}

/// Bounds the kernel buffers of the connections a listener accepts (they inherit `SO_SNDBUF`
/// and `SO_RCVBUF` from it): without it the kernel grows them by itself to several MiB per
/// connection — for a client that does not read, memory the server's budget does not see.
/// Linux doubles the value for its own bookkeeping.
pub fn set_socket_buffers(b: &Bound, bytes: usize) -> io::Result<()> {
    let sock = match b {
        Bound::Tcp(l) => socket2::SockRef::from(l),
        Bound::Unix(l, _, _) => socket2::SockRef::from(l),
    };
    sock.set_send_buffer_size(bytes)?;
    sock.set_recv_buffer_size(bytes)
}

/// Binds `addr`.
pub fn bind(addr: &ListenAddr, socket_mode: u32) -> io::Result<Bound> {
    bind_opts(addr, socket_mode, false)
}

/// Binds `addr`; with `reuseport`, a TCP socket gets `SO_REUSEPORT` so that more sockets can
/// bind the same address ([`bind_reuseport_tcp`]) and the kernel spreads connections over them.
pub fn bind_opts(addr: &ListenAddr, socket_mode: u32, reuseport: bool) -> io::Result<Bound> {
    match addr {
        ListenAddr::Tcp(a) => Ok(Bound::Tcp(bind_tcp(*a, reuseport)?)),
        ListenAddr::Unix(path) => {
            let lock = lock_path(path)?;
            remove_stale_socket(path)?;
            let listener = std::os::unix::net::UnixListener::bind(path)?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(socket_mode))?;
            Ok(Bound::Unix(listener, path.clone(), lock))
        }
    }
}

/// Another `SO_REUSEPORT` socket on the address of a listener bound with it.
pub fn bind_reuseport_tcp(a: SocketAddr) -> io::Result<std::net::TcpListener> {
    bind_tcp(a, true)
}

fn bind_tcp(a: SocketAddr, reuseport: bool) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(a), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if reuseport {
        socket.set_reuse_port(true)?;
    }
    if a.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&a.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// A Unix listener's end: its socket file is removed and its path lock released — unless the
/// listener was handed to a successor, which now owns both (the lock must then not be released:
/// it belongs to the open file description the successor shares).
pub fn release_unix(path: &Path, lock: PathLock, handed_over: bool) {
    if handed_over {
        std::mem::forget(lock);
    } else {
        let _ = std::fs::remove_file(path);
        // Removed while held (see `lock_path` for why that is safe); a listener without a lock
        // (socket activation) has no lock file of ours.
        if lock.0.is_some() {
            let _ = std::fs::remove_file(lock_name(path));
        }
        drop(lock);
    }
}

/// Removes `path` if it is a socket nobody accepts on; errors if it is live or not a socket.
pub fn remove_stale_socket(path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not a socket; not removing it",
                path.display()
            ),
        ));
    }
    match StdUnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("{} is in use by a live server", path.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "removing stale socket file");
            std::fs::remove_file(path)
        }
        Err(e) => Err(e),
    }
}

/// The peer's uid on a Unix-domain socket (`SO_PEERCRED`).
pub fn peer_uid(fd: &impl std::os::fd::AsFd) -> io::Result<u32> {
    let cred = nix::sys::socket::getsockopt(fd, nix::sys::socket::sockopt::PeerCredentials)
        .map_err(io::Error::from)?;
    Ok(cred.uid())
}

/// The peer of a Unix-domain socket for logs: `unix peer pid P uid U gid G`, the process and
/// user the kernel reports (`SO_PEERCRED`, taken when the peer connected), which is what an
/// operator needs to find it; a socket has no address to show.
pub fn unix_peer(fd: &impl std::os::fd::AsFd) -> String {
    match nix::sys::socket::getsockopt(fd, nix::sys::socket::sockopt::PeerCredentials) {
        Ok(c) => format!("unix peer pid {} uid {} gid {}", c.pid(), c.uid(), c.gid()),
        Err(e) => format!("unix peer (credentials unknown: {e})"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_unix_peer_is_named_by_its_process_and_user() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().expect("a socket pair");
        let peer = super::unix_peer(&a);
        let uid = super::peer_uid(&a).expect("SO_PEERCRED");
        assert_eq!(
            peer,
            format!(
                "unix peer pid {} uid {uid} gid {}",
                std::process::id(),
                nix::unistd::getgid()
            )
        );
    }
}
