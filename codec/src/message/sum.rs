//! SUM (0x0C) and SUM_RESULT (0x0D): add up a list of integers (spec §4.10).
//!
//! SUM is the request with two body forms: the standard encoding, and — with the RKYV flag, once
//! the `RKYV` capability is negotiated — the archived form of spec §6.9, read in place by the
//! receiver ([`crate::body::archive`]). With the feature `rkyv`, [`Sum`] also derives rkyv's
//! traits: rkyv writes and validates exactly that layout (see `tests/rkyv_rules.rs`).

use serde::{Deserialize, Serialize};

use super::Body;
use crate::frame::MessageType;

/// SUM, client → server, a request. | `values` | sequence of i64 | the numbers to add |
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "rkyv",
    derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)
)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Sum {
    /// The numbers.
    pub values: Vec<i64>,
}

/// SUM_RESULT, server → client.
///
/// | field   | type | meaning                                     |
/// |---------|------|---------------------------------------------|
/// | `count` | u32  | how many values were added                  |
/// | `sum`   | i64  | their sum, wrapping on overflow (two's complement) |
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SumResult {
    /// Number of values.
    pub count: u32,
    /// Wrapping sum.
    pub sum: i64,
}

impl Body<'_> for Sum {
    const TYPE: MessageType = MessageType::Sum;
}

impl Body<'_> for SumResult {
    const TYPE: MessageType = MessageType::SumResult;
}

impl SumResult {
    /// The result for a list of values.
    pub fn of(values: impl IntoIterator<Item = i64>) -> Self {
        let mut out = SumResult::default();
        for v in values {
            out.count = out.count.wrapping_add(1);
            out.sum = out.sum.wrapping_add(v);
        }
        out
    }
}
