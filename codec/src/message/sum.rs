//! SUM (0x0C) and SUM_RESULT (0x0D): add up a list of integers (spec §4.10).
//!
//! SUM is the request with two body forms: the standard encoding, and — with the RKYV flag, once
//! the `RKYV` capability is negotiated — the archived form of spec §6.9, read in place by the
//! receiver ([`crate::body::archive`]). With the feature `rkyv`, [`Sum`] also derives rkyv's
//! traits: rkyv writes and validates exactly that layout (see `tests/rkyv_rules.rs`).

use serde::{Deserialize, Serialize};

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

super::plain_body!(Sum, SumResult);

impl Sum {
    /// The SUM in its archived form (spec §6.9.2, client side): the canonical archive of its
    /// values, sent with the RKYV flag once the capability is negotiated.
    pub fn archived(&self) -> Result<super::RkyvBody<bytes::Bytes>, crate::error::BodyError> {
        let mut archive = Vec::with_capacity(crate::body::archive::sum_len(self.values.len()));
        crate::body::archive::write_sum(&self.values, &mut archive)?;
        Ok(super::RkyvBody {
            archive: bytes::Bytes::from(archive),
        })
    }
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

#[cfg(feature = "rkyv")]
impl Sum {
    /// Archives the SUM with rkyv: the same octets as the canonical form of spec §6.9.2
    /// ([`crate::body::archive::write_sum`]), as `tests/rkyv_rules.rs` checks.
    pub fn to_rkyv(&self) -> Result<rkyv::util::AlignedVec, crate::error::BodyError> {
        crate::body::rkyv::encode(self)
    }

    /// Reads an archived SUM through rkyv's own validation (the protocol path is
    /// [`crate::body::archive::check_sum`], which needs no library and no copy).
    pub fn with_rkyv<R>(
        body: &[u8],
        f: impl FnOnce(&ArchivedSum) -> R,
    ) -> Result<R, crate::error::BodyError> {
        crate::body::rkyv::with_archived::<ArchivedSum, R>(body, f)
    }
}

#[cfg(all(test, feature = "rkyv"))]
mod tests {
    use super::*;

    #[test]
    fn round_trip_at_every_alignment() {
        let sum = Sum {
            values: vec![1, -2, 3, i64::MAX],
        };
        let archive = sum.to_rkyv().unwrap();
        let mut buf = vec![0u8; archive.len() + 32];
        for shift in 0..16 {
            buf[shift..shift + archive.len()].copy_from_slice(&archive);
            let body = &buf[shift..shift + archive.len()];
            let values = Sum::with_rkyv(body, |a| {
                a.values.iter().map(|v| v.to_native()).collect::<Vec<_>>()
            });
            assert_eq!(values.unwrap(), sum.values, "shift {shift}");
        }
    }

    #[test]
    fn truncated_and_garbage_archives_are_rejected() {
        let archive = Sum {
            values: vec![5; 10],
        }
        .to_rkyv()
        .unwrap();
        for cut in 0..archive.len() {
            // Any strict prefix moves the root; validation must never accept out-of-bounds data.
            let r = Sum::with_rkyv(&archive[..cut], |a| a.values.len());
            if let Ok(n) = r {
                assert!(n * 8 <= cut, "accepted {n} values from {cut} bytes");
            }
        }
        assert!(Sum::with_rkyv(&[0xFF; 8], |_| ()).is_err());
    }
}
