//! COMPUTE (0x07) and COMPUTE_RESULT (0x08): a deterministic CPU-heavy request (spec §4.6).
//!
//! The digest is SHA-256 iterated `cost` times over the seed:
//! `h(1) = SHA-256(seed)`, `h(i) = SHA-256(h(i-1))`, result `h(cost)`.
//! `cost` MUST be in `1..=MAX_COMPUTE_COST`; otherwise the server answers INVALID_ARGUMENT.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::octets::{FromOctets, serde_octets};
use crate::body::hex32;

/// Largest `cost` a COMPUTE may ask for (2^24, several seconds of CPU).
pub const MAX_COMPUTE_COST: u32 = 1 << 24;

/// COMPUTE, client → server, a request.
///
/// | field  | type  | meaning                                |
/// |--------|-------|----------------------------------------|
/// | `cost` | u32   | SHA-256 iterations, `1..=2^24`         |
/// | `seed` | bytes | input of the first iteration           |
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "B: FromOctets<'de>", serialize = "B: AsRef<[u8]>"))]
pub struct Compute<B = Bytes> {
    /// Number of SHA-256 iterations.
    pub cost: u32,
    /// Input of the first iteration.
    #[serde(with = "serde_octets")]
    pub seed: B,
}

/// COMPUTE_RESULT, server → client. | `digest` | 32 bytes, no length prefix | `h(cost)` |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ComputeResult {
    /// The final digest.
    #[serde(with = "hex32")]
    pub digest: [u8; 32],
}

super::octets_body!(Compute { cost, seed: B });
super::plain_body!(ComputeResult);

impl<B> Compute<B> {
    /// Whether `cost` is in the allowed range.
    pub fn cost_is_valid(&self) -> bool {
        (1..=MAX_COMPUTE_COST).contains(&self.cost)
    }
}

/// The COMPUTE function: SHA-256 iterated `cost` times over `seed` (`cost` 0 returns
/// SHA-256 of nothing iterated zero times, i.e. the seed is not hashed: callers validate first).
///
/// ```
/// use echowire_codec::message::compute_digest;
/// use sha2::{Digest, Sha256};
/// let once = compute_digest(1, b"abc");
/// assert_eq!(once.as_slice(), Sha256::digest(b"abc").as_slice());
/// let twice = compute_digest(2, b"abc");
/// assert_eq!(twice.as_slice(), Sha256::digest(once).as_slice());
/// ```
pub fn compute_digest(cost: u32, seed: &[u8]) -> [u8; 32] {
    let mut digest: [u8; 32] = Sha256::digest(seed).into();
    for _ in 1..cost {
        digest = Sha256::digest(digest).into();
    }
    digest
}
