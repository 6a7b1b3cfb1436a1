//! A Confluent-compatible Schema Registry client, for records in the
//! Confluent wire format (`00` + 4-byte schema id).
//!
//! The roles only ever send `GET /schemas/ids/{id}`; only `icsflow publish`
//! registers a schema (`POST /subjects/{subject}/versions`), for a partner
//! who would otherwise look the id up by hand. Answers are cached for
//! the life of the process, and so are permanent failures (the id does not
//! exist, the schema is not an icsflow event schema, the answer is larger
//! than [`MAX_ANSWER_BYTES`]), so a partner publishing with a bad id costs
//! one request, not one per record. Retriable failures (timeouts, refused
//! connections, 5xx) are not cached: the caller retries the record later
//! instead of dead-lettering it. An answer of 401 or 403 is neither: the
//! registry refuses icsflow's own credentials, which only an operator can
//! fix, so it is reported apart ([`LookupError::Refused`]) for the caller to
//! say so loudly.
//!
//! [`SchemaRegistryClient::cached`] never sends a request, so that a caller
//! on an async runtime can run [`SchemaRegistryClient::writer_schema`]'s
//! blocking request off it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use icsflow_core::{RejectReason, Rejection};

use crate::catalogue::{SchemaCatalogue, WriterSchema};

/// Why a schema id could not be turned into a writer schema.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// Final for this id: the record is rejected with this reason.
    #[error("{0}")]
    Rejected(Rejection),
    /// Try again later; nothing is cached.
    #[error("schema registry unavailable: {0}")]
    Unavailable(String),
    /// The registry refuses icsflow's credentials (HTTP 401 or 403): not
    /// the record's fault, and no retry helps until the settings change.
    #[error(
        "schema registry refused the request with HTTP {status}: check schema_registry credentials"
    )]
    Refused { status: u16 },
}

/// The largest registry answer read; larger is refused as not an icsflow
/// schema (the largest of icsflow's own is a few KiB).
pub const MAX_ANSWER_BYTES: u64 = 1024 * 1024;

/// The most refusals (unknown or unusable ids) the client remembers.
const REFUSALS_CACHED: usize = 1024;

/// How the registry answered a GET, before interpretation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistryResponse {
    /// HTTP status and body.
    Answer { status: u16, body: String },
    /// No answer: connection refused, timeout, broken response.
    NoAnswer(String),
    /// The answer's body is larger than [`MAX_ANSWER_BYTES`].
    TooLarge { status: u16 },
}

/// Where registry answers come from: HTTP in production; tests may
/// substitute, though the HTTP client itself is tested against a real
/// server on loopback.
pub trait RegistryTransport: Send + Sync + std::fmt::Debug {
    fn get(&self, path: &str) -> RegistryResponse;

    /// A POST of a JSON body; transports that only read need not send.
    fn post(&self, _path: &str, _body: &str) -> RegistryResponse {
        RegistryResponse::NoAnswer("this transport does not send POST requests".to_owned())
    }
}

/// A secret (a password, a token): never printed, not even by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Secret(***)")
    }
}

/// How icsflow authenticates to the registry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum RegistryCredentials {
    #[default]
    None,
    /// HTTP basic authentication (Confluent Cloud's API key and secret).
    Basic { username: String, password: Secret },
    /// `Authorization: Bearer TOKEN`.
    Bearer(Secret),
}

impl RegistryCredentials {
    fn header(&self) -> Option<String> {
        match self {
            RegistryCredentials::None => None,
            RegistryCredentials::Basic { username, password } => Some(format!(
                "Basic {}",
                base64(format!("{username}:{}", password.expose()).as_bytes())
            )),
            RegistryCredentials::Bearer(token) => Some(format!("Bearer {}", token.expose())),
        }
    }
}

/// Where the registry is and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryConnection {
    /// `http://registry:8081` or `https://...`, without a trailing slash.
    pub url: String,
    /// How long one request may take.
    pub timeout: Duration,
    pub credentials: RegistryCredentials,
    /// PEM certificates to trust for `https` instead of the Mozilla roots
    /// built in (a private certificate authority).
    pub ca_pem: Option<Vec<u8>>,
}

impl RegistryConnection {
    /// A plain connection with no credentials.
    pub fn plain(url: &str, timeout: Duration) -> RegistryConnection {
        RegistryConnection {
            url: url.trim_end_matches('/').to_owned(),
            timeout,
            credentials: RegistryCredentials::None,
            ca_pem: None,
        }
    }
}

/// HTTP or HTTPS (rustls) transport with a whole-request timeout and the
/// connection's credentials on every request.
#[derive(Debug)]
pub struct HttpTransport {
    base_url: String,
    agent: ureq::Agent,
    /// The `Authorization` header, if any (`Debug` shows whether, not what).
    authorization: Option<Secret>,
}

impl HttpTransport {
    /// A transport for `connection`; fails when its CA certificates cannot
    /// be read as PEM.
    pub fn new(connection: &RegistryConnection) -> Result<HttpTransport, String> {
        let mut config = ureq::Agent::config_builder()
            .timeout_global(Some(connection.timeout))
            .http_status_as_error(false);
        if let Some(pem) = &connection.ca_pem {
            let certificates = ca_certificates(pem)?;
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::new_with_certs(&certificates))
                    .build(),
            );
        }
        Ok(HttpTransport {
            base_url: connection.url.trim_end_matches('/').to_owned(),
            agent: ureq::Agent::new_with_config(config.build()),
            authorization: connection.credentials.header().map(Secret),
        })
    }

    fn authorized<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.authorization {
            Some(value) => request.header("Authorization", value.expose()),
            None => request,
        }
    }
}

/// The certificates of a CA file (PEM): at least one, or why not.
fn ca_certificates(pem: &[u8]) -> Result<Vec<ureq::tls::Certificate<'static>>, String> {
    let certificates: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(certificate)) => Some(Ok(certificate)),
            Ok(_) => None,
            Err(error) => Some(Err(error)),
        })
        .collect::<Result<_, _>>()
        .map_err(|error| format!("the CA file is not PEM: {error}"))?;
    if certificates.is_empty() {
        return Err("the CA file holds no certificate".to_owned());
    }
    Ok(certificates)
}

/// Checks a CA file's contents as [`HttpTransport::new`] will read them.
pub fn check_ca_pem(pem: &[u8]) -> Result<(), String> {
    ca_certificates(pem).map(|_| ())
}

/// Standard base64 with padding (RFC 4648), for basic authentication.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let group = chunk
            .iter()
            .enumerate()
            .fold(0_u32, |group, (index, byte)| {
                group | u32::from(*byte) << (16 - 8 * index)
            });
        for index in 0..4 {
            if index <= chunk.len() {
                out.push(char::from(
                    ALPHABET[(group >> (18 - 6 * index) & 63) as usize],
                ));
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl RegistryTransport for HttpTransport {
    fn get(&self, path: &str) -> RegistryResponse {
        let url = format!("{}{path}", self.base_url);
        let response = match self
            .authorized(self.agent.get(&url))
            .header("Accept", "application/vnd.schemaregistry.v1+json")
            .call()
        {
            Ok(response) => response,
            Err(error) => return RegistryResponse::NoAnswer(error.to_string()),
        };
        read_answer(response)
    }

    fn post(&self, path: &str, body: &str) -> RegistryResponse {
        let url = format!("{}{path}", self.base_url);
        match self
            .authorized(self.agent.post(&url))
            .header("Content-Type", "application/vnd.schemaregistry.v1+json")
            .send(body)
        {
            Ok(response) => read_answer(response),
            Err(error) => RegistryResponse::NoAnswer(error.to_string()),
        }
    }
}

/// The status and body of an answer, reading at most [`MAX_ANSWER_BYTES`].
fn read_answer(mut response: ureq::http::Response<ureq::Body>) -> RegistryResponse {
    let status = response.status().as_u16();
    match response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_string()
    {
        Ok(body) => RegistryResponse::Answer { status, body },
        Err(ureq::Error::BodyExceedsLimit(_)) => RegistryResponse::TooLarge { status },
        Err(error) => RegistryResponse::NoAnswer(error.to_string()),
    }
}

/// Resolves schema ids to writer schemas, with the cache described above.
#[derive(Debug)]
pub struct SchemaRegistryClient {
    transport: Box<dyn RegistryTransport>,
    catalogue: Arc<SchemaCatalogue>,
    cache: Mutex<HashMap<u32, Result<Arc<WriterSchema>, Rejection>>>,
}

impl SchemaRegistryClient {
    pub fn new(
        transport: Box<dyn RegistryTransport>,
        catalogue: Arc<SchemaCatalogue>,
    ) -> SchemaRegistryClient {
        SchemaRegistryClient {
            transport,
            catalogue,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// A client over HTTP or HTTPS; fails when the connection's CA
    /// certificates cannot be read.
    pub fn over_http(
        connection: &RegistryConnection,
        catalogue: Arc<SchemaCatalogue>,
    ) -> Result<SchemaRegistryClient, String> {
        Ok(SchemaRegistryClient::new(
            Box::new(HttpTransport::new(connection)?),
            catalogue,
        ))
    }

    /// Registers `schema` (Avro JSON) under `subject` and returns the id the
    /// registry gives it (the existing id when it already holds the same
    /// schema). A refusal of the schema, for example as incompatible with
    /// the subject's earlier versions, is [`LookupError::Rejected`].
    pub fn register(&self, subject: &str, schema: &str) -> Result<u32, LookupError> {
        #[derive(serde::Deserialize)]
        struct Registered {
            id: u32,
        }
        let body = serde_json::json!({ "schema": schema }).to_string();
        match self
            .transport
            .post(&format!("/subjects/{subject}/versions"), &body)
        {
            RegistryResponse::Answer { status: 200, body } => serde_json::from_str::<Registered>(&body)
                .map(|registered| registered.id)
                .map_err(|_| LookupError::Unavailable("the registry's answer has no id".to_owned())),
            RegistryResponse::Answer {
                status: status @ (401 | 403),
                ..
            } => Err(LookupError::Refused { status }),
            RegistryResponse::Answer { status: 409 | 422, .. } => Err(LookupError::Rejected(Rejection::new(
                RejectReason::IncompatibleSchema,
                "the registry refused the schema under this subject (incompatible with its earlier versions, or invalid)",
            ))),
            RegistryResponse::Answer { status, .. } | RegistryResponse::TooLarge { status } => Err(
                LookupError::Unavailable(format!("schema registry answered HTTP {status}")),
            ),
            RegistryResponse::NoAnswer(detail) => Err(LookupError::Unavailable(detail)),
        }
    }

    /// The cached outcome for `schema_id`, without asking the registry.
    pub fn cached(&self, schema_id: u32) -> Option<Result<Arc<WriterSchema>, Rejection>> {
        self.lock_cache().get(&schema_id).cloned()
    }

    /// The writer schema of `schema_id`, from the cache or by asking the
    /// registry (a blocking request of at most the transport's timeout).
    pub fn writer_schema(&self, schema_id: u32) -> Result<Arc<WriterSchema>, LookupError> {
        if let Some(cached) = self.cached(schema_id) {
            return cached.map_err(LookupError::Rejected);
        }
        // The lock is not held across the request: two threads may fetch the
        // same id once each, which is cheaper than serialising every lookup.
        let outcome = match self.transport.get(&format!("/schemas/ids/{schema_id}")) {
            RegistryResponse::NoAnswer(detail) => return Err(LookupError::Unavailable(detail)),
            RegistryResponse::Answer { status: 200, body } => self.interpret(&body),
            RegistryResponse::Answer { status: 404, .. } => Err(Rejection::new(
                RejectReason::UnknownSchema,
                "the schema registry has no schema with this id",
            )),
            RegistryResponse::Answer {
                status: status @ (401 | 403),
                ..
            }
            | RegistryResponse::TooLarge {
                status: status @ (401 | 403),
            } => return Err(LookupError::Refused { status }),
            RegistryResponse::TooLarge { status: 200 } => Err(Rejection::new(
                RejectReason::IncompatibleSchema,
                "the registered schema is larger than any icsflow event schema (over 1 MiB)",
            )),
            RegistryResponse::TooLarge { status } => {
                return Err(LookupError::Unavailable(format!(
                    "schema registry answered HTTP {status} with an oversized body"
                )));
            }
            RegistryResponse::Answer { status, .. } => {
                return Err(LookupError::Unavailable(format!(
                    "schema registry answered HTTP {status}"
                )));
            }
        };
        let mut cache = self.lock_cache();
        if outcome.is_err() {
            // A refusal is cached under an id the record chose: keep at
            // most this many, forgetting one at random for each new one
            // past it (a forgotten id is only asked again), so records
            // naming ever new ids cannot grow the cache.
            let refusals = cache.values().filter(|cached| cached.is_err()).count();
            if refusals >= REFUSALS_CACHED {
                let forgotten = cache
                    .iter()
                    .find_map(|(id, cached)| cached.is_err().then_some(*id));
                if let Some(forgotten) = forgotten {
                    cache.remove(&forgotten);
                }
            }
        }
        cache.insert(schema_id, outcome.clone());
        drop(cache);
        outcome.map_err(LookupError::Rejected)
    }

    fn interpret(&self, body: &str) -> Result<Arc<WriterSchema>, Rejection> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct SchemaById {
            schema: String,
            #[serde(default)]
            schema_type: Option<String>,
            #[serde(default)]
            references: Vec<serde_json::Value>,
        }
        let not_icsflow = Rejection::new(
            RejectReason::IncompatibleSchema,
            "the registered schema is not an icsflow event schema",
        );
        let answer: SchemaById = serde_json::from_str(body).map_err(|_| not_icsflow)?;
        if answer
            .schema_type
            .as_deref()
            .is_some_and(|kind| kind != "AVRO")
            || !answer.references.is_empty()
        {
            return Err(not_icsflow);
        }
        self.catalogue
            .classify(&answer.schema)
            .map(Arc::new)
            .map_err(|_| not_icsflow)
    }

    /// Refusals cached (see [`SchemaRegistryClient::writer_schema`]).
    #[cfg(test)]
    fn refusals_cached(&self) -> usize {
        self.lock_cache()
            .values()
            .filter(|cached| cached.is_err())
            .count()
    }

    fn lock_cache(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<u32, Result<Arc<WriterSchema>, Rejection>>> {
        // A panic while holding the lock leaves a map that is still valid.
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A registry that knows no id.
    #[derive(Debug)]
    struct KnowsNothing;

    impl RegistryTransport for KnowsNothing {
        fn get(&self, _path: &str) -> RegistryResponse {
            RegistryResponse::Answer {
                status: 404,
                body: String::new(),
            }
        }
    }

    /// Regression: refusals were cached under the id a record named,
    /// without bound, so records naming ever new ids grew the cache.
    #[test]
    fn records_naming_ever_new_ids_cannot_grow_the_cache() {
        let client = SchemaRegistryClient::new(
            Box::new(KnowsNothing),
            Arc::new(SchemaCatalogue::embedded()),
        );
        for schema_id in 0..3 * REFUSALS_CACHED as u32 {
            assert!(matches!(
                client.writer_schema(schema_id),
                Err(LookupError::Rejected(_))
            ));
        }
        assert_eq!(client.refusals_cached(), REFUSALS_CACHED);
    }

    #[test]
    fn base64_matches_rfc_4648_and_secrets_never_print() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
        let credentials = RegistryCredentials::Basic {
            username: "rvw".to_owned(),
            password: Secret::new("s3cret"),
        };
        assert_eq!(
            credentials.header().as_deref(),
            Some("Basic cnZ3OnMzY3JldA==")
        );
        assert!(!format!("{credentials:?}").contains("s3cret"));
        let connection = RegistryConnection {
            credentials,
            ..RegistryConnection::plain("https://registry", Duration::from_secs(1))
        };
        let transport = HttpTransport::new(&connection).expect("a transport");
        assert!(!format!("{transport:?}").contains("cnZ3OnMzY3JldA"));
        let unreadable = RegistryConnection {
            ca_pem: Some(b"not a certificate".to_vec()),
            ..connection
        };
        assert!(HttpTransport::new(&unreadable).is_err());
    }
}
