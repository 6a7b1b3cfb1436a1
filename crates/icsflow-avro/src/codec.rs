//! Both Avro framings, in and out.
//!
//! Decoding picks the framing from the first bytes, finds the writer schema
//! (by fingerprint, or by registry id), and then either reads the datum
//! straight into the wire types (writer is the current version: the fast
//! path) or resolves it to the current version with apache-avro first (an
//! older or newer compatible version). Either way the wire record is then
//! validated into a domain [`Event`].

use std::sync::Arc;

use icsflow_core::{Event, Feed, RejectReason, Rejection, TimestampPolicy};

use crate::binary::{self, BinaryError};
use crate::catalogue::{Resolution, SchemaCatalogue, WriterSchema};
use crate::registry::{LookupError, SchemaRegistryClient};
use crate::wire::{
    Alteration, AnyRecord, DischargeRecord, PrimaryCareRecord, SocialCareRecord, TextBuffers,
};

/// The two byte layouts partners may publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Avro single-object encoding: `C3 01`, the 8-byte little-endian
    /// CRC-64-AVRO fingerprint of the writer schema, then the datum.
    SingleObject,
    /// Confluent wire format: `00`, the 4-byte big-endian registry schema
    /// id, then the datum.
    Confluent { schema_id: u32 },
}

/// Records larger than this are refused before any parsing. Partner events
/// are a few hundred bytes.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

const SINGLE_OBJECT_MARKER: [u8; 2] = [0xC3, 0x01];
const SINGLE_OBJECT_HEADER: usize = 10;
const CONFLUENT_MAGIC: u8 = 0x00;
const CONFLUENT_HEADER: usize = 5;

/// Why a record did not become an event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The record is bad: dead-letter it with this reason.
    #[error("{0}")]
    Rejected(Rejection),
    /// The registry could not be asked; the record may be fine. Retry it,
    /// do not dead-letter it.
    #[error("schema registry unavailable for schema id {schema_id}: {detail}")]
    RegistryUnavailable { schema_id: u32, detail: String },
    /// The registry refuses icsflow's credentials: hold the record, and say
    /// so; only an operator can fix it.
    #[error("schema registry refused the lookup of schema id {schema_id} with HTTP {status}")]
    RegistryRefused { schema_id: u32, status: u16 },
    /// From [`EventDecoder::decode_cached`]: the schema id is not cached
    /// yet; look it up ([`EventDecoder::registry`]) off the async runtime,
    /// then decode again.
    #[error("schema id {schema_id} is not cached yet")]
    LookupNeeded { schema_id: u32 },
}

impl From<Rejection> for DecodeError {
    fn from(rejection: Rejection) -> DecodeError {
        DecodeError::Rejected(rejection)
    }
}

/// Decodes partner records of any feed in either framing.
#[derive(Debug, Clone)]
pub struct EventDecoder {
    catalogue: Arc<SchemaCatalogue>,
    registry: Option<Arc<SchemaRegistryClient>>,
}

impl EventDecoder {
    /// A decoder for single-object records only; Confluent-framed records
    /// are rejected as `unknown_schema` without a registry.
    pub fn new(catalogue: Arc<SchemaCatalogue>) -> EventDecoder {
        EventDecoder {
            catalogue,
            registry: None,
        }
    }

    pub fn with_registry(
        catalogue: Arc<SchemaCatalogue>,
        registry: Arc<SchemaRegistryClient>,
    ) -> EventDecoder {
        EventDecoder {
            catalogue,
            registry: Some(registry),
        }
    }

    pub fn catalogue(&self) -> &Arc<SchemaCatalogue> {
        &self.catalogue
    }

    /// The registry client, when records in Confluent framing are read.
    pub fn registry(&self) -> Option<&Arc<SchemaRegistryClient>> {
        self.registry.as_ref()
    }

    /// Decodes and validates one record, asking the registry (a blocking
    /// request) for a schema id it has not seen.
    pub fn decode(&self, bytes: &[u8], policy: &TimestampPolicy) -> Result<Event, DecodeError> {
        self.decode_with(bytes, policy, true)
    }

    /// Decodes and validates one record without ever waiting on the
    /// registry: a schema id not cached yet is
    /// [`DecodeError::LookupNeeded`].
    pub fn decode_cached(
        &self,
        bytes: &[u8],
        policy: &TimestampPolicy,
    ) -> Result<Event, DecodeError> {
        self.decode_with(bytes, policy, false)
    }

    fn decode_with(
        &self,
        bytes: &[u8],
        policy: &TimestampPolicy,
        ask_registry: bool,
    ) -> Result<Event, DecodeError> {
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(Rejection::new(
                RejectReason::Malformed,
                "the record is larger than 64 KiB",
            )
            .into());
        }
        let (framing, datum) = split_framing(bytes)?;
        let writer = match framing {
            Framing::SingleObject => {
                let fingerprint = u64::from_le_bytes(header_array(&bytes[2..SINGLE_OBJECT_HEADER]));
                Arc::clone(self.catalogue.writer_by_fingerprint(fingerprint).ok_or(
                    Rejection::new(
                        RejectReason::UnknownSchema,
                        "the schema fingerprint matches no schema in schemas/",
                    ),
                )?)
            }
            Framing::Confluent { schema_id } => {
                let registry = self.registry.as_ref().ok_or(Rejection::new(
                    RejectReason::UnknownSchema,
                    "Confluent-framed record, but no schema registry is configured",
                ))?;
                let found = if ask_registry {
                    registry.writer_schema(schema_id)
                } else {
                    registry
                        .cached(schema_id)
                        .ok_or(DecodeError::LookupNeeded { schema_id })?
                        .map_err(LookupError::Rejected)
                };
                found.map_err(|error| match error {
                    LookupError::Rejected(rejection) => DecodeError::Rejected(rejection),
                    LookupError::Unavailable(detail) => {
                        DecodeError::RegistryUnavailable { schema_id, detail }
                    }
                    LookupError::Refused { status } => {
                        DecodeError::RegistryRefused { schema_id, status }
                    }
                })?
            }
        };
        decode_datum(&self.catalogue, &writer, datum, policy).map_err(DecodeError::Rejected)
    }
}

/// Tells the framing from the first bytes and returns the datum after the
/// header.
pub fn split_framing(bytes: &[u8]) -> Result<(Framing, &[u8]), Rejection> {
    let malformed = |explanation| Rejection::new(RejectReason::Malformed, explanation);
    match bytes {
        [] => Err(malformed("the record is empty")),
        [0xC3, 0x01, ..] if bytes.len() >= SINGLE_OBJECT_HEADER => {
            Ok((Framing::SingleObject, &bytes[SINGLE_OBJECT_HEADER..]))
        }
        [0xC3, 0x01, ..] => Err(malformed("the single-object header is cut short")),
        [CONFLUENT_MAGIC, ..] if bytes.len() >= CONFLUENT_HEADER => {
            let schema_id = u32::from_be_bytes(header_array(&bytes[1..CONFLUENT_HEADER]));
            Ok((Framing::Confluent { schema_id }, &bytes[CONFLUENT_HEADER..]))
        }
        [CONFLUENT_MAGIC, ..] => Err(malformed("the Confluent header is cut short")),
        _ => Err(malformed(
            "the record starts with neither C3 01 (single-object) nor 00 (Confluent)",
        )),
    }
}

fn header_array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut array = [0_u8; N];
    array.copy_from_slice(bytes);
    array
}

fn decode_datum(
    catalogue: &SchemaCatalogue,
    writer: &WriterSchema,
    datum: &[u8],
    policy: &TimestampPolicy,
) -> Result<Event, Rejection> {
    match writer.resolution {
        Resolution::Current => decode_current(writer.feed, datum, policy),
        Resolution::Incompatible => Err(Rejection::new(
            RejectReason::IncompatibleSchema,
            "the writer schema cannot be read as the current version of its feed",
        )),
        Resolution::Resolve => {
            let current = catalogue.current(writer.feed);
            let resolved = resolve_to_current(&writer.schema, &current.schema, datum)?;
            decode_current(writer.feed, &resolved, policy)
        }
    }
}

/// Reads another version's datum with apache-avro, resolves it to the
/// current schema, and writes it back out in the current layout. Slower
/// than the direct path, taken only for versions other than the current.
fn resolve_to_current(
    writer: &apache_avro::Schema,
    current: &apache_avro::Schema,
    datum: &[u8],
) -> Result<Vec<u8>, Rejection> {
    let mut remaining = datum;
    // apache-avro may panic where it should refuse (see `classify`): a
    // panic reading a datum is its refusal too.
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        apache_avro::from_avro_datum(writer, &mut remaining, None)
    }));
    let value = match decoded {
        Ok(Ok(value)) => value,
        Ok(Err(_)) | Err(_) => {
            return Err(Rejection::new(
                RejectReason::Malformed,
                "the datum does not match its writer schema",
            ))
        }
    };
    if !remaining.is_empty() {
        return Err(Rejection::new(
            RejectReason::Malformed,
            "bytes are left after the record",
        ));
    }
    let resolved = crate::resolve::resolve(writer, current, value).map_err(|_| {
        Rejection::new(
            RejectReason::IncompatibleSchema,
            "the datum cannot be resolved to the current schema",
        )
    })?;
    apache_avro::to_avro_datum(current, resolved).map_err(|_| {
        Rejection::new(
            RejectReason::IncompatibleSchema,
            "the datum cannot be resolved to the current schema",
        )
    })
}

fn decode_current(feed: Feed, datum: &[u8], policy: &TimestampPolicy) -> Result<Event, Rejection> {
    let event = match feed {
        Feed::Discharge => binary::from_slice::<DischargeRecord<'_>>(datum)
            .map_err(malformed)?
            .into_event(policy),
        Feed::SocialCare => binary::from_slice::<SocialCareRecord<'_>>(datum)
            .map_err(malformed)?
            .into_event(policy),
        Feed::PrimaryCare => binary::from_slice::<PrimaryCareRecord<'_>>(datum)
            .map_err(malformed)?
            .into_event(policy),
    }?;
    Ok(event)
}

fn malformed(error: BinaryError) -> Rejection {
    let explanation = match error {
        BinaryError::UnexpectedEnd => "the record ends early",
        BinaryError::TrailingBytes => "bytes are left after the record",
        BinaryError::InvalidUtf8 => "a string is not UTF-8",
        BinaryError::IndexOutOfRange => "an enum symbol or union branch index is out of range",
        BinaryError::IntegerOutOfRange => "an int field is out of range",
        BinaryError::InvalidBoolean => "a boolean byte is neither 0 nor 1",
        BinaryError::VarintTooLong | BinaryError::NegativeLength => {
            "an integer or length is invalid"
        }
        BinaryError::Unsupported(_) | BinaryError::Custom(_) => {
            "the datum does not match the schema"
        }
    };
    Rejection::new(RejectReason::Malformed, explanation)
}

/// Encodes an event as a datum of the current schema of its feed, without
/// framing.
pub fn encode_datum(event: &Event) -> Vec<u8> {
    let mut output = Vec::with_capacity(256);
    append_datum(event, &mut output);
    output
}

/// Encodes an event in single-object framing with the current schema.
pub fn encode_single_object(catalogue: &SchemaCatalogue, event: &Event) -> Vec<u8> {
    let mut output = Vec::with_capacity(256);
    output.extend_from_slice(&SINGLE_OBJECT_MARKER);
    output.extend_from_slice(&catalogue.current(event.feed()).fingerprint.to_le_bytes());
    append_datum(event, &mut output);
    output
}

/// Encodes an event in Confluent framing, under the id the registry gave the
/// current schema of its feed.
pub fn encode_confluent(event: &Event, schema_id: u32) -> Vec<u8> {
    let mut output = Vec::with_capacity(256);
    output.push(CONFLUENT_MAGIC);
    output.extend_from_slice(&schema_id.to_be_bytes());
    append_datum(event, &mut output);
    output
}

/// Encodes an event in the given framing (the schema id of a Confluent
/// framing is the registry's id for the current schema of the event's feed).
/// The event id of a record in either framing, read from where every
/// feed's schema puts it (the first field, a string), without decoding or
/// validating the rest; `None` unless it is a UUID. For reporting a
/// rejected record to its partner.
pub fn peek_event_id(bytes: &[u8]) -> Option<icsflow_core::EventId> {
    let datum = match bytes {
        [0xc3, 0x01, rest @ ..] => rest.get(8..)?,
        [0x00, rest @ ..] => rest.get(4..)?,
        _ => return None,
    };
    // A zigzag varint length; a UUID's 36 characters fit in one byte.
    let (&length, rest) = datum.split_first()?;
    if length & 0x80 != 0 || length & 1 != 0 {
        return None;
    }
    let text = std::str::from_utf8(rest.get(..usize::from(length >> 1))?).ok()?;
    icsflow_core::EventId::parse("event_id", text).ok()
}

pub fn encode(catalogue: &SchemaCatalogue, event: &Event, framing: Framing) -> Vec<u8> {
    match framing {
        Framing::SingleObject => encode_single_object(catalogue, event),
        Framing::Confluent { schema_id } => encode_confluent(event, schema_id),
    }
}

/// Encodes an event with one field made invalid ([`Alteration`]): the
/// bytes of a record a partner got wrong, for simulators and tests.
pub fn encode_altered(
    catalogue: &SchemaCatalogue,
    event: &Event,
    framing: Framing,
    alteration: Alteration<'_>,
) -> Vec<u8> {
    let mut output = Vec::with_capacity(256);
    match framing {
        Framing::SingleObject => {
            output.extend_from_slice(&SINGLE_OBJECT_MARKER);
            output.extend_from_slice(&catalogue.current(event.feed()).fingerprint.to_le_bytes());
        }
        Framing::Confluent { schema_id } => {
            output.push(CONFLUENT_MAGIC);
            output.extend_from_slice(&schema_id.to_be_bytes());
        }
    }
    let mut buffers = TextBuffers::default();
    let mut record = AnyRecord::from_event(event, &mut buffers);
    record.alter(alteration);
    write_record(&record, &mut output);
    output
}

fn append_datum(event: &Event, output: &mut Vec<u8>) {
    let mut buffers = TextBuffers::default();
    write_record(&AnyRecord::from_event(event, &mut buffers), output);
}

fn write_record(record: &AnyRecord<'_>, output: &mut Vec<u8>) {
    // The wire types built from domain events use only records, enums,
    // unions, strings, booleans and integers, which the encoder always
    // accepts; a failure here is a bug in this crate, not bad input.
    let encoded = match record {
        AnyRecord::Discharge(record) => binary::to_writer(record, output),
        AnyRecord::SocialCare(record) => binary::to_writer(record, output),
        AnyRecord::PrimaryCare(record) => binary::to_writer(record, output),
    };
    encoded.expect("domain events always encode");
}
