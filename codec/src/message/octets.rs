//! Where a message keeps its byte strings and strings: the `B` of [`Message<B>`](super::Message).
//!
//! A message is generic over its octet storage, in the manner of h2's `Frame<T = Bytes>`:
//!
//! * `&'a [u8]` — borrowed from a receive buffer: what the body decoder produces, with no copy
//!   and no reference count ([`super::decode_ref`]);
//! * [`Bytes`] (the default) — shared, owned: what a session hands its application, each field a
//!   slice of the frame it arrived in ([`super::decode`] maps the borrowed fields onto the
//!   frame's `Bytes`), and what an application answers with, so that a large payload is queued by
//!   reference instead of copied ([`Octets::shared`]);
//! * `Vec<u8>` — owned, for tests and generators.
//!
//! [`Message::map`](super::Message::map) turns one storage into another; it is generated from
//! the message table, so no conversion between two forms of a message is written by hand.
//! Strings are [`Str<B>`]: the same storage, checked to be UTF-8 when made.

use std::fmt;

use bytes::Bytes;
use serde::de::{SeqAccess, Visitor};
use serde::{Deserializer, Serialize, Serializer};

/// The storage of a message's byte fields.
pub trait Octets: AsRef<[u8]> {
    /// The field as a shared `Bytes`, if it is one: the output queue then appends it by
    /// reference instead of copying it (large payloads only, see
    /// [`crate::session::ZERO_COPY_MIN`]).
    fn shared(&self) -> Option<&Bytes> {
        None
    }
}

impl Octets for Bytes {
    fn shared(&self) -> Option<&Bytes> {
        Some(self)
    }
}

impl Octets for &[u8] {}

impl Octets for Vec<u8> {}

/// How a message's storage is made from what a deserializer gives: borrowed octets of the
/// input (the body encoding), or octets it had to produce (hex in JSON).
pub trait FromOctets<'de>: Sized {
    /// From octets that live as long as the input.
    fn from_borrowed(v: &'de [u8]) -> Self;
    /// From octets the deserializer produced; `None` where the storage can only borrow.
    fn from_owned(v: Vec<u8>) -> Option<Self>;
}

impl<'de> FromOctets<'de> for &'de [u8] {
    fn from_borrowed(v: &'de [u8]) -> Self {
        v
    }
    fn from_owned(_: Vec<u8>) -> Option<Self> {
        None
    }
}

impl FromOctets<'_> for Bytes {
    fn from_borrowed(v: &[u8]) -> Self {
        Bytes::copy_from_slice(v)
    }
    fn from_owned(v: Vec<u8>) -> Option<Self> {
        Some(Bytes::from(v))
    }
}

impl FromOctets<'_> for Vec<u8> {
    fn from_borrowed(v: &[u8]) -> Self {
        v.to_vec()
    }
    fn from_owned(v: Vec<u8>) -> Option<Self> {
        Some(v)
    }
}

/// A UTF-8 string kept in octet storage `B` (spec §6.3): checked when made, so reading it back
/// cannot fail.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Str<B = Bytes>(B);

impl<B: AsRef<[u8]>> Str<B> {
    /// The octets, if they are UTF-8.
    pub fn from_utf8(octets: B) -> Result<Self, std::str::Utf8Error> {
        std::str::from_utf8(octets.as_ref())?;
        Ok(Str(octets))
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        // Checked when made; `map` keeps the octets (a storage that changed them would read as
        // empty here, never as invalid UTF-8).
        std::str::from_utf8(self.0.as_ref()).unwrap_or_default()
    }

    /// Its length in octets.
    pub fn len(&self) -> usize {
        self.0.as_ref().len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<B> Str<B> {
    /// The storage.
    pub fn into_inner(self) -> B {
        self.0
    }

    /// The storage, borrowed.
    pub fn octets(&self) -> &B {
        &self.0
    }

    /// The same string in another storage. `f` must keep the octets (a slice of a buffer
    /// holding them, a copy).
    pub fn map<C>(self, f: &mut impl FnMut(B) -> C) -> Str<C> {
        Str(f(self.0))
    }
}

impl Str<Bytes> {
    /// A string from a `'static` literal, without a copy.
    pub const fn from_static(s: &'static str) -> Self {
        Str(Bytes::from_static(s.as_bytes()))
    }
}

impl From<String> for Str<Bytes> {
    fn from(s: String) -> Self {
        Str(Bytes::from(s))
    }
}

impl From<&str> for Str<Bytes> {
    fn from(s: &str) -> Self {
        Str(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<String> for Str<Vec<u8>> {
    fn from(s: String) -> Self {
        Str(s.into_bytes())
    }
}

impl From<&str> for Str<Vec<u8>> {
    fn from(s: &str) -> Self {
        Str(s.as_bytes().to_vec())
    }
}

impl<'a> From<&'a str> for Str<&'a [u8]> {
    fn from(s: &'a str) -> Self {
        Str(s.as_bytes())
    }
}

/// Octets shown as a byte-string literal (`b"ab\x01"`), as `Bytes` shows itself.
pub(crate) struct ShowOctets<'a>(pub &'a [u8]);

impl fmt::Debug for ShowOctets<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&Bytes::copy_from_slice(self.0), f)
    }
}

impl<B: AsRef<[u8]>> fmt::Debug for Str<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<B: AsRef<[u8]>> fmt::Display for Str<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<B: AsRef<[u8]>> PartialEq<str> for Str<B> {
    fn eq(&self, other: &str) -> bool {
        self.0.as_ref() == other.as_bytes()
    }
}

impl<B: AsRef<[u8]>> PartialEq<&str> for Str<B> {
    fn eq(&self, other: &&str) -> bool {
        self.0.as_ref() == other.as_bytes()
    }
}

impl<B: AsRef<[u8]>> Serialize for Str<B> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de, B: FromOctets<'de>> serde::Deserialize<'de> for Str<B> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<B>(std::marker::PhantomData<B>);
        impl<'de, B: FromOctets<'de>> Visitor<'de> for V<B> {
            type Value = Str<B>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(Str(B::from_borrowed(v.as_bytes())))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                B::from_owned(v.as_bytes().to_vec())
                    .map(Str)
                    .ok_or_else(|| E::custom("a borrowed string cannot be made from this input"))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// serde helpers for byte-string fields of any [`FromOctets`] storage: the body encoding's byte
/// string (borrowed on decode), or a lowercase hex string in human-readable formats (JSON).
pub mod serde_octets {
    use super::*;

    /// Serializes a byte string.
    pub fn serialize<B: AsRef<[u8]>, S: Serializer>(v: &B, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&hex::encode(v.as_ref()))
        } else {
            s.serialize_bytes(v.as_ref())
        }
    }

    /// Deserializes a byte string, borrowing when the format and the storage allow it.
    pub fn deserialize<'de, B: FromOctets<'de>, D: Deserializer<'de>>(d: D) -> Result<B, D::Error> {
        struct V<B>(std::marker::PhantomData<B>);
        impl<'de, B: FromOctets<'de>> Visitor<'de> for V<B> {
            type Value = B;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte string (hex in text formats)")
            }
            fn visit_borrowed_bytes<E: serde::de::Error>(self, v: &'de [u8]) -> Result<B, E> {
                Ok(B::from_borrowed(v))
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<B, E> {
                owned(v.to_vec())
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<B, E> {
                owned(hex::decode(v).map_err(E::custom)?)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<B, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(b) = seq.next_element()? {
                    out.push(b);
                }
                owned(out)
            }
        }
        fn owned<'de, B: FromOctets<'de>, E: serde::de::Error>(v: Vec<u8>) -> Result<B, E> {
            B::from_owned(v)
                .ok_or_else(|| E::custom("borrowed octets cannot be made from this input"))
        }
        if d.is_human_readable() {
            d.deserialize_str(V(std::marker::PhantomData))
        } else {
            d.deserialize_bytes(V(std::marker::PhantomData))
        }
    }
}
