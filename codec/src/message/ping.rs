//! PING (0x03) and PONG (0x04): liveness and round-trip time (spec §4.4).

use serde::{Deserialize, Serialize};

/// PING, client → server, a request. | `data` | u64 | opaque, returned in the PONG |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Ping {
    /// Opaque value echoed in the PONG.
    pub data: u64,
}

/// PONG, server → client, the response to PING: the same `data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Pong {
    /// The PING's `data`.
    pub data: u64,
}

super::plain_body!(Ping, Pong);
