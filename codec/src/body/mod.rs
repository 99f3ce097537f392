//! The spec's body encoding (§6) as a serde data format, and the rkyv body path (§6.9).
//!
//! | data model            | encoding                                              |
//! |-----------------------|-------------------------------------------------------|
//! | bool                  | 1 byte, 0 or 1                                        |
//! | u8..u128, i8..i128    | big-endian, fixed width, two's complement             |
//! | f32, f64              | IEEE 754 bits, big-endian                             |
//! | char                  | u32 Unicode scalar value                              |
//! | string, bytes         | u32 length, then that many bytes (strings: UTF-8)     |
//! | option                | u8 tag: 0 none, 1 some followed by the value          |
//! | unit, unit struct     | nothing                                               |
//! | sequence, map         | u32 element count, then the elements (map: key, value)|
//! | tuple, struct         | the fields in declaration order, no count             |
//! | enum                  | u32 variant index, then the variant's payload         |
//! | newtype struct        | the inner value                                       |
//!
//! Applications define their own message bodies (type codes `0x80..=0xFF`) with
//! `#[derive(Serialize, Deserialize)]`:
//!
//! ```
//! use std::borrow::Cow;
//! use serde::{Deserialize, Serialize};
//! use echowire_codec::body;
//!
//! #[derive(Serialize, Deserialize, Debug, PartialEq)]
//! struct Put<'a> {
//!     #[serde(borrow)]
//!     key: &'a str,
//!     #[serde(borrow, with = "body::cow_bytes")]
//!     value: Cow<'a, [u8]>,
//!     ttl: Option<u32>,
//! }
//!
//! let put = Put { key: "k", value: Cow::Borrowed(b"v"), ttl: Some(60) };
//! let bytes = body::to_vec(&put).unwrap();
//! assert_eq!(bytes.len(), body::encoded_len(&put).unwrap());
//! assert_eq!(bytes, [0, 0, 0, 1, b'k', 0, 0, 0, 1, b'v', 1, 0, 0, 0, 60]);
//! let back: Put = body::from_bytes(&bytes).unwrap();
//! assert!(matches!(back.value, Cow::Borrowed(_))); // zero-copy
//! assert_eq!(back, put);
//! ```

pub mod archive;
mod de;
#[cfg(feature = "rkyv")]
pub mod rkyv;
mod ser;

pub use de::{DEFAULT_MAX_DEPTH, Deserializer, from_bytes, from_bytes_with_depth};
pub use ser::{Counter, Serializer, Sink, encoded_len, to_buf, to_vec};

/// serde helpers for `Cow<'a, [u8]>` byte-string fields: the body encoding's byte string
/// (borrowed on decode), or a lowercase hex string in human-readable formats (JSON vectors).
pub mod cow_bytes {
    use std::borrow::Cow;
    use std::fmt;

    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    /// Serializes a byte string.
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&hex::encode(v))
        } else {
            s.serialize_bytes(v)
        }
    }

    /// Deserializes a byte string, borrowing when the format allows it.
    pub fn deserialize<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Cow<'a, [u8]>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Cow<'de, [u8]>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte string (hex in text formats)")
            }
            fn visit_borrowed_bytes<E: Error>(self, v: &'de [u8]) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_vec()))
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<Self::Value, E> {
                hex::decode(v).map(Cow::Owned).map_err(E::custom)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(b) = seq.next_element()? {
                    out.push(b);
                }
                Ok(Cow::Owned(out))
            }
        }
        if d.is_human_readable() {
            d.deserialize_str(V)
        } else {
            d.deserialize_bytes(V)
        }
    }
}

/// serde helpers for `[u8; 32]` fields (digests): 32 raw bytes with no length prefix, or hex in
/// human-readable formats.
pub mod hex32 {
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::ser::SerializeTuple;
    use serde::{Deserializer, Serializer};
    use std::fmt;

    /// Serializes the 32 bytes.
    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            return s.serialize_str(&hex::encode(v));
        }
        let mut t = s.serialize_tuple(32)?;
        for b in v {
            t.serialize_element(b)?;
        }
        t.end()
    }

    /// Deserializes the 32 bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = [u8; 32];
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("32 bytes (64 hex digits in text formats)")
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<Self::Value, E> {
                let bytes = hex::decode(v).map_err(E::custom)?;
                bytes
                    .try_into()
                    .map_err(|_| E::custom("expected exactly 32 bytes"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = [0u8; 32];
                for (i, slot) in out.iter_mut().enumerate() {
                    *slot = seq
                        .next_element()?
                        .ok_or_else(|| A::Error::invalid_length(i, &self))?;
                }
                Ok(out)
            }
        }
        if d.is_human_readable() {
            d.deserialize_str(V)
        } else {
            d.deserialize_tuple(32, V)
        }
    }
}
