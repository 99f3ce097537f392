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
//!   the *end* of the slice, so trailing bytes would change what is decoded.
//! * **Alignment.** rkyv reads archives in place with aligned loads, so a body whose address is
//!   not a multiple of [`ARCHIVE_ALIGN`] is first copied into an [`AlignedVec`]. (The protocol's
//!   own archived SUM does not come through here: [`super::archive`] reads it with byte loads,
//!   wherever it lies, without a copy.)
//! * **Errors.** rkyv's own error text never leaves this module: a rejected archive is
//!   [`BodyErrorKind::Invalid`] with a fixed message, so nothing of the library's internals can
//!   reach the wire.
//!
//! This module is for applications that archive their own types with rkyv, and for the tests
//! that hold rkyv and spec §6.9 to each other.

use rkyv::rancor;
use rkyv::util::AlignedVec;

use crate::error::{BodyError, BodyErrorKind};

/// Alignment an archive is laid out for (rkyv's `AlignedVec` default).
pub const ARCHIVE_ALIGN: usize = 16;

/// Archives any rkyv-serializable value with the format features pinned by this crate.
pub fn encode<T>(value: &T) -> Result<AlignedVec, BodyError>
where
    T: for<'a> rkyv::Serialize<
            rkyv::api::high::HighSerializer<
                AlignedVec,
                rkyv::ser::allocator::ArenaHandle<'a>,
                rancor::Error,
            >,
        >,
{
    rkyv::to_bytes::<rancor::Error>(value).map_err(|_| {
        BodyError::new(BodyErrorKind::Invalid(
            "rkyv could not archive the value".into(),
        ))
    })
}

/// Validates `body` as an archived `T` and runs `f` on it, copying `body` to an aligned buffer
/// first if it is misaligned (see the module docs). Never reads an unvalidated archive.
pub fn with_archived<T, R>(body: &[u8], f: impl FnOnce(&T) -> R) -> Result<R, BodyError>
where
    T: rkyv::Portable
        + for<'a> rkyv::bytecheck::CheckBytes<rkyv::api::high::HighValidator<'a, rancor::Error>>,
{
    let invalid = |_: rancor::Error| {
        BodyError::at(
            BodyErrorKind::Invalid("the archive failed validation".into()),
            0,
        )
    };
    if (body.as_ptr() as usize).is_multiple_of(ARCHIVE_ALIGN) {
        return rkyv::access::<T, rancor::Error>(body)
            .map(f)
            .map_err(invalid);
    }
    let mut aligned: AlignedVec<ARCHIVE_ALIGN> = AlignedVec::with_capacity(body.len());
    aligned.extend_from_slice(body);
    rkyv::access::<T, rancor::Error>(&aligned)
        .map(f)
        .map_err(invalid)
}
