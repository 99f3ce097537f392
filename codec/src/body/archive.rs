//! Archived bodies (spec §6.9): SUM's in-place form, read and written from the spec's octet
//! layout, with no library and no copy.
//!
//! ```text
//!  0        p            p+8n          r=L-8       L-4        L
//!  | (pad)  | n x i64 LE values  | (pad) | rel_off i32 LE | count u32 LE |
//!                                        ^ root: the last 8 octets; p = r + rel_off
//! ```
//!
//! The spec fixes the layout and five validation rules (§6.9.3); [`check_sum`] applies them in
//! order and reads the values with `i64::from_le_bytes`, so the body's address in the receive
//! buffer does not matter and nothing is copied. The rkyv crate writes and validates the same
//! layout (with its features pinned as in this crate's manifest); `tests/rkyv_rules.rs` holds the
//! two to each other, and the feature `rkyv` exposes rkyv's own access path (`body::rkyv`) for
//! applications that archive their own types.
//!
//! What this module does not do: decide whether RKYV may be used (the flag and capability rules
//! are in [`crate::message`]).

use bytes::BufMut;

use crate::error::{BodyError, BodyErrorKind};

/// The octets of an archived SUM's root: `rel_off` (i32 LE) and `count` (u32 LE).
pub const ROOT_LEN: usize = 8;

/// A validated archived SUM, borrowing the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArchivedSum<'a> {
    values: &'a [u8],
}

impl<'a> ArchivedSum<'a> {
    /// Number of values.
    pub fn len(&self) -> usize {
        self.values.len() / 8
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The values, read in place.
    pub fn values(&self) -> impl ExactSizeIterator<Item = i64> + 'a {
        self.values
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
    }
}

pub use crate::error::ARCHIVE_RULES as RULES;

fn broken(rule: u8, offset: usize) -> BodyError {
    BodyError::at(BodyErrorKind::InvalidArchive { rule }, offset)
}

/// Validates `body` as an archived SUM (spec §6.9.3, rules checked in order) and returns a view
/// of its values. A failure names the rule and the body offset of the octets that break it.
pub fn check_sum(body: &[u8]) -> Result<ArchivedSum<'_>, BodyError> {
    let len = body.len();
    // Rule 1: room for the root.
    let Some(r) = len.checked_sub(ROOT_LEN) else {
        return Err(broken(1, 0));
    };
    // Rule 2: the root is aligned.
    if r % 4 != 0 {
        return Err(broken(2, r));
    }
    let word = |at: usize| [body[at], body[at + 1], body[at + 2], body[at + 3]];
    let rel_off = i32::from_le_bytes(word(r)) as i64;
    let count = u32::from_le_bytes(word(r + 4)) as u64;
    // Rule 3: the values start inside the body (i64 arithmetic: no overflow from an i32 offset).
    let p = r as i64 + rel_off;
    if p < 0 {
        return Err(broken(3, r));
    }
    // Rule 4: the values are aligned.
    if p % 8 != 0 {
        return Err(broken(4, r));
    }
    // Rule 5: the values end before the root (u64: 8 x u32::MAX cannot overflow).
    let (p, end) = (p as u64, p as u64 + 8 * count);
    if end > r as u64 {
        return Err(broken(5, r + 4));
    }
    Ok(ArchivedSum {
        values: &body[p as usize..end as usize],
    })
}

/// The length of the canonical archive of `n` values.
pub fn sum_len(n: usize) -> usize {
    8 * n + ROOT_LEN
}

/// Writes the canonical archive (spec §6.9.2): the values from offset 0, then the root.
/// `values.len()` must fit the root's u32 count and its i32 offset (under 2^28 values, far above
/// any frame limit); longer input is an error, not a wrong archive.
pub fn write_sum<B: BufMut>(values: &[i64], dst: &mut B) -> Result<(), BodyError> {
    let n = values.len();
    let rel_off = i32::try_from(8 * n as u64)
        .map_err(|_| BodyError::new(BodyErrorKind::Invalid(format!("{n} values is too many"))))?;
    for v in values {
        dst.put_i64_le(*v);
    }
    dst.put_i32_le(-rel_off);
    dst.put_u32_le(n as u32);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_round_trip_and_the_spec_example() {
        let mut b = Vec::new();
        write_sum(&[1, 2, 3], &mut b).unwrap();
        assert_eq!(
            hex::encode(&b),
            "010000000000000002000000000000000300000000000000e8ffffff03000000"
        );
        let a = check_sum(&b).unwrap();
        assert_eq!(a.values().collect::<Vec<_>>(), vec![1, 2, 3]);
        let mut empty = Vec::new();
        write_sum(&[], &mut empty).unwrap();
        assert_eq!(empty, [0; 8]);
        assert!(check_sum(&empty).unwrap().is_empty());
    }

    #[test]
    fn each_rule_is_named() {
        let rule = |b: &[u8]| match check_sum(b).unwrap_err().kind {
            BodyErrorKind::InvalidArchive { rule } => rule,
            k => panic!("{k:?}"),
        };
        assert_eq!(rule(&[0; 4]), 1);
        assert_eq!(rule(&[0; 10]), 2);
        assert_eq!(
            rule(&[1, 0, 0, 0, 0, 0, 0, 0, 0xf0, 0xff, 0xff, 0xff, 1, 0, 0, 0]),
            3
        );
        assert_eq!(rule(&[0; 12]), 4);
        assert_eq!(
            rule(&[0, 0, 0, 0, 0, 0, 0, 0, 0xf8, 0xff, 0xff, 0xff, 2, 0, 0, 0]),
            5
        );
        assert_eq!(
            rule(&[
                0, 0, 0, 0, 0, 0, 0, 0, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
            ]),
            5
        );
    }
}
