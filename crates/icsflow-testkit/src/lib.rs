//! What the tests and benchmarks share: a real Kafka-protocol broker, tansu,
//! on a loopback port, one per test or benchmark so that they run in
//! parallel without sharing topics, stopped when dropped.
//!
//! A dev-dependency only: no role or tool depends on this crate, and it
//! depends on nothing but the standard library and the `tansu` binary
//! (`make test` installs it).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where tansu keeps its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// SQLite in a temporary folder: survives a restart of the broker and
    /// reports correct high watermarks. For correctness.
    Sqlite,
    /// In memory: faster, but its high watermarks can be wrong and a restart
    /// loses every topic. For throughput only.
    Memory,
}

/// A running tansu broker.
#[derive(Debug)]
pub struct Broker {
    child: Child,
    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub address: String,
    folder: PathBuf,
    storage: Storage,
}

impl Broker {
    /// Starts tansu with durable storage and waits until it accepts
    /// connections.
    pub fn start() -> Broker {
        Broker::start_with(Storage::Sqlite)
    }

    /// Starts tansu with the given storage and waits until it accepts
    /// connections.
    pub fn start_with(storage: Storage) -> Broker {
        let port = free_port();
        let folder =
            std::env::temp_dir().join(format!("icsflow-broker-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&folder).expect("broker folder");
        let address = format!("127.0.0.1:{port}");
        let child = Broker::spawn(&folder, &address, storage);
        Broker {
            child,
            address,
            folder,
            storage,
        }
    }

    /// The broker's process id, for reading its CPU time.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the broker (SIGINT, as an operator would) and keeps its data.
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let started = Instant::now();
        while self.child.try_wait().ok().flatten().is_none() {
            if started.elapsed() > Duration::from_secs(15) {
                let _ = self.child.kill();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the broker again on the same port and storage.
    pub fn restart(&mut self) {
        self.child = Broker::spawn(&self.folder, &self.address, self.storage);
    }

    /// Creates a topic with the broker's own tool.
    pub fn create_topic(&self, name: &str, partitions: u32) {
        let output = Command::new("tansu")
            .args([
                "topic",
                "create",
                name,
                "--broker",
                &format!("tcp://{}", self.address),
                "--partitions",
                &partitions.to_string(),
            ])
            .output()
            .expect("tansu topic create runs");
        assert!(
            output.status.success(),
            "creating {name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn spawn(folder: &Path, address: &str, storage: Storage) -> Child {
        let url = format!("tcp://{address}");
        // tansu reads the SQLite path relative to its working folder.
        let engine = match storage {
            Storage::Sqlite => "sqlite://broker.db",
            Storage::Memory => "memory://tansu/",
        };
        let child = Command::new("tansu")
            .current_dir(folder)
            .args(["broker", "--storage-engine", engine])
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot start the tansu broker ({error}); `make test` installs it: cargo install tansu --version 0.6.0 --locked --features dynostore,libsql")
            });
        let started = Instant::now();
        while TcpStream::connect(address).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "tansu did not start listening on {address}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

/// A loopback port nobody listens on (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}
