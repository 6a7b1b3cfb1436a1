//! The admin and published servers as a client meets them, on loopback.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use icsflow_telemetry::{serve_published, Registry};

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

/// Regression: idle and half-open connections were held for ever (300 held
/// after 60 s), so a client could exhaust the process's file descriptors
/// through the port meant to be opened beyond the partners.
#[test]
fn idle_connections_are_closed_and_their_number_is_bounded() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let address = listener.local_addr().expect("address");
    runtime.spawn(serve_published(
        listener,
        Registry::new(),
        std::future::pending(),
    ));
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
    let mut refused = 0;
    for stream in &mut idle {
        // Without waiting: an open connection has nothing to read yet.
        stream.set_nonblocking(true).expect("nonblocking");
        refused += usize::from(closed_by_server(stream));
        stream.set_nonblocking(false).expect("blocking");
    }
    assert_eq!(refused, 10, "connections over the limit are closed at once");

    // The header-read timeout (5 s) closes every idle one.
    let started = Instant::now();
    for stream in &mut idle {
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .expect("timeout");
        assert!(closed_by_server(stream), "an idle connection was held");
    }
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "{:?}",
        started.elapsed()
    );
    assert!(get(address, "/metrics").contains(" 200 OK"));
}
