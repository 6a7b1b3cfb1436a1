//! The Schema Registry client over real HTTP, against a small stub server
//! on loopback (no registry can run here). Checks what is cached and what
//! is not.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use icsflow_avro::{
    current_schema_file, encode_confluent, DecodeError, EventDecoder, RegistryConnection,
    SchemaCatalogue, SchemaRegistryClient,
};
use icsflow_core::{one_event_of_each_type, Feed, RejectReason};

use crate::policy;

/// Serves `/schemas/ids/{id}`: 1 the discharge schema, 2 not found,
/// 3 a server error, 4 a schema of no feed, 5 a response too slow for the
/// client's timeout, 6 401 (credentials refused), 7 a 12 MB answer. Counts
/// requests per id. A real registry cannot be made to answer 401 or 12 MB
/// here (the registry tests against Apicurio cover the rest).
struct StubRegistry {
    address: String,
    requests: Arc<[AtomicUsize; 8]>,
}

impl StubRegistry {
    fn start() -> StubRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let address = format!("http://{}", listener.local_addr().expect("address"));
        let requests: Arc<[AtomicUsize; 8]> = Arc::new(Default::default());
        let counters = Arc::clone(&requests);
        // Built once: building it per request took longer than the
        // client's timeout on a loaded machine.
        let oversized = serde_json::json!({ "schema": "x".repeat(12 * 1024 * 1024) }).to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut request_line = String::new();
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                // Drain the headers.
                let mut header = String::new();
                while reader.read_line(&mut header).is_ok()
                    && header != "\r\n"
                    && !header.is_empty()
                {
                    header.clear();
                }
                let id: usize = request_line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|path| path.strip_prefix("/schemas/ids/"))
                    .and_then(|id| id.parse().ok())
                    .unwrap_or(0);
                assert!(request_line.starts_with("GET "), "only GET is ever sent");
                counters[id.min(7)].fetch_add(1, Ordering::SeqCst);
                let (status, body) = match id {
                    1 => (
                        "200 OK",
                        serde_json::json!({ "schema": current_schema_file(Feed::Discharge).text })
                            .to_string(),
                    ),
                    2 => (
                        "404 Not Found",
                        r#"{"error_code":40403,"message":"Schema not found"}"#.to_owned(),
                    ),
                    3 => (
                        "500 Internal Server Error",
                        r#"{"error_code":50001}"#.to_owned(),
                    ),
                    4 => (
                        "200 OK",
                        serde_json::json!({ "schema": "\"string\"" }).to_string(),
                    ),
                    6 => (
                        "401 Unauthorized",
                        r#"{"error_code":40101,"message":"Unauthorized"}"#.to_owned(),
                    ),
                    7 => ("200 OK", oversized.clone()),
                    _ => {
                        std::thread::sleep(Duration::from_millis(1500));
                        ("200 OK", "{}".to_owned())
                    }
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        StubRegistry { address, requests }
    }

    fn requests(&self, id: usize) -> usize {
        self.requests[id].load(Ordering::SeqCst)
    }
}

fn decoder_for(registry: &StubRegistry) -> EventDecoder {
    let catalogue = Arc::new(SchemaCatalogue::embedded());
    let client = SchemaRegistryClient::over_http(
        &RegistryConnection::plain(&registry.address, Duration::from_millis(500)),
        Arc::clone(&catalogue),
    )
    .expect("a client");
    EventDecoder::with_registry(catalogue, Arc::new(client))
}

#[test]
fn resolves_ids_over_http_and_caches_answers() {
    let registry = StubRegistry::start();
    let decoder = decoder_for(&registry);
    let event = one_event_of_each_type()[0];
    for _ in 0..3 {
        assert_eq!(
            decoder.decode(&encode_confluent(&event, 1), &policy()),
            Ok(event)
        );
    }
    assert_eq!(registry.requests(1), 1);
}

#[test]
fn permanent_failures_are_rejections_and_are_cached() {
    let registry = StubRegistry::start();
    let decoder = decoder_for(&registry);
    let event = one_event_of_each_type()[0];
    for _ in 0..3 {
        let not_found = decoder.decode(&encode_confluent(&event, 2), &policy());
        assert!(
            matches!(not_found, Err(DecodeError::Rejected(rejection)) if rejection.reason == RejectReason::UnknownSchema)
        );
        let not_ours = decoder.decode(&encode_confluent(&event, 4), &policy());
        assert!(
            matches!(not_ours, Err(DecodeError::Rejected(rejection)) if rejection.reason == RejectReason::IncompatibleSchema)
        );
    }
    assert_eq!((registry.requests(2), registry.requests(4)), (1, 1));
}

/// Regression: a 12 MB answer was "no answer" and retried for ever; a 401
/// was retried for ever as if the registry were down, and nothing said why.
#[test]
fn an_oversized_answer_is_a_cached_rejection_and_a_refusal_says_so() {
    let registry = StubRegistry::start();
    let decoder = decoder_for(&registry);
    let event = one_event_of_each_type()[0];
    for _ in 0..2 {
        let oversized = decoder.decode(&encode_confluent(&event, 7), &policy());
        assert!(
            matches!(&oversized, Err(DecodeError::Rejected(rejection)) if rejection.reason == RejectReason::IncompatibleSchema),
            "{oversized:?}"
        );
        let refused = decoder.decode(&encode_confluent(&event, 6), &policy());
        assert_eq!(
            refused,
            Err(DecodeError::RegistryRefused {
                schema_id: 6,
                status: 401
            })
        );
    }
    assert_eq!((registry.requests(7), registry.requests(6)), (1, 2));
    // A decode that must not wait asks for the lookup instead.
    assert_eq!(
        decoder.decode_cached(&encode_confluent(&event, 1), &policy()),
        Err(DecodeError::LookupNeeded { schema_id: 1 })
    );
    assert_eq!(registry.requests(1), 0);
}

#[test]
fn retriable_failures_are_not_rejections_and_are_not_cached() {
    let registry = StubRegistry::start();
    let decoder = decoder_for(&registry);
    let event = one_event_of_each_type()[0];
    for _ in 0..2 {
        let server_error = decoder.decode(&encode_confluent(&event, 3), &policy());
        assert!(
            matches!(
                server_error,
                Err(DecodeError::RegistryUnavailable { schema_id: 3, .. })
            ),
            "{server_error:?}"
        );
        let timeout = decoder.decode(&encode_confluent(&event, 5), &policy());
        assert!(
            matches!(
                timeout,
                Err(DecodeError::RegistryUnavailable { schema_id: 5, .. })
            ),
            "{timeout:?}"
        );
    }
    assert_eq!((registry.requests(3), registry.requests(5)), (2, 2));
}

#[test]
fn an_unreachable_registry_is_retriable() {
    // Bind and drop to get a loopback port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    let catalogue = Arc::new(SchemaCatalogue::embedded());
    let client = SchemaRegistryClient::over_http(
        &RegistryConnection::plain(
            &format!("http://127.0.0.1:{port}"),
            Duration::from_millis(500),
        ),
        Arc::clone(&catalogue),
    )
    .expect("a client");
    let decoder = EventDecoder::with_registry(catalogue, Arc::new(client));
    let outcome = decoder.decode(
        &encode_confluent(&one_event_of_each_type()[0], 1),
        &policy(),
    );
    assert!(
        matches!(
            outcome,
            Err(DecodeError::RegistryUnavailable { schema_id: 1, .. })
        ),
        "{outcome:?}"
    );
}
