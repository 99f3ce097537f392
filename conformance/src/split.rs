//! Byte-split strategies: how the client's bytes are cut into writes.
//!
//! Every case runs under each requested strategy; a failure names the strategy and its seed, so
//! `--splits` with that one strategy and `--seed` replays it exactly.

use std::fmt;
use std::str::FromStr;

/// A split strategy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Each send step in one write.
    Whole,
    /// One byte per write.
    Bytewise,
    /// For every k, the first k bytes of the connection, then the rest (small cases; larger ones
    /// are sampled at up to 32 points).
    Boundaries,
    /// N seeded random chunkings.
    Random(u32),
    /// All of a case's requests merged into one write where the case allows it.
    Coalesced,
    /// Chunks with pauses between them (TCP_NODELAY on), so the server sees separate reads.
    Delayed,
}

impl FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "whole" => Strategy::Whole,
            "bytewise" => Strategy::Bytewise,
            "boundaries" => Strategy::Boundaries,
            "coalesced" => Strategy::Coalesced,
            "delayed" => Strategy::Delayed,
            r if r.starts_with("random:") => match r["random:".len()..].parse() {
                // random:0 would run each case zero times, and zero runs is not a pass.
                Ok(0) | Err(_) => {
                    return Err(format!("{r:?}: random:N needs a count of 1 or more"));
                }
                Ok(n) => Strategy::Random(n),
            },
            "random" => Strategy::Random(1),
            other => {
                return Err(format!(
                    "unknown split strategy {other:?} (whole, bytewise, boundaries, random:N, coalesced, delayed)"
                ));
            }
        })
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Strategy::Whole => f.write_str("whole"),
            Strategy::Bytewise => f.write_str("bytewise"),
            Strategy::Boundaries => f.write_str("boundaries"),
            Strategy::Random(n) => write!(f, "random:{n}"),
            Strategy::Coalesced => f.write_str("coalesced"),
            Strategy::Delayed => f.write_str("delayed"),
        }
    }
}

/// One concrete way to write a connection's bytes (a strategy expanded into runs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// One write per send.
    Whole,
    /// One byte per write.
    Bytewise,
    /// Split once at this connection offset.
    At(u64),
    /// Random chunk sizes from this seed.
    Random(u64),
    /// Sends merged (the executor merges; the writer writes whole).
    Coalesced,
    /// Chunks with pauses, from this seed.
    Delayed(u64),
}

impl fmt::Display for Cut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cut::Whole => f.write_str("whole"),
            Cut::Bytewise => f.write_str("bytewise"),
            Cut::At(k) => write!(f, "boundaries k={k}"),
            Cut::Random(seed) => write!(f, "random seed={seed}"),
            Cut::Coalesced => f.write_str("coalesced"),
            Cut::Delayed(seed) => write!(f, "delayed seed={seed}"),
        }
    }
}

/// Chunk sizes for `len` bytes under a random cut: 1..=32 bytes each.
pub fn random_chunks(rng: &mut rand_chacha::ChaCha8Rng, len: usize, max: usize) -> Vec<usize> {
    use rand_chacha::rand_core::Rng;
    let mut out = Vec::new();
    let mut left = len;
    while left > 0 {
        let n = (rng.next_u64() as usize % max.max(1)) + 1;
        let n = n.min(left);
        out.push(n);
        left -= n;
    }
    out
}
