//! The admin and published servers as a client meets them, on loopback.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use icsflow_telemetry::{serve_admin, serve_published, AdminState, Health, Registry};

fn get(address: std::net::SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").expect("request");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

/// Whether the server closed `stream` (a read sees the end, not a timeout).
fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut byte = [0_u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Err(error) => error.kind() == std::io::ErrorKind::ConnectionReset,
        Ok(_) => false,
    }
}

fn serving(
    serve: impl FnOnce(
        tokio::net::TcpListener,
    ) -> Box<dyn std::future::Future<Output = std::io::Result<()>> + Send + Unpin>,
) -> (tokio::runtime::Runtime, std::net::SocketAddr) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let address = listener.local_addr().expect("address");
    runtime.spawn(serve(listener));
    (runtime, address)
}

fn published(
    listener: tokio::net::TcpListener,
) -> Box<dyn std::future::Future<Output = std::io::Result<()>> + Send + Unpin> {
    Box::new(Box::pin(serve_published(
        listener,
        Registry::new(),
        std::future::pending(),
    )))
}

fn admin(
    listener: tokio::net::TcpListener,
) -> Box<dyn std::future::Future<Output = std::io::Result<()>> + Send + Unpin> {
    Box::new(Box::pin(serve_admin(
        listener,
        AdminState {
            registry: Registry::new(),
            health: std::sync::Arc::new(Health::new(None)),
        },
        std::future::pending(),
    )))
}

/// Regression: idle and half-open connections were held for ever (300 held
/// after 60 s), so a client could exhaust the process's file descriptors
/// through the port meant to be opened beyond the partners. Past the
/// limit, the oldest connections are closed; the header-read timeout
/// closes the rest.
#[test]
fn idle_connections_are_closed_and_their_number_is_bounded() {
    let (_runtime, address) = serving(published);
    assert!(get(address, "/metrics").contains(" 200 OK"));

    // Ten more than the limit, sending nothing.
    let mut idle: Vec<TcpStream> = (0..74)
        .map(|_| {
            let stream = TcpStream::connect(address).expect("connect");
            stream
                .set_read_timeout(Some(Duration::from_millis(200)))
                .expect("timeout");
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let mut closed = Vec::new();
    for stream in &mut idle {
        // Without waiting: an open connection has nothing to read yet.
        stream.set_nonblocking(true).expect("nonblocking");
        closed.push(closed_by_server(stream));
        stream.set_nonblocking(false).expect("blocking");
    }
    assert_eq!(
        closed.iter().filter(|closed| **closed).count(),
        10,
        "the oldest connections over the limit are closed at once"
    );
    assert!(closed[..10].iter().all(|closed| *closed), "{closed:?}");

    // The header-read timeout (2 s) closes every idle one.
    let started = Instant::now();
    for stream in &mut idle {
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .expect("timeout");
        assert!(closed_by_server(stream), "an idle connection was held");
    }
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert!(get(address, "/metrics").contains(" 200 OK"));
}

/// Regression: one client holding 64 keep-alive connections (a request
/// every 3 s on each) silenced both ports: scrapes succeeded 0 of 53 on the
/// admin port; clients holding half-sent headers made 21 of 53 fail. With
/// 200 hostile connections open, keep-alive and half-header ones, a fresh
/// scraper gets every one of 20 answers within a second each, on both.
#[test]
fn no_client_can_starve_a_scraper() {
    for (port, serve) in [("admin", admin as fn(_) -> _), ("published", published)] {
        let (_runtime, address) = serving(serve);
        let mut hostile = Vec::new();
        for number in 0..200 {
            let mut stream = TcpStream::connect(address).expect("connect");
            if number % 2 == 0 {
                let _ = write!(stream, "GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n");
            } else {
                let _ = write!(stream, "GET /metrics HTTP/1.1\r\nHost: h\r\nX-Slow: ");
            }
            hostile.push(stream);
        }
        for scrape in 0..20 {
            let started = Instant::now();
            let response = get(address, "/metrics");
            assert!(
                response.contains(" 200 OK"),
                "{port} scrape {scrape}: {response:?}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "{port} scrape {scrape} took {:?}",
                started.elapsed()
            );
            // The hostile client keeps its connections busy.
            for stream in hostile.iter_mut().step_by(10) {
                let _ = write!(stream, "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n");
            }
            let replacement = TcpStream::connect(address).expect("connect");
            hostile.push(replacement);
        }
    }
}
