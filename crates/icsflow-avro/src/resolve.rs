//! Writer-to-reader schema resolution over apache-avro values, for records
//! written with another version of a feed's schema.
//!
//! apache-avro 0.21 has its own resolution, but it picks a union branch by
//! trying each reader branch until the value fits, not by the writer
//! branch's name as the specification says. With a union of records that
//! includes an empty record (`AdmissionCancelled`), every payload "fits"
//! the first such branch and the event silently changes type. This module
//! follows the specification: named types match by full name, primitives by
//! type or the allowed promotions.

use std::collections::HashMap;

use apache_avro::schema::{Name, RecordSchema, ResolvedSchema, Schema, SchemaKind};
use apache_avro::types::Value;

/// Why a value could not be resolved. The message names schema elements,
/// never data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResolutionError(pub(crate) String);

type Names<'a> = HashMap<Name, &'a Schema>;

/// Resolves `value`, decoded with `writer`, into the shape of `reader`.
pub(crate) fn resolve(
    writer: &Schema,
    reader: &Schema,
    value: Value,
) -> Result<Value, ResolutionError> {
    let writer_names = names_of(writer)?;
    let reader_names = names_of(reader)?;
    Resolver {
        writer_names: &writer_names,
        reader_names: &reader_names,
    }
    .resolve(writer, reader, value)
}

fn names_of(schema: &Schema) -> Result<Names<'_>, ResolutionError> {
    let resolved =
        ResolvedSchema::try_from(schema).map_err(|error| ResolutionError(error.to_string()))?;
    Ok(resolved.get_names().clone())
}

struct Resolver<'a> {
    writer_names: &'a Names<'a>,
    reader_names: &'a Names<'a>,
}

impl<'a> Resolver<'a> {
    fn resolve(
        &self,
        writer: &'a Schema,
        reader: &'a Schema,
        value: Value,
    ) -> Result<Value, ResolutionError> {
        let writer = dereference(writer, self.writer_names)?;
        let reader = dereference(reader, self.reader_names)?;
        match (writer, reader, value) {
            (Schema::Union(writer_union), _, Value::Union(index, inner)) => {
                let branch = writer_union
                    .variants()
                    .get(index as usize)
                    .ok_or_else(|| ResolutionError("union index out of range".to_owned()))?;
                self.resolve(branch, reader, *inner)
            }
            (_, Schema::Union(reader_union), value) => {
                let (index, branch) = reader_union
                    .variants()
                    .iter()
                    .enumerate()
                    .find(|(_, branch)| self.matches(writer, branch))
                    .ok_or_else(|| {
                        ResolutionError(format!(
                            "no reader union branch for writer type {}",
                            describe(writer)
                        ))
                    })?;
                Ok(Value::Union(
                    index as u32,
                    Box::new(self.resolve(writer, branch, value)?),
                ))
            }
            (
                Schema::Record(writer_record),
                Schema::Record(reader_record),
                Value::Record(fields),
            ) => self.resolve_record(writer_record, reader_record, fields),
            (Schema::Enum(_), Schema::Enum(reader_enum), Value::Enum(_, symbol)) => {
                let symbol = if reader_enum.symbols.contains(&symbol) {
                    symbol
                } else {
                    reader_enum.default.clone().ok_or_else(|| {
                        ResolutionError(format!(
                            "enum {} has no such symbol and no default",
                            reader_enum.name.fullname(None)
                        ))
                    })?
                };
                let index = reader_enum
                    .symbols
                    .iter()
                    .position(|known| *known == symbol)
                    .unwrap_or_default();
                Ok(Value::Enum(index as u32, symbol))
            }
            (Schema::Array(writer_array), Schema::Array(reader_array), Value::Array(items)) => {
                Ok(Value::Array(
                    items
                        .into_iter()
                        .map(|item| self.resolve(&writer_array.items, &reader_array.items, item))
                        .collect::<Result<_, _>>()?,
                ))
            }
            (Schema::Map(writer_map), Schema::Map(reader_map), Value::Map(entries)) => {
                Ok(Value::Map(
                    entries
                        .into_iter()
                        .map(|(key, item)| {
                            Ok((
                                key,
                                self.resolve(&writer_map.types, &reader_map.types, item)?,
                            ))
                        })
                        .collect::<Result<_, ResolutionError>>()?,
                ))
            }
            (writer, reader, value) => promote(writer, reader, value),
        }
    }

    fn resolve_record(
        &self,
        writer: &'a RecordSchema,
        reader: &'a RecordSchema,
        mut values: Vec<(String, Value)>,
    ) -> Result<Value, ResolutionError> {
        let mut resolved = Vec::with_capacity(reader.fields.len());
        for field in &reader.fields {
            let written = writer
                .fields
                .iter()
                .find(|written| written.name == field.name);
            let value = match written {
                Some(written) => {
                    let position = values
                        .iter()
                        .position(|(name, _)| *name == field.name)
                        .ok_or_else(|| {
                            ResolutionError(format!("field {} missing from the value", field.name))
                        })?;
                    let (_, value) = values.swap_remove(position);
                    self.resolve(&written.schema, &field.schema, value)?
                }
                None => {
                    let default = field.default.as_ref().ok_or_else(|| {
                        ResolutionError(format!(
                            "field {} is not written and has no default",
                            field.name
                        ))
                    })?;
                    self.default_value(&field.schema, default)?
                }
            };
            resolved.push((field.name.clone(), value));
        }
        Ok(Value::Record(resolved))
    }

    /// Turns a field's JSON default into a value of the reader's type. A
    /// union's default belongs to its first branch.
    fn default_value(
        &self,
        schema: &'a Schema,
        default: &serde_json::Value,
    ) -> Result<Value, ResolutionError> {
        let schema = dereference(schema, self.reader_names)?;
        let unsupported =
            || ResolutionError(format!("unsupported default for {}", describe(schema)));
        Ok(match (schema, default) {
            (Schema::Union(union), _) => {
                let first = union.variants().first().ok_or_else(unsupported)?;
                Value::Union(0, Box::new(self.default_value(first, default)?))
            }
            (Schema::Null, serde_json::Value::Null) => Value::Null,
            (Schema::Boolean, serde_json::Value::Bool(flag)) => Value::Boolean(*flag),
            (Schema::Int, serde_json::Value::Number(number)) => Value::Int(
                number
                    .as_i64()
                    .and_then(|number| i32::try_from(number).ok())
                    .ok_or_else(unsupported)?,
            ),
            (Schema::Long, serde_json::Value::Number(number)) => {
                Value::Long(number.as_i64().ok_or_else(unsupported)?)
            }
            (Schema::Double, serde_json::Value::Number(number)) => {
                Value::Double(number.as_f64().ok_or_else(unsupported)?)
            }
            (Schema::String, serde_json::Value::String(text)) => Value::String(text.clone()),
            (Schema::Enum(enumeration), serde_json::Value::String(symbol)) => {
                let index = enumeration
                    .symbols
                    .iter()
                    .position(|known| known == symbol)
                    .ok_or_else(unsupported)?;
                Value::Enum(index as u32, symbol.clone())
            }
            (Schema::Record(record), serde_json::Value::Object(object)) => {
                let mut fields = Vec::new();
                for field in &record.fields {
                    let value = object
                        .get(&field.name)
                        .or(field.default.as_ref())
                        .ok_or_else(unsupported)?;
                    fields.push((
                        field.name.clone(),
                        self.default_value(&field.schema, value)?,
                    ));
                }
                Value::Record(fields)
            }
            _ => return Err(unsupported()),
        })
    }

    /// Whether writer data of type `writer` can be read as `reader`: named
    /// types by full name, others by kind or promotion.
    fn matches(&self, writer: &Schema, reader: &Schema) -> bool {
        let (Ok(writer), Ok(reader)) = (
            dereference(writer, self.writer_names),
            dereference(reader, self.reader_names),
        ) else {
            return false;
        };
        match (named(writer), named(reader)) {
            (Some(writer_name), Some(reader_name)) => {
                SchemaKind::from(writer) == SchemaKind::from(reader)
                    && writer_name.fullname(None) == reader_name.fullname(None)
            }
            (None, None) => {
                SchemaKind::from(writer) == SchemaKind::from(reader) || promotable(writer, reader)
            }
            _ => false,
        }
    }
}

fn dereference<'a>(schema: &'a Schema, names: &Names<'a>) -> Result<&'a Schema, ResolutionError> {
    match schema {
        Schema::Ref { name } => names
            .get(name)
            .copied()
            .ok_or_else(|| ResolutionError(format!("unknown named type {}", name.fullname(None)))),
        other => Ok(other),
    }
}

fn named(schema: &Schema) -> Option<&Name> {
    match schema {
        Schema::Record(record) => Some(&record.name),
        Schema::Enum(enumeration) => Some(&enumeration.name),
        Schema::Fixed(fixed) => Some(&fixed.name),
        _ => None,
    }
}

fn promotable(writer: &Schema, reader: &Schema) -> bool {
    matches!(
        (writer, reader),
        (Schema::Int, Schema::Long | Schema::Float | Schema::Double)
            | (Schema::Long, Schema::Float | Schema::Double)
            | (Schema::Float, Schema::Double)
            | (Schema::String, Schema::Bytes)
            | (Schema::Bytes, Schema::String)
    )
}

/// Same-kind values pass through; the specification's promotions convert.
fn promote(writer: &Schema, reader: &Schema, value: Value) -> Result<Value, ResolutionError> {
    if SchemaKind::from(writer) == SchemaKind::from(reader) {
        return Ok(value);
    }
    Ok(match (reader, value) {
        (Schema::Long, Value::Int(number)) => Value::Long(number.into()),
        (Schema::Float, Value::Int(number)) => Value::Float(number as f32),
        (Schema::Float, Value::Long(number)) => Value::Float(number as f32),
        (Schema::Double, Value::Int(number)) => Value::Double(number.into()),
        (Schema::Double, Value::Long(number)) => Value::Double(number as f64),
        (Schema::Double, Value::Float(number)) => Value::Double(number.into()),
        (Schema::Bytes, Value::String(text)) => Value::Bytes(text.into_bytes()),
        (Schema::String, Value::Bytes(bytes)) => Value::String(
            String::from_utf8(bytes)
                .map_err(|_| ResolutionError("bytes are not UTF-8".to_owned()))?,
        ),
        _ => {
            return Err(ResolutionError(format!(
                "cannot read {} as {}",
                describe(writer),
                describe(reader)
            )))
        }
    })
}

fn describe(schema: &Schema) -> String {
    match named(schema) {
        Some(name) => name.fullname(None),
        None => format!("{:?}", SchemaKind::from(schema)),
    }
}
