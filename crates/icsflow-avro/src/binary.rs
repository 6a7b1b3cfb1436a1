//! Avro binary encoding as a serde data format: the hot path.
//!
//! Avro binary is not self-describing; the Rust type being read supplies
//! the layout. That is exact when the wire types in [`crate::wire`] mirror
//! the schema field for field, which the schema tests hold true: records are
//! structs with fields in schema order, enums and unions are Rust enums in
//! symbol and branch order, `["null", T]` unions are `Option<T>`.
//!
//! Decoding borrows strings from the input and allocates nothing for the
//! envelope, which is what makes the per-event budget reachable. Anything the
//! layout cannot express (maps, arrays, `deserialize_any`) is an error, not
//! a guess.

use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use serde::ser::{self, Serialize};

/// Why bytes could not be read as the expected Avro layout. Carries no
/// record content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BinaryError {
    UnexpectedEnd,
    VarintTooLong,
    NegativeLength,
    InvalidUtf8,
    InvalidBoolean,
    IndexOutOfRange,
    IntegerOutOfRange,
    TrailingBytes,
    Unsupported(&'static str),
    /// A message from a `Deserialize` or `Serialize` impl (field names and
    /// expectations only; serde never puts input values in these).
    Custom(String),
}

impl fmt::Display for BinaryError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BinaryError::UnexpectedEnd => formatter.write_str("the record ends early"),
            BinaryError::VarintTooLong => {
                formatter.write_str("a variable-length integer is longer than 10 bytes")
            }
            BinaryError::NegativeLength => {
                formatter.write_str("a string or bytes length is negative")
            }
            BinaryError::InvalidUtf8 => formatter.write_str("a string is not UTF-8"),
            BinaryError::InvalidBoolean => formatter.write_str("a boolean byte is neither 0 nor 1"),
            BinaryError::IndexOutOfRange => {
                formatter.write_str("an enum or union index is out of range")
            }
            BinaryError::IntegerOutOfRange => formatter.write_str("an int is out of range"),
            BinaryError::TrailingBytes => formatter.write_str("bytes are left after the record"),
            BinaryError::Unsupported(what) => {
                write!(formatter, "{what} is not part of the icsflow schemas")
            }
            BinaryError::Custom(message) => formatter.write_str(message),
        }
    }
}

impl std::error::Error for BinaryError {}

impl de::Error for BinaryError {
    fn custom<T: fmt::Display>(message: T) -> BinaryError {
        BinaryError::Custom(message.to_string())
    }
}

impl ser::Error for BinaryError {
    fn custom<T: fmt::Display>(message: T) -> BinaryError {
        BinaryError::Custom(message.to_string())
    }
}

/// Reads one datum of type `T` that must take up all of `input`.
pub(crate) fn from_slice<'de, T: de::Deserialize<'de>>(input: &'de [u8]) -> Result<T, BinaryError> {
    let mut deserializer = BinaryDeserializer { input };
    let value = T::deserialize(&mut deserializer)?;
    if deserializer.input.is_empty() {
        Ok(value)
    } else {
        Err(BinaryError::TrailingBytes)
    }
}

/// Appends the Avro binary encoding of `value` to `output`.
pub(crate) fn to_writer<T: Serialize + ?Sized>(
    value: &T,
    output: &mut Vec<u8>,
) -> Result<(), BinaryError> {
    value.serialize(&mut BinarySerializer { output })
}

struct BinaryDeserializer<'de> {
    input: &'de [u8],
}

impl<'de> BinaryDeserializer<'de> {
    fn read_long(&mut self) -> Result<i64, BinaryError> {
        let mut accumulated: u64 = 0;
        for (position, &byte) in self.input.iter().enumerate().take(10) {
            accumulated |= u64::from(byte & 0x7f) << (7 * position);
            if byte & 0x80 == 0 {
                self.input = &self.input[position + 1..];
                // Zig-zag: the low bit is the sign.
                return Ok((accumulated >> 1) as i64 ^ -((accumulated & 1) as i64));
            }
        }
        if self.input.len() < 10 {
            Err(BinaryError::UnexpectedEnd)
        } else {
            Err(BinaryError::VarintTooLong)
        }
    }

    fn read_index(&mut self) -> Result<u32, BinaryError> {
        u32::try_from(self.read_long()?).map_err(|_| BinaryError::IndexOutOfRange)
    }

    fn read_bytes(&mut self) -> Result<&'de [u8], BinaryError> {
        let length = usize::try_from(self.read_long()?).map_err(|_| BinaryError::NegativeLength)?;
        if length > self.input.len() {
            return Err(BinaryError::UnexpectedEnd);
        }
        let (bytes, rest) = self.input.split_at(length);
        self.input = rest;
        Ok(bytes)
    }

    fn read_fixed<const N: usize>(&mut self) -> Result<[u8; N], BinaryError> {
        if self.input.len() < N {
            return Err(BinaryError::UnexpectedEnd);
        }
        let (bytes, rest) = self.input.split_at(N);
        self.input = rest;
        let mut fixed = [0_u8; N];
        fixed.copy_from_slice(bytes);
        Ok(fixed)
    }
}

impl<'de> de::Deserializer<'de> for &mut BinaryDeserializer<'de> {
    type Error = BinaryError;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, BinaryError> {
        Err(BinaryError::Unsupported("a self-describing value"))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BinaryError> {
        match self.read_fixed::<1>()? {
            [0] => visitor.visit_bool(false),
            [1] => visitor.visit_bool(true),
            _ => Err(BinaryError::InvalidBoolean),
        }
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BinaryError> {
        self.deserialize_i32(visitor)
    }

    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BinaryError> {
        self.deserialize_i32(visitor)
    }

    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BinaryError> {
        let value = i32::try_from(self.read_long()?).map_err(|_| BinaryError::IntegerOutOfRange)?;
        visitor.visit_i32(value)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BinaryError> {
        visitor.visit_i64(self.read_long()?)
    }

    fn deserialize_u8<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, BinaryError> {
        Err(BinaryError::Unsupported("an unsigned integer"))
    }

    fn deserialize_u16<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, BinaryError> {
        Err(BinaryError::Unsupported("an unsigned integer"))
    }

    fn deserialize_u32<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, BinaryError> {
        Err(BinaryError::Unsupported("an unsigned integer"))
    }

    fn deserialize_u64<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, BinaryError> {
        Err(BinaryError::Unsupported("an unsigned integer"))
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BinaryError> {
        visitor.visit_f32(f32::from_le_bytes(self.read_fixed::<4>()?))
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BinaryError> {
        visitor.visit_f64(f64::from_le_bytes(self.read_fixed::<8>()?))
    }

    fn deserialize_char<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, BinaryError> {
        Err(BinaryError::Unsupported("a char"))
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BinaryError> {
        let bytes = self.read_bytes()?;
        let text = std::str::from_utf8(bytes).map_err(|_| BinaryError::InvalidUtf8)?;
        visitor.visit_borrowed_str(text)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BinaryError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BinaryError> {
        visitor.visit_borrowed_bytes(self.read_bytes()?)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BinaryError> {
        self.deserialize_bytes(visitor)
    }

    /// Only the `["null", T]` union shape maps to `Option`.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BinaryError> {
        match self.read_index()? {
            0 => visitor.visit_none(),
            1 => visitor.visit_some(self),
            _ => Err(BinaryError::IndexOutOfRange),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BinaryError> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, BinaryError> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, BinaryError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, BinaryError> {
        Err(BinaryError::Unsupported("an array"))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        length: usize,
        visitor: V,
    ) -> Result<V::Value, BinaryError> {
        visitor.visit_seq(FieldSequence {
            deserializer: self,
            remaining: length,
        })
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        length: usize,
        visitor: V,
    ) -> Result<V::Value, BinaryError> {
        self.deserialize_tuple(length, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, BinaryError> {
        Err(BinaryError::Unsupported("a map"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, BinaryError> {
        self.deserialize_tuple(fields.len(), visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, BinaryError> {
        let index = self.read_index()?;
        if index as usize >= variants.len() {
            return Err(BinaryError::IndexOutOfRange);
        }
        visitor.visit_enum(Branch {
            deserializer: self,
            index,
        })
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, BinaryError> {
        Err(BinaryError::Unsupported("an identifier"))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(
        self,
        _visitor: V,
    ) -> Result<V::Value, BinaryError> {
        Err(BinaryError::Unsupported("an ignored value"))
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

/// The fields of a record, read in order.
struct FieldSequence<'a, 'de> {
    deserializer: &'a mut BinaryDeserializer<'de>,
    remaining: usize,
}

impl<'de> de::SeqAccess<'de> for FieldSequence<'_, 'de> {
    type Error = BinaryError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, BinaryError> {
        if self.remaining == 0 {
            return Ok(None);
        }
        self.remaining -= 1;
        seed.deserialize(&mut *self.deserializer).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.remaining)
    }
}

/// An enum symbol or union branch, already chosen by its index.
struct Branch<'a, 'de> {
    deserializer: &'a mut BinaryDeserializer<'de>,
    index: u32,
}

impl<'a, 'de> de::EnumAccess<'de> for Branch<'a, 'de> {
    type Error = BinaryError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self), BinaryError> {
        let index: de::value::U32Deserializer<BinaryError> = self.index.into_deserializer();
        Ok((seed.deserialize(index)?, self))
    }
}

impl<'de> de::VariantAccess<'de> for Branch<'_, 'de> {
    type Error = BinaryError;

    fn unit_variant(self) -> Result<(), BinaryError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, BinaryError> {
        seed.deserialize(&mut *self.deserializer)
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        length: usize,
        visitor: V,
    ) -> Result<V::Value, BinaryError> {
        de::Deserializer::deserialize_tuple(&mut *self.deserializer, length, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, BinaryError> {
        de::Deserializer::deserialize_tuple(&mut *self.deserializer, fields.len(), visitor)
    }
}

struct BinarySerializer<'a> {
    output: &'a mut Vec<u8>,
}

impl BinarySerializer<'_> {
    fn write_long(&mut self, value: i64) {
        let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
        loop {
            if zigzag < 0x80 {
                self.output.push(zigzag as u8);
                return;
            }
            self.output.push((zigzag as u8 & 0x7f) | 0x80);
            zigzag >>= 7;
        }
    }

    fn write_bytes(&mut self, bytes: &[u8]) {
        self.write_long(bytes.len() as i64);
        self.output.extend_from_slice(bytes);
    }
}

impl<'a, 'b> ser::Serializer for &'a mut BinarySerializer<'b> {
    type Ok = ();
    type Error = BinaryError;
    type SerializeSeq = ser::Impossible<(), BinaryError>;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = ser::Impossible<(), BinaryError>;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    fn serialize_bool(self, value: bool) -> Result<(), BinaryError> {
        self.output.push(u8::from(value));
        Ok(())
    }

    fn serialize_i8(self, value: i8) -> Result<(), BinaryError> {
        self.serialize_i64(value.into())
    }

    fn serialize_i16(self, value: i16) -> Result<(), BinaryError> {
        self.serialize_i64(value.into())
    }

    fn serialize_i32(self, value: i32) -> Result<(), BinaryError> {
        self.serialize_i64(value.into())
    }

    fn serialize_i64(self, value: i64) -> Result<(), BinaryError> {
        self.write_long(value);
        Ok(())
    }

    fn serialize_u8(self, _value: u8) -> Result<(), BinaryError> {
        Err(BinaryError::Unsupported("an unsigned integer"))
    }

    fn serialize_u16(self, _value: u16) -> Result<(), BinaryError> {
        Err(BinaryError::Unsupported("an unsigned integer"))
    }

    fn serialize_u32(self, _value: u32) -> Result<(), BinaryError> {
        Err(BinaryError::Unsupported("an unsigned integer"))
    }

    fn serialize_u64(self, _value: u64) -> Result<(), BinaryError> {
        Err(BinaryError::Unsupported("an unsigned integer"))
    }

    fn serialize_f32(self, value: f32) -> Result<(), BinaryError> {
        self.output.extend_from_slice(&value.to_le_bytes());
        Ok(())
    }

    fn serialize_f64(self, value: f64) -> Result<(), BinaryError> {
        self.output.extend_from_slice(&value.to_le_bytes());
        Ok(())
    }

    fn serialize_char(self, _value: char) -> Result<(), BinaryError> {
        Err(BinaryError::Unsupported("a char"))
    }

    fn serialize_str(self, value: &str) -> Result<(), BinaryError> {
        self.write_bytes(value.as_bytes());
        Ok(())
    }

    fn serialize_bytes(self, value: &[u8]) -> Result<(), BinaryError> {
        self.write_bytes(value);
        Ok(())
    }

    fn serialize_none(self) -> Result<(), BinaryError> {
        self.write_long(0);
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), BinaryError> {
        self.write_long(1);
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), BinaryError> {
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), BinaryError> {
        Ok(())
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
    ) -> Result<(), BinaryError> {
        self.write_long(index.into());
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), BinaryError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        value: &T,
    ) -> Result<(), BinaryError> {
        self.write_long(index.into());
        value.serialize(self)
    }

    fn serialize_seq(self, _length: Option<usize>) -> Result<Self::SerializeSeq, BinaryError> {
        Err(BinaryError::Unsupported("an array"))
    }

    fn serialize_tuple(self, _length: usize) -> Result<Self, BinaryError> {
        Ok(self)
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _length: usize,
    ) -> Result<Self, BinaryError> {
        Ok(self)
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        _length: usize,
    ) -> Result<Self, BinaryError> {
        self.write_long(index.into());
        Ok(self)
    }

    fn serialize_map(self, _length: Option<usize>) -> Result<Self::SerializeMap, BinaryError> {
        Err(BinaryError::Unsupported("a map"))
    }

    fn serialize_struct(self, _name: &'static str, _length: usize) -> Result<Self, BinaryError> {
        Ok(self)
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        _length: usize,
    ) -> Result<Self, BinaryError> {
        self.write_long(index.into());
        Ok(self)
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

impl ser::SerializeTuple for &mut BinarySerializer<'_> {
    type Ok = ();
    type Error = BinaryError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), BinaryError> {
        value.serialize(&mut **self)
    }

    fn end(self) -> Result<(), BinaryError> {
        Ok(())
    }
}

impl ser::SerializeTupleStruct for &mut BinarySerializer<'_> {
    type Ok = ();
    type Error = BinaryError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), BinaryError> {
        value.serialize(&mut **self)
    }

    fn end(self) -> Result<(), BinaryError> {
        Ok(())
    }
}

impl ser::SerializeTupleVariant for &mut BinarySerializer<'_> {
    type Ok = ();
    type Error = BinaryError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), BinaryError> {
        value.serialize(&mut **self)
    }

    fn end(self) -> Result<(), BinaryError> {
        Ok(())
    }
}

impl ser::SerializeStruct for &mut BinarySerializer<'_> {
    type Ok = ();
    type Error = BinaryError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _key: &'static str,
        value: &T,
    ) -> Result<(), BinaryError> {
        value.serialize(&mut **self)
    }

    fn end(self) -> Result<(), BinaryError> {
        Ok(())
    }
}

impl ser::SerializeStructVariant for &mut BinarySerializer<'_> {
    type Ok = ();
    type Error = BinaryError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _key: &'static str,
        value: &T,
    ) -> Result<(), BinaryError> {
        value.serialize(&mut **self)
    }

    fn end(self) -> Result<(), BinaryError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded_long(value: i64) -> Vec<u8> {
        let mut output = Vec::new();
        to_writer(&value, &mut output).expect("encodes");
        output
    }

    #[test]
    fn zigzag_varints_match_the_specification() {
        // Examples from the Avro specification.
        assert_eq!(encoded_long(0), [0x00]);
        assert_eq!(encoded_long(-1), [0x01]);
        assert_eq!(encoded_long(1), [0x02]);
        assert_eq!(encoded_long(-2), [0x03]);
        assert_eq!(encoded_long(-64), [0x7f]);
        assert_eq!(encoded_long(64), [0x80, 0x01]);
        for value in [i64::MIN, i64::MAX, 1_767_268_800_000, -300] {
            assert_eq!(from_slice::<i64>(&encoded_long(value)), Ok(value));
        }
    }

    #[test]
    fn malformed_inputs_are_errors() {
        assert_eq!(from_slice::<i64>(&[]), Err(BinaryError::UnexpectedEnd));
        assert_eq!(
            from_slice::<i64>(&[0x80; 11]),
            Err(BinaryError::VarintTooLong)
        );
        assert_eq!(
            from_slice::<i64>(&[0x02, 0x00]),
            Err(BinaryError::TrailingBytes)
        );
        assert_eq!(
            from_slice::<&str>(&[0x01]),
            Err(BinaryError::NegativeLength)
        );
        assert_eq!(
            from_slice::<&str>(&[0x04, b'a']),
            Err(BinaryError::UnexpectedEnd)
        );
        assert_eq!(
            from_slice::<&str>(&[0x02, 0xff]),
            Err(BinaryError::InvalidUtf8)
        );
        assert_eq!(
            from_slice::<bool>(&[0x02]),
            Err(BinaryError::InvalidBoolean)
        );
        assert_eq!(
            from_slice::<Option<i64>>(&[0x04]),
            Err(BinaryError::IndexOutOfRange)
        );
        assert_eq!(
            from_slice::<i32>(&encoded_long(i64::from(i32::MAX) + 1)),
            Err(BinaryError::IntegerOutOfRange)
        );
    }
}
