//! Admission: what the server decides about an accepted connection before reading a byte of it
//! — the same policy for every I/O model.
//!
//! In order: the connection is counted (accepted, open); a Unix-domain peer whose uid is not
//! allowed is refused with UNAUTHORIZED (spec §8.5); past `--max-connections` the connection is
//! refused with CONNECTION_LIMIT (spec §8.4). A refused connection is still served — its session
//! sends the ERROR and closes lingeringly — and counts against the limit until its socket closes
//! (spec §8.4, document 1.1).

use std::os::fd::BorrowedFd;
use std::sync::atomic::Ordering;

use echowire_codec::ErrorCode;

use crate::shared::Shared;

/// The transport of an accepted connection, as admission needs to see it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Peer<'a> {
    /// TCP: no credentials.
    Tcp,
    /// Unix-domain: credentials from the kernel (`SO_PEERCRED`).
    Unix(BorrowedFd<'a>),
}

/// Why a connection is refused: the ERROR code and its message.
pub(crate) type Refusal = (ErrorCode, String);

/// Counts an accepted connection and decides whether it is served or refused. The caller must
/// decrement `connections_open` when the socket closes, refused or not.
pub(crate) fn admit(shared: &Shared, peer: Peer<'_>) -> Option<Refusal> {
    let c = &shared.counters;
    c.connections_accepted.fetch_add(1, Ordering::Relaxed);
    let open = c.connections_open.fetch_add(1, Ordering::Relaxed) as usize;
    let refusal = check_credentials(&shared.config.allow_uids, peer).or_else(|| {
        let max = shared.config.max_connections;
        (open >= max).then(|| {
            (
                ErrorCode::CONNECTION_LIMIT,
                format!("server is at its limit of {max} connections"),
            )
        })
    });
    if let Some((code, msg)) = &refusal {
        c.connections_refused.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(code = %code, msg, "refusing connection");
    }
    refusal
}

/// Spec §8.5: over a Unix-domain socket, only the allowed uids (all, if the list is empty).
fn check_credentials(allowed: &[u32], peer: Peer<'_>) -> Option<Refusal> {
    let Peer::Unix(fd) = peer else { return None };
    if allowed.is_empty() {
        return None;
    }
    match crate::listener::peer_uid(&fd) {
        Ok(uid) if allowed.contains(&uid) => None,
        Ok(uid) => Some((ErrorCode::UNAUTHORIZED, format!("uid {uid} is not allowed"))),
        Err(e) => Some((
            ErrorCode::UNAUTHORIZED,
            format!("peer credentials unavailable: {e}"),
        )),
    }
}
