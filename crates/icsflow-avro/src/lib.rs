//! The one crate that knows Avro bytes.
//!
//! It holds the partner schemas (embedded from `schemas/`), decodes both
//! framings partners may publish (single-object and Confluent wire format,
//! the latter through a Schema Registry client), resolves older and newer
//! compatible versions to the current one, and validates the result into
//! `icsflow_core::Event`. It also encodes events for icsflow's own producers
//! and the partner publish tool, checks schema compatibility between
//! versions, and renders the data dictionary.
//!
//! It must not know about Kafka, HTTP servers or metrics: callers get an
//! [`Event`](icsflow_core::Event) or a [`DecodeError`] with a bounded reason.

mod binary;
mod canonical;
mod catalogue;
mod codec;
mod compatibility;
mod dictionary;
mod json;
mod json_schema;
mod registry;
mod resolve;
mod wire;

pub use wire::Alteration;

pub use canonical::fingerprint_of;
pub use catalogue::{
    current_schema_file, latest_schema_file, CurrentSchema, Resolution, SchemaCatalogue,
    SchemaFile, WriterSchema, EMBEDDED_SCHEMAS,
};
pub use codec::{
    encode, encode_altered, encode_confluent, encode_datum, encode_single_object, peek_event_id,
    split_framing, DecodeError, EventDecoder, Framing, MAX_RECORD_BYTES,
};
pub use compatibility::{check_schema_directory, CompatibilityReport, SchemaProblem};
pub use dictionary::render_data_dictionary;
pub use json::{decode_json, encode_json, encode_json_altered, json_organisation, JsonRejection};
pub use json_schema::{json_schema_file_name, render_json_schema, JSON_SCHEMA_DIRECTORY};
pub use registry::{
    check_ca_pem, HttpTransport, LookupError, RegistryConnection, RegistryCredentials,
    RegistryResponse, RegistryTransport, SchemaRegistryClient, Secret, MAX_ANSWER_BYTES,
};

/// Errors of this crate's set-up functions (not of decoding records, which
/// are [`DecodeError`]s).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid Avro schema: {0}")]
    InvalidSchema(String),
    #[error("the schema is not an icsflow event schema (its record name matches no feed)")]
    NotAnEventSchema,
    #[error("no schema file for the {0} feed")]
    MissingFeedSchema(icsflow_core::Feed),
}
