//! The rkyv body path (spec §6.9), behind the `rkyv` feature.
//!
//! * **Format.** The spec (§6.9) defines the archived SUM body octet by octet: the values as
//!   little-endian i64 followed by an 8-octet root (`rel_off: i32`, `count: u32`), and five
//!   validation rules. rkyv 0.8 with the features pinned in this crate's manifest
//!   (`little_endian`, `aligned`, `pointer_width_32`) produces and checks exactly that layout;
//!   `tests/rkyv_rules.rs` holds rkyv to the spec's text, not the other way round. rkyv's layout
//!   depends on those features anywhere in the dependency graph, which is why the test exists.
//! * **Validation.** Network input is only ever read through [`rkyv::access`] with bytecheck
//!   validation, given exactly the body slice — never the unchecked path. rkyv finds the root at
//!   the *end* of the slice, so trailing bytes would change what is decoded; the frame's `Length`
//!   delimits the body exactly.
//! * **Alignment.** Archives are laid out for a buffer aligned to [`ARCHIVE_ALIGN`] bytes. A body
//!   sits at an arbitrary offset in the receive buffer (12 bytes after its frame's start, which is
//!   itself anywhere), so when the body's address is not a multiple of 16 it is first copied into
//!   an [`AlignedVec`]. That copy is the only one on this path; [`alignment_copies`] counts them so
//!   benchmarks and the server's STATS can report how often it happens.

use std::sync::atomic::{AtomicU64, Ordering};

use rkyv::rancor;
use rkyv::util::AlignedVec;

use crate::error::{BodyError, BodyErrorKind};
use crate::message::Sum;

pub use crate::message::ArchivedSum;

/// Alignment an archive is laid out for (rkyv's `AlignedVec` default).
pub const ARCHIVE_ALIGN: usize = 16;

static ALIGNMENT_COPIES: AtomicU64 = AtomicU64::new(0);
static IN_PLACE: AtomicU64 = AtomicU64::new(0);

/// How many archives had to be copied to an aligned buffer since the process started.
pub fn alignment_copies() -> u64 {
    ALIGNMENT_COPIES.load(Ordering::Relaxed)
}

/// How many archives were accessed in place, without a copy.
pub fn in_place_accesses() -> u64 {
    IN_PLACE.load(Ordering::Relaxed)
}

/// Archives a SUM body.
pub fn encode_sum(sum: &Sum) -> Result<AlignedVec, BodyError> {
    rkyv::to_bytes::<rancor::Error>(sum)
        .map_err(|e| BodyError::new(BodyErrorKind::Invalid(e.to_string())))
}

/// Validates `body` as an archived [`Sum`] and runs `f` on it, copying to an aligned buffer first
/// if `body` is misaligned (see the module docs).
pub fn with_archived_sum<R>(
    body: &[u8],
    f: impl FnOnce(&ArchivedSum) -> R,
) -> Result<R, BodyError> {
    let invalid = |e: rancor::Error| BodyError::at(BodyErrorKind::InvalidArchive(e.to_string()), 0);
    if (body.as_ptr() as usize).is_multiple_of(ARCHIVE_ALIGN) {
        IN_PLACE.fetch_add(1, Ordering::Relaxed);
        let archived = rkyv::access::<ArchivedSum, rancor::Error>(body).map_err(invalid)?;
        return Ok(f(archived));
    }
    ALIGNMENT_COPIES.fetch_add(1, Ordering::Relaxed);
    let mut aligned: AlignedVec<ARCHIVE_ALIGN> = AlignedVec::with_capacity(body.len());
    aligned.extend_from_slice(body);
    let archived = rkyv::access::<ArchivedSum, rancor::Error>(&aligned).map_err(invalid)?;
    Ok(f(archived))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_at_every_alignment() {
        let sum = Sum {
            values: vec![1, -2, 3, i64::MAX],
        };
        let archive = encode_sum(&sum).unwrap();
        let mut buf = vec![0u8; archive.len() + 32];
        for shift in 0..16 {
            buf[shift..shift + archive.len()].copy_from_slice(&archive);
            let body = &buf[shift..shift + archive.len()];
            let values = with_archived_sum(body, |a| {
                a.values.iter().map(|v| v.to_native()).collect::<Vec<_>>()
            });
            assert_eq!(values.unwrap(), sum.values, "shift {shift}");
        }
    }

    #[test]
    fn truncated_and_garbage_archives_are_rejected() {
        let archive = encode_sum(&Sum {
            values: vec![5; 10],
        })
        .unwrap();
        for cut in 0..archive.len() {
            // Any strict prefix moves the root; validation must never accept out-of-bounds data.
            let r = with_archived_sum(&archive[..cut], |a| a.values.len());
            if let Ok(n) = r {
                assert!(n * 8 <= cut, "accepted {n} values from {cut} bytes");
            }
        }
        assert!(with_archived_sum(&[0xFF; 8], |_| ()).is_err());
    }
}
