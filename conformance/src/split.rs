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
    /// Exactly this cut (`--cut-at`: the replay of one failing split).
    Exactly(Cut),
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
            Strategy::Exactly(c) => write!(f, "{c}"),
        }
    }
}

/// One concrete way to write a connection's bytes (a strategy expanded into runs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cut {
    /// One write per send.
    Whole,
    /// One byte per write.
    Bytewise,
    /// Split once at this connection offset.
    At(u64),
    /// Split at each of these connection offsets (ascending), with a pause between the pieces:
    /// the replay of a shrunk split (`--cut-at`).
    Set(std::sync::Arc<[u64]>),
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
            Cut::Set(ks) => {
                let list: Vec<String> = ks.iter().map(u64::to_string).collect();
                write!(f, "cut-at {}", list.join(","))
            }
            Cut::Random(seed) => write!(f, "random seed={seed}"),
            Cut::Coalesced => f.write_str("coalesced"),
            Cut::Delayed(seed) => write!(f, "delayed seed={seed}"),
        }
    }
}

impl Cut {
    /// Whether the cut writes a send in more than one piece at points it chose (the splits a
    /// failure can be shrunk from).
    pub fn is_multi(&self) -> bool {
        matches!(
            self,
            Cut::Bytewise | Cut::Random(_) | Cut::Delayed(_) | Cut::Set(_)
        )
    }
}

impl Cut {
    /// The sizes of the writes a send of `len` octets at stream `offset` is cut into. Shared by
    /// the server runner's writer thread and the client runner (which cuts the server's octets).
    pub fn chunk_sizes(
        &self,
        rng: &mut rand_chacha::ChaCha8Rng,
        offset: u64,
        len: usize,
    ) -> Vec<usize> {
        match self {
            Cut::Whole | Cut::Coalesced => vec![len],
            Cut::Bytewise => vec![1; len],
            Cut::At(k) if offset < *k && *k < offset + len as u64 => {
                let first = (k - offset) as usize;
                vec![first, len - first]
            }
            Cut::At(_) => vec![len],
            Cut::Set(ks) => {
                let end = offset + len as u64;
                let mut sizes = Vec::new();
                let mut at = offset;
                for &k in ks.iter().filter(|&&k| k > offset && k < end) {
                    sizes.push((k - at) as usize);
                    at = k;
                }
                sizes.push((end - at) as usize);
                sizes
            }
            Cut::Random(_) => random_chunks(rng, len, 32),
            Cut::Delayed(_) => random_chunks(rng, len, (len / 3).max(1)),
        }
    }

    /// Whether the pieces are written with a pause between them (so the peer reads them apart).
    pub fn pauses(&self) -> bool {
        matches!(self, Cut::Delayed(_) | Cut::At(_) | Cut::Set(_))
    }
}

/// Parses `--cut-at 13,27`: ascending, distinct, non-zero offsets.
pub fn parse_cut_set(s: &str) -> Result<Cut, String> {
    let mut ks = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let k: u64 = part
            .parse()
            .map_err(|_| format!("{part:?} is not an octet offset"))?;
        if k == 0 || ks.last().is_some_and(|&last| last >= k) {
            return Err(format!(
                "{s:?}: offsets must be ascending and above 0 (a cut after octet k)"
            ));
        }
        ks.push(k);
    }
    if ks.is_empty() {
        return Err("--cut-at needs at least one offset".into());
    }
    Ok(Cut::Set(ks.into()))
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
