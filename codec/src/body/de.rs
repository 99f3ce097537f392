//! The deserializer half of the body encoding (spec §6): borrowing, bounded, positioned.
//!
//! * Strings and byte strings are handed to visitors with `visit_borrowed_*`: a `&'de str` or
//!   `&'de [u8]` field points into the body, nothing is copied.
//! * Every length or element count is checked against the bytes left *before* anything is
//!   allocated or visited for it (spec §6.8): a 5-byte body cannot make a `Vec` reserve 4 GiB.
//! * Nesting is limited ([`DEFAULT_MAX_DEPTH`]) so a crafted body cannot exhaust the stack.
//! * Every error carries the body offset and the innermost struct field being decoded.
//!
//! Primitives are fixed-size reads (`first_chunk` + `from_be_bytes`): a body is always whole by
//! the time it is decoded, so running out of input is an error, not a request for more, and a
//! fixed width leaves a parser nothing to decide (nom is used where input arrives in pieces: the
//! streaming frame decoder). The field named in an error is looked up only when an error
//! happens, not stored per field decoded. Both choices were measured against postcard in
//! `benches/codec.rs` (results: `BENCHMARKS.md` in the repository).

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use crate::error::{BodyError, BodyErrorKind};

/// Default limit on nesting (structs, sequences, options, enums inside each other).
pub const DEFAULT_MAX_DEPTH: usize = 64;

/// Offset value meaning "not yet positioned"; fixed up where the error surfaces.
const UNPOSITIONED: usize = usize::MAX;

/// Decodes a complete body: the value must use every byte (spec §5.4, trailing bytes).
pub fn from_bytes<'de, T: de::Deserialize<'de>>(input: &'de [u8]) -> Result<T, BodyError> {
    from_bytes_with_depth(input, DEFAULT_MAX_DEPTH)
}

/// [`from_bytes`] with another nesting limit.
pub fn from_bytes_with_depth<'de, T: de::Deserialize<'de>>(
    input: &'de [u8],
    max_depth: usize,
) -> Result<T, BodyError> {
    let mut de = Deserializer::new(input, max_depth);
    let value = T::deserialize(&mut de).map_err(|e| de.position(e))?;
    let rest = input.len() - de.pos;
    if rest != 0 {
        return Err(BodyError::at(
            BodyErrorKind::TrailingBytes { count: rest },
            de.pos,
        ));
    }
    Ok(value)
}

/// The body-encoding deserializer over a borrowed body.
#[derive(Debug)]
pub struct Deserializer<'de> {
    input: &'de [u8],
    pos: usize,
    depth: usize,
    max_depth: usize,
}

impl<'de> Deserializer<'de> {
    /// A deserializer at the start of `input`.
    pub fn new(input: &'de [u8], max_depth: usize) -> Self {
        Deserializer {
            input,
            pos: 0,
            depth: 0,
            max_depth,
        }
    }

    /// Gives an error raised without a position the current offset.
    pub fn position(&self, mut e: BodyError) -> BodyError {
        if e.offset == UNPOSITIONED {
            e.offset = self.pos;
        }
        e
    }

    /// The next `N` octets as a fixed-size array (integers, tags, prefixes): one bounds check,
    /// then `from_be_bytes`.
    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], BodyError> {
        match self.input[self.pos..].first_chunk::<N>() {
            Some(a) => {
                self.pos += N;
                Ok(*a)
            }
            None => Err(self.eof(N)),
        }
    }

    fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }

    fn eof(&self, needed: usize) -> BodyError {
        BodyError::at(
            BodyErrorKind::UnexpectedEnd {
                needed,
                remaining: self.remaining(),
            },
            self.pos,
        )
    }

    fn take(&mut self, n: usize) -> Result<&'de [u8], BodyError> {
        if n > self.remaining() {
            return Err(self.eof(n));
        }
        let out = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Reads a u32 length/count prefix and checks it against the bytes left (spec §6.8).
    fn len_prefix(&mut self) -> Result<usize, BodyError> {
        let at = self.pos;
        let len = u32::from_be_bytes(self.array()?);
        if len as usize > self.remaining() {
            return Err(BodyError::at(
                BodyErrorKind::LengthExceedsInput {
                    length: len.into(),
                    remaining: self.remaining(),
                },
                at,
            ));
        }
        Ok(len as usize)
    }

    fn str_slice(&mut self) -> Result<&'de str, BodyError> {
        let len = self.len_prefix()?;
        let start = self.pos;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map_err(|e| {
            BodyError::at(
                BodyErrorKind::InvalidUtf8 {
                    valid_up_to: e.valid_up_to(),
                },
                start + e.valid_up_to(),
            )
        })
    }

    fn enter(&mut self) -> Result<(), BodyError> {
        if self.depth >= self.max_depth {
            return Err(BodyError::at(
                BodyErrorKind::DepthLimit(self.max_depth),
                self.pos,
            ));
        }
        self.depth += 1;
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }
}

type Res<T> = Result<T, BodyError>;

macro_rules! int {
    ($method:ident, $visit:ident, $ty:ty) => {
        #[inline]
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Res<V::Value> {
            let v = <$ty>::from_be_bytes(self.array()?);
            visitor.$visit(v)
        }
    };
}

impl<'de> de::Deserializer<'de> for &mut Deserializer<'de> {
    type Error = BodyError;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Res<V::Value> {
        Err(BodyError::new(BodyErrorKind::Unsupported(
            "self-describing input (deserialize_any)",
        )))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Res<V::Value> {
        let at = self.pos;
        match self.array::<1>()?[0] {
            0 => visitor.visit_bool(false),
            1 => visitor.visit_bool(true),
            b => Err(BodyError::at(BodyErrorKind::InvalidBool(b), at)),
        }
    }

    int!(deserialize_i8, visit_i8, i8);
    int!(deserialize_i16, visit_i16, i16);
    int!(deserialize_i32, visit_i32, i32);
    int!(deserialize_i64, visit_i64, i64);
    int!(deserialize_i128, visit_i128, i128);
    int!(deserialize_u8, visit_u8, u8);
    int!(deserialize_u16, visit_u16, u16);
    int!(deserialize_u32, visit_u32, u32);
    int!(deserialize_u64, visit_u64, u64);
    int!(deserialize_u128, visit_u128, u128);
    int!(deserialize_f32, visit_f32, f32);
    int!(deserialize_f64, visit_f64, f64);

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Res<V::Value> {
        let at = self.pos;
        let v = u32::from_be_bytes(self.array()?);
        match char::from_u32(v) {
            Some(c) => visitor.visit_char(c),
            None => Err(BodyError::at(BodyErrorKind::InvalidChar(v), at)),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Res<V::Value> {
        let s = self.str_slice()?;
        visitor.visit_borrowed_str(s)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Res<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Res<V::Value> {
        let len = self.len_prefix()?;
        let bytes = self.take(len)?;
        visitor.visit_borrowed_bytes(bytes)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Res<V::Value> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Res<V::Value> {
        let at = self.pos;
        match self.array::<1>()?[0] {
            0 => visitor.visit_none(),
            1 => {
                self.enter()?;
                let v = visitor.visit_some(&mut *self);
                self.leave();
                v
            }
            t => Err(BodyError::at(BodyErrorKind::InvalidOptionTag(t), at)),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Res<V::Value> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Res<V::Value> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Res<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Res<V::Value> {
        let len = self.len_prefix()?;
        self.enter()?;
        let v = visitor.visit_seq(Access {
            de: &mut *self,
            left: len,
            fields: None,
            index: 0,
        });
        self.leave();
        v
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Res<V::Value> {
        self.enter()?;
        let v = visitor.visit_seq(Access {
            de: &mut *self,
            left: len,
            fields: None,
            index: 0,
        });
        self.leave();
        v
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Res<V::Value> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Res<V::Value> {
        let len = self.len_prefix()?;
        self.enter()?;
        let v = visitor.visit_map(Access {
            de: &mut *self,
            left: len,
            fields: None,
            index: 0,
        });
        self.leave();
        v
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Res<V::Value> {
        self.enter()?;
        let v = visitor.visit_seq(Access {
            de: &mut *self,
            left: fields.len(),
            fields: Some(fields),
            index: 0,
        });
        self.leave();
        v
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Res<V::Value> {
        self.enter()?;
        let v = visitor.visit_enum(&mut *self);
        self.leave();
        v
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Res<V::Value> {
        self.deserialize_u32(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, _visitor: V) -> Res<V::Value> {
        Err(BodyError::new(BodyErrorKind::Unsupported(
            "skipping a value of unknown layout",
        )))
    }
}

/// Sequence, tuple, struct and map access: a known number of elements.
struct Access<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    left: usize,
    fields: Option<&'static [&'static str]>,
    index: usize,
}

impl<'de> Access<'_, 'de> {
    fn element<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Res<Option<T::Value>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        let index = self.index;
        self.index += 1;
        match seed.deserialize(&mut *self.de) {
            Ok(v) => Ok(Some(v)),
            // The field is named only on the error path; the innermost struct's name wins,
            // because the error passes through its access first.
            Err(mut e) => {
                if e.field.is_none() {
                    e.field = self.fields.and_then(|f| f.get(index).copied());
                }
                Err(self.de.position(e))
            }
        }
    }
}

impl<'de> de::SeqAccess<'de> for Access<'_, 'de> {
    type Error = BodyError;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Res<Option<T::Value>> {
        self.element(seed)
    }
    fn size_hint(&self) -> Option<usize> {
        // Never more than the bytes left: a hint is used to pre-allocate.
        Some(self.left.min(self.de.remaining()))
    }
}

impl<'de> de::MapAccess<'de> for Access<'_, 'de> {
    type Error = BodyError;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Res<Option<K::Value>> {
        self.element(seed)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Res<V::Value> {
        seed.deserialize(&mut *self.de)
            .map_err(|e| self.de.position(e))
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.left.min(self.de.remaining()))
    }
}

impl<'de> de::EnumAccess<'de> for &mut Deserializer<'de> {
    type Error = BodyError;
    type Variant = Self;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Res<(V::Value, Self)> {
        let at = self.pos;
        let index = u32::from_be_bytes(self.array()?);
        let value = seed
            .deserialize(index.into_deserializer())
            .map_err(|e: BodyError| BodyError { offset: at, ..e })?;
        Ok((value, self))
    }
}

impl<'de> de::VariantAccess<'de> for &mut Deserializer<'de> {
    type Error = BodyError;
    fn unit_variant(self) -> Res<()> {
        Ok(())
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Res<T::Value> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Res<V::Value> {
        de::Deserializer::deserialize_tuple(self, len, visitor)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Res<V::Value> {
        de::Deserializer::deserialize_struct(self, "", fields, visitor)
    }
}
