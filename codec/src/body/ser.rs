//! The serializer half of the body encoding (spec §6).
//!
//! One serializer writes into any [`Sink`]: a [`bytes::BufMut`] for real output, or a
//! [`Counter`] that only adds up lengths. [`encoded_len`] runs the same code path as
//! [`to_buf`], so the predicted length is exact by construction.

use bytes::BufMut;
use serde::ser::{self, Serialize};

use crate::error::{BodyError, BodyErrorKind};

/// Where serialized bytes go.
pub trait Sink {
    /// Appends bytes.
    fn put(&mut self, bytes: &[u8]);
}

impl<B: BufMut> Sink for B {
    fn put(&mut self, bytes: &[u8]) {
        self.put_slice(bytes);
    }
}

/// A sink that only counts.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counter(pub usize);

impl Counter {
    fn add(&mut self, n: usize) {
        self.0 += n;
    }
}

/// Counter is not a `BufMut`; wrap it so the blanket impl does not apply.
#[derive(Debug)]
struct CountSink<'a>(&'a mut Counter);

impl Sink for CountSink<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.0.add(bytes.len());
    }
}

/// Serializes `value` into `dst`.
pub fn to_buf<T: Serialize + ?Sized, B: BufMut>(value: &T, dst: &mut B) -> Result<(), BodyError> {
    value.serialize(&mut Serializer { sink: dst })
}

/// Serializes `value` into a new `Vec`, sized exactly.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::with_capacity(encoded_len(value)?);
    to_buf(value, &mut out)?;
    Ok(out)
}

/// The exact number of bytes [`to_buf`] writes for `value`.
pub fn encoded_len<T: Serialize + ?Sized>(value: &T) -> Result<usize, BodyError> {
    let mut counter = Counter(0);
    value.serialize(&mut Serializer {
        sink: CountSink(&mut counter),
    })?;
    Ok(counter.0)
}

/// The body-encoding serializer over a sink.
#[derive(Debug)]
pub struct Serializer<S> {
    sink: S,
}

impl<S: Sink> Serializer<S> {
    /// A serializer writing into `sink`.
    pub fn new(sink: S) -> Self {
        Serializer { sink }
    }

    fn len_prefix(&mut self, len: usize) -> Result<(), BodyError> {
        let len = u32::try_from(len).map_err(|_| {
            BodyError::new(BodyErrorKind::Invalid(format!(
                "length {len} does not fit the u32 prefix"
            )))
        })?;
        self.sink.put(&len.to_be_bytes());
        Ok(())
    }
}

type Res = Result<(), BodyError>;

/// Fixed-width big-endian integers (spec §6.1).
macro_rules! be_int {
    ($($method:ident: $t:ty),*) => {
        $(fn $method(self, v: $t) -> Res {
            self.sink.put(&v.to_be_bytes());
            Ok(())
        })*
    };
}

impl<S: Sink> ser::Serializer for &mut Serializer<S> {
    type Ok = ();
    type Error = BodyError;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    fn is_human_readable(&self) -> bool {
        false
    }
    fn serialize_bool(self, v: bool) -> Res {
        self.sink.put(&[v as u8]);
        Ok(())
    }
    be_int!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64, serialize_i128: i128);
    be_int!(serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64, serialize_u128: u128);
    fn serialize_f32(self, v: f32) -> Res {
        self.sink.put(&v.to_bits().to_be_bytes());
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Res {
        self.sink.put(&v.to_bits().to_be_bytes());
        Ok(())
    }
    fn serialize_char(self, v: char) -> Res {
        self.sink.put(&u32::from(v).to_be_bytes());
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Res {
        self.len_prefix(v.len())?;
        self.sink.put(v.as_bytes());
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Res {
        self.len_prefix(v.len())?;
        self.sink.put(v);
        Ok(())
    }
    fn serialize_none(self) -> Res {
        self.sink.put(&[0]);
        Ok(())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Res {
        self.sink.put(&[1]);
        value.serialize(self)
    }
    fn serialize_unit(self) -> Res {
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Res {
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
    ) -> Res {
        self.serialize_u32(index)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Res {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        value: &T,
    ) -> Res {
        self.serialize_u32(index)?;
        value.serialize(self)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Self, BodyError> {
        let len = len.ok_or_else(|| {
            BodyError::new(BodyErrorKind::Unsupported(
                "sequence without a known length",
            ))
        })?;
        self.len_prefix(len)?;
        Ok(self)
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self, BodyError> {
        Ok(self)
    }
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Self, BodyError> {
        Ok(self)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self, BodyError> {
        self.serialize_u32(index)?;
        Ok(self)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Self, BodyError> {
        let len = len.ok_or_else(|| {
            BodyError::new(BodyErrorKind::Unsupported("map without a known length"))
        })?;
        self.len_prefix(len)?;
        Ok(self)
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self, BodyError> {
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self, BodyError> {
        self.serialize_u32(index)?;
        Ok(self)
    }
}

macro_rules! compound {
    ($trait:ident, $method:ident $(, $key:ident)?) => {
        impl<S: Sink> ser::$trait for &mut Serializer<S> {
            type Ok = ();
            type Error = BodyError;
            fn $method<T: ?Sized + Serialize>(&mut self, $($key: &'static str,)? value: &T) -> Res {
                $(let _ = $key;)?
                value.serialize(&mut **self)
            }
            fn end(self) -> Res {
                Ok(())
            }
        }
    };
}

compound!(SerializeSeq, serialize_element);
compound!(SerializeTuple, serialize_element);
compound!(SerializeTupleStruct, serialize_field);
compound!(SerializeTupleVariant, serialize_field);
compound!(SerializeStruct, serialize_field, key);
compound!(SerializeStructVariant, serialize_field, key);

impl<S: Sink> ser::SerializeMap for &mut Serializer<S> {
    type Ok = ();
    type Error = BodyError;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Res {
        key.serialize(&mut **self)
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Res {
        value.serialize(&mut **self)
    }
    fn end(self) -> Res {
        Ok(())
    }
}
