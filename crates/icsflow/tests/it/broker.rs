//! A real Kafka-protocol broker for tests: tansu on a loopback port with
//! durable SQLite storage in a temporary folder, one per test so tests run
//! in parallel without sharing topics, stopped when the test ends.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct Broker {
    child: Child,
    pub(crate) address: String,
    folder: PathBuf,
}

impl Broker {
    /// Starts tansu and waits until it accepts connections.
    pub(crate) fn start() -> Broker {
        let port = free_port();
        let folder =
            std::env::temp_dir().join(format!("icsflow-broker-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&folder).expect("broker folder");
        let address = format!("127.0.0.1:{port}");
        let child = Broker::spawn(&folder, &address);
        Broker {
            child,
            address,
            folder,
        }
    }

    /// Stops the broker (SIGINT, as an operator would) and keeps its data.
    pub(crate) fn stop(&mut self) {
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
    pub(crate) fn restart(&mut self) {
        self.child = Broker::spawn(&self.folder, &self.address);
    }

    fn spawn(folder: &std::path::Path, address: &str) -> Child {
        let url = format!("tcp://{address}");
        // tansu reads the SQLite path relative to its working folder.
        let child = Command::new("tansu")
            .current_dir(folder)
            .args(["broker", "--storage-engine", "sqlite://broker.db"])
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

    /// Creates a topic with the broker's own tool.
    pub(crate) fn create_topic(&self, name: &str, partitions: u32) {
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
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

/// A loopback port nobody listens on (bound, then released).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}
