//! What the tests and benchmarks share: an Apache Kafka broker on loopback
//! ports, run from the jars `make kafka` copies out of Maven Central, and
//! an Apicurio Registry (its Confluent-compatible API) from the archive
//! `make apicurio` unpacks.
//!
//! Tests that do not stop the broker share one per test binary
//! ([`Broker::shared`]) and keep apart by random topic and group names
//! ([`unique_name`]); tests that stop, kill or freeze it start their own
//! ([`Broker::start`]). A dev-dependency only: no role or tool depends on
//! this crate.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

/// The Kafka version `tests/kafka/pom.xml` fetches; the docs name it.
pub const KAFKA_VERSION: &str = "4.1.2";

/// A running Apache Kafka broker (combined broker and controller, KRaft),
/// killed and its folder removed when dropped or when the test process
/// ends.
#[derive(Debug)]
pub struct Broker {
    /// The watcher shell: it owns the JVM and kills it if the test process
    /// goes away without dropping the broker (a panic, or the shared one).
    watcher: Child,
    java_pid: u32,
    /// `127.0.0.1:PORT`, for `bootstrap.servers`. On a secured broker,
    /// its unauthenticated administrator's listener (a super user).
    pub address: String,
    /// On a secured broker ([`Broker::start_secured`]), the SASL/SCRAM
    /// listener, where every client is a user and the ACLs apply.
    pub sasl_address: Option<String>,
    folder: PathBuf,
    starts: u32,
}

impl Broker {
    /// Starts a broker of the test's own, for tests that stop, kill or
    /// freeze it, and waits until it is ready.
    pub fn start() -> Broker {
        Broker::start_with(None)
    }

    /// Starts a broker that authenticates and authorizes: a
    /// SASL_PLAINTEXT listener with SCRAM-SHA-512 for these users (name,
    /// password) at [`Broker::sasl_address`], Kafka's StandardAuthorizer,
    /// and nothing allowed that no ACL allows. [`Broker::address`] stays an
    /// unauthenticated listener for the test's own administration (its
    /// principal, `User:ANONYMOUS`, is a super user), as an operator's
    /// internal listener would be.
    pub fn start_secured(users: &[(&str, &str)]) -> Broker {
        Broker::start_with(Some(users))
    }

    fn start_with(users: Option<&[(&str, &str)]>) -> Broker {
        let port = free_port();
        let controller_port = free_port();
        let sasl_port = users.map(|_| free_port());
        let folder =
            std::env::temp_dir().join(format!("icsflow-kafka-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&folder).expect("broker folder");
        let address = format!("127.0.0.1:{port}");
        write_configuration(&folder, port, controller_port, sasl_port);
        format_storage(&folder, users.unwrap_or_default());
        let (watcher, java_pid) = spawn(&folder, 1);
        Broker {
            watcher,
            java_pid,
            address,
            sasl_address: sasl_port.map(|port| format!("127.0.0.1:{port}")),
            folder,
            starts: 1,
        }
    }

    /// Runs Kafka's own `kafka-acls.sh` tool (`org.apache.kafka.tools.
    /// AclCommand`) with these arguments, as an operator would; returns
    /// its standard output, or panics with its errors.
    pub fn kafka_acls(&self, arguments: &[&str]) -> String {
        let output = Command::new("java")
            .args(["-Xmx128m", "-cp", &java_classpath()])
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                self.folder.join("log4j2.properties").display()
            ))
            .arg("org.apache.kafka.tools.AclCommand")
            .args(arguments)
            .output()
            .expect("java runs Kafka's ACL tool");
        assert!(
            output.status.success(),
            "kafka-acls {arguments:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The broker every test of this process that does not stop it shares.
    /// Started on first use; killed when the process ends.
    pub fn shared() -> &'static Broker {
        static SHARED: OnceLock<Broker> = OnceLock::new();
        SHARED.get_or_init(Broker::start)
    }

    /// The JVM's process id, for reading its CPU time.
    pub fn pid(&self) -> u32 {
        self.java_pid
    }

    /// Stops the broker as an operator would (SIGTERM, a controlled
    /// shutdown) and keeps its data.
    pub fn stop(&mut self) {
        signal("TERM", self.java_pid);
        self.wait_for_exit(Duration::from_secs(60));
    }

    /// Kills the broker (SIGKILL): no shutdown, data as the disk has it.
    pub fn kill(&mut self) {
        signal("KILL", self.java_pid);
        self.wait_for_exit(Duration::from_secs(10));
    }

    /// Freezes the broker (SIGSTOP): connections stay open, nothing is
    /// answered, as with a broker stuck in a long pause.
    pub fn freeze(&self) {
        signal("STOP", self.java_pid);
    }

    /// Lets a frozen broker run again (SIGCONT).
    pub fn thaw(&self) {
        signal("CONT", self.java_pid);
    }

    /// Starts the broker again on the same ports and data, and waits until
    /// it is ready.
    pub fn restart(&mut self) {
        self.starts += 1;
        let (watcher, java_pid) = spawn(&self.folder, self.starts);
        self.watcher = watcher;
        self.java_pid = java_pid;
    }

    /// Creates a topic through the Admin API (waiting until its metadata
    /// is served).
    pub fn create_topic(&self, name: &str, partitions: u32) {
        self.create_topics(&[(name, partitions)]);
    }

    /// Creates topics through the Admin API in one request.
    pub fn create_topics(&self, topics: &[(&str, u32)]) {
        let admin = self.admin();
        let new_topics: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|(name, partitions)| {
                let count = i32::try_from(*partitions).expect("a partition count");
                NewTopic::new(name, count, TopicReplication::Fixed(1))
            })
            .collect();
        let results = admin
            .runtime
            .block_on(admin.client.create_topics(&new_topics, &admin.options))
            .expect("create topics");
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => panic!("creating {topic}: {code}"),
            }
        }
    }

    /// An Admin API client of this broker, with a runtime to wait on it.
    fn admin(&self) -> Admin {
        Admin {
            client: ClientConfig::new()
                .set("bootstrap.servers", &self.address)
                .create()
                .expect("admin client"),
            options: AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
        }
    }

    /// Grows the topic to `total` partitions in place.
    pub fn add_partitions(&self, topic: &str, total: usize) {
        let admin = self.admin();
        let results = admin
            .runtime
            .block_on(admin.client.create_partitions(
                &[rdkafka::admin::NewPartitions::new(topic, total)],
                &admin.options,
            ))
            .expect("create partitions");
        for result in results {
            if let Err((topic, code)) = result {
                panic!("adding partitions to {topic}: {code}");
            }
        }
    }

    /// Deletes every record of the topic's partitions `0..partitions` (as
    /// retention does when they grow old): each partition's oldest offset
    /// becomes its end.
    pub fn delete_all_records(&self, topic: &str, partitions: i32) {
        let admin = self.admin();
        let mut offsets = rdkafka::TopicPartitionList::new();
        for partition in 0..partitions {
            offsets
                .add_partition_offset(topic, partition, rdkafka::Offset::End)
                .expect("a partition");
        }
        let deleted = admin
            .runtime
            .block_on(admin.client.delete_records(&offsets, &admin.options))
            .expect("delete records");
        for element in deleted.elements() {
            if let Err(error) = element.error() {
                panic!(
                    "deleting the records of {topic}/{}: {error}",
                    element.partition()
                );
            }
        }
    }

    fn wait_for_exit(&mut self, deadline: Duration) {
        let started = Instant::now();
        while Path::new(&format!("/proc/{}", self.java_pid)).exists() && !is_zombie(self.java_pid) {
            if started.elapsed() > deadline {
                signal("KILL", self.java_pid);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.watcher.wait();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        signal("CONT", self.java_pid);
        signal("KILL", self.java_pid);
        let _ = self.watcher.wait();
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

struct Admin {
    client: AdminClient<DefaultClientContext>,
    options: AdminOptions,
    runtime: tokio::runtime::Runtime,
}

/// A name no other test of any process uses: `prefix` with the process id,
/// a counter and the clock, as rust-rdkafka's tests name their topics.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A loopback port nobody listens on (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// Where `make kafka` put the broker's jars: `ICSFLOW_KAFKA_LIBS`, or
/// `target/kafka/libs` in the workspace.
fn kafka_libs() -> PathBuf {
    std::env::var_os("ICSFLOW_KAFKA_LIBS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/kafka/libs"),
        PathBuf::from,
    )
}

/// The single-node settings: combined roles on loopback, replication
/// factor 1 for the internal topics, no initial rebalance delay, small
/// internal partition counts and cleaner buffer so that it starts fast.
fn write_configuration(folder: &Path, port: u16, controller_port: u16, sasl_port: Option<u16>) {
    let data = folder.join("data");
    let (sasl_listener, sasl_protocol, security) = match sasl_port {
        Some(sasl_port) => (
            format!(",SASL_PLAINTEXT://127.0.0.1:{sasl_port}"),
            ",SASL_PLAINTEXT:SASL_PLAINTEXT",
            "sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:ANONYMOUS
allow.everyone.if.no.acl.found=false
",
        ),
        None => (String::new(), "", ""),
    };
    let properties = format!(
        "process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}{sasl_listener}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}{sasl_listener}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT{sasl_protocol}
inter.broker.listener.name=PLAINTEXT
{security}
log.dirs={data}
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=2097152
",
        data = data.display()
    );
    std::fs::write(folder.join("server.properties"), properties).expect("server.properties");
    let logging = "status = error
appender.file.type = Console
appender.file.name = OUT
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = OUT
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = INFO
";
    std::fs::write(folder.join("log4j2.properties"), logging).expect("log4j2.properties");
}

fn java_classpath() -> String {
    let libs = kafka_libs();
    assert!(
        libs.join(format!("kafka_2.13-{KAFKA_VERSION}.jar"))
            .exists(),
        "Apache Kafka {KAFKA_VERSION} is not in {}; `make kafka` fetches it from Maven Central",
        libs.display()
    );
    format!("{}/*", libs.display())
}

/// Formats the broker's storage, with SCRAM-SHA-512 credentials for
/// `users` (KRaft keeps them in the metadata log from the start).
fn format_storage(folder: &Path, users: &[(&str, &str)]) {
    let scram: Vec<String> = users
        .iter()
        .flat_map(|(name, password)| {
            [
                "--add-scram".to_owned(),
                format!("SCRAM-SHA-512=[name={name},password={password}]"),
            ]
        })
        .collect();
    let output = Command::new("java")
        .args(["-Xmx128m", "-cp", &java_classpath()])
        .arg(format!(
            "-Dlog4j2.configurationFile={}",
            folder.join("log4j2.properties").display()
        ))
        .args(["kafka.tools.StorageTool", "format", "--standalone", "-g"])
        .args(["-t", "aWNzZmxvdy10ZXN0LWtpdA"])
        .arg("-c")
        .arg(folder.join("server.properties"))
        .args(scram)
        .output()
        .expect("java runs the Kafka storage tool");
    assert!(
        output.status.success(),
        "formatting Kafka storage: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Starts the JVM under a watcher shell and waits for `Kafka Server
/// started` in its log. Returns the watcher and the JVM's pid.
fn spawn(folder: &Path, start: u32) -> (Child, u32) {
    let log = folder.join(format!("kafka-{start}.log"));
    let mut java = vec![
        "-Xms256m".to_owned(),
        "-Xmx512m".to_owned(),
        "-XX:+UseG1GC".to_owned(),
        "-Djava.awt.headless=true".to_owned(),
        format!(
            "-Dlog4j2.configurationFile={}",
            folder.join("log4j2.properties").display()
        ),
        "-cp".to_owned(),
        java_classpath(),
        "kafka.Kafka".to_owned(),
    ];
    java.push(folder.join("server.properties").display().to_string());
    spawn_watched(folder, &log, &java, Duration::from_secs(90), || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("Kafka Server started")
    })
}

/// Starts `java ARGUMENTS` under a watcher shell, its output in `log`, and
/// waits until `ready` (or panics with the log after `deadline`). The
/// watcher outlives nothing: when the test process is gone (a shared
/// server is never dropped) it kills the JVM and removes `folder`.
fn spawn_watched(
    folder: &Path,
    log: &Path,
    arguments: &[String],
    deadline: Duration,
    ready: impl Fn() -> bool,
) -> (Child, u32) {
    let pid_file = log.with_extension("pid");
    let script = r#"
        "$@" >"$LOG" 2>&1 &
        child=$!
        echo "$child" >"$PID_FILE"
        while kill -0 "$child" 2>/dev/null; do
            if ! kill -0 "$PARENT" 2>/dev/null; then
                kill -CONT "$child"; kill -KILL "$child"; wait "$child"
                rm -rf "$FOLDER"
                exit 0
            fi
            sleep 0.5
        done
        wait "$child"
    "#;
    let watcher = Command::new("bash")
        .args(["-c", script, "watcher", "java"])
        .args(arguments)
        .env("LOG", log)
        .env("PID_FILE", &pid_file)
        .env("PARENT", std::process::id().to_string())
        .env("FOLDER", folder)
        .current_dir(folder)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("bash starts java");
    let started = Instant::now();
    while !ready() {
        assert!(
            started.elapsed() < deadline,
            "not ready within {deadline:?}; its log ({}):\n{}",
            log.display(),
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let java_pid = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .expect("the watcher wrote the JVM's pid");
    (watcher, java_pid)
}

fn signal(name: &str, pid: u32) {
    let _ = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| stat.split_whitespace().nth(2) == Some("Z"))
        .unwrap_or(true)
}

/// The Apicurio Registry release `make apicurio` unpacks.
pub const APICURIO_VERSION: &str = "3.0.9";

/// A running Apicurio Registry, storing schemas in an H2 file in its own
/// folder (a restart keeps them, as a production registry's database
/// would); killed and its folder removed when dropped.
#[derive(Debug)]
pub struct SchemaRegistry {
    watcher: Child,
    java_pid: u32,
    port: u16,
    /// `http://127.0.0.1:PORT/apis/ccompat/v7`: the Confluent-compatible
    /// API, for `schema_registry.url`.
    pub url: String,
    folder: PathBuf,
    starts: u32,
}

impl SchemaRegistry {
    /// `127.0.0.1:PORT`, for a gateway in front of it.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts a registry of the test's own and waits until it answers.
    pub fn start() -> SchemaRegistry {
        let port = free_port();
        let folder =
            std::env::temp_dir().join(format!("icsflow-registry-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&folder).expect("registry folder");
        let url = format!("http://127.0.0.1:{port}/apis/ccompat/v7");
        let (watcher, java_pid) = spawn_registry(&folder, port, 1);
        SchemaRegistry {
            watcher,
            java_pid,
            port,
            url,
            folder,
            starts: 1,
        }
    }

    /// Stops the registry (SIGTERM); its schemas stay in its folder.
    pub fn stop(&mut self) {
        signal("TERM", self.java_pid);
        let started = Instant::now();
        while Path::new(&format!("/proc/{}", self.java_pid)).exists() && !is_zombie(self.java_pid) {
            if started.elapsed() > Duration::from_secs(30) {
                signal("KILL", self.java_pid);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.watcher.wait();
    }

    /// Starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.starts += 1;
        let (watcher, java_pid) = spawn_registry(&self.folder, self.port, self.starts);
        self.watcher = watcher;
        self.java_pid = java_pid;
    }

    /// Registers `schema` (Avro JSON) under `subject` and returns its id.
    pub fn register(&self, subject: &str, schema: &str) -> u32 {
        let body = format!("{{\"schema\": {}}}", json_string(schema));
        let (status, answer) = http(
            self.port,
            "POST",
            &format!("/apis/ccompat/v7/subjects/{subject}/versions"),
            Some(&body),
        );
        assert_eq!(status, 200, "registering under {subject}: {answer}");
        answer
            .split(|character: char| !character.is_ascii_digit())
            .find(|digits| !digits.is_empty())
            .and_then(|digits| digits.parse().ok())
            .unwrap_or_else(|| panic!("no id in {answer}"))
    }
}

impl Drop for SchemaRegistry {
    fn drop(&mut self) {
        signal("KILL", self.java_pid);
        let _ = self.watcher.wait();
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

/// Where `make apicurio` unpacked the registry: `ICSFLOW_APICURIO_DIR`, or
/// `target/apicurio` in the workspace.
fn apicurio_dir() -> PathBuf {
    std::env::var_os("ICSFLOW_APICURIO_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/apicurio"),
        PathBuf::from,
    )
}

fn spawn_registry(folder: &Path, port: u16, start: u32) -> (Child, u32) {
    let jar = apicurio_dir().join(format!(
        "apicurio-registry-app-{APICURIO_VERSION}-runner.jar"
    ));
    assert!(
        jar.exists(),
        "Apicurio Registry {APICURIO_VERSION} is not at {}; `make apicurio` fetches it from Maven Central",
        jar.display()
    );
    let log = folder.join(format!("registry-{start}.log"));
    let arguments = [
        "-Xmx384m".to_owned(),
        "-Dquarkus.http.host=127.0.0.1".to_owned(),
        format!("-Dquarkus.http.port={port}"),
        format!(
            "-Dapicurio.datasource.url=jdbc:h2:file:{}",
            folder.join("registry").display()
        ),
        "-jar".to_owned(),
        jar.display().to_string(),
    ];
    spawn_watched(folder, &log, &arguments, Duration::from_secs(120), || {
        http(port, "GET", "/apis/ccompat/v7/subjects", None).0 == 200
    })
}

fn http(port: u16, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    http_request(&format!("127.0.0.1:{port}"), method, path, body)
}

/// One HTTP/1.0 request to `address` (`HOST:PORT`): (status, body); status
/// 0 when nothing answered.
pub fn http_request(address: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(address) else {
        return (0, String::new());
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let body = body.unwrap_or_default();
    let _ = write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// `text` as a JSON string literal.
fn json_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for character in text.chars() {
        match character {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            control if u32::from(control) < 0x20 => {
                quoted.push_str(&format!("\\u{:04x}", u32::from(control)));
            }
            other => quoted.push(other),
        }
    }
    quoted.push('"');
    quoted
}

/// An HTTPS gateway in front of a plain-HTTP server (the registry), as an
/// ICS's API gateway or a hosted registry would be: TLS with a certificate
/// generated for `127.0.0.1` and `localhost` when it starts, and every
/// request refused with 401 unless it carries the `Authorization` header
/// given. Requests that pass are forwarded one per connection.
#[derive(Debug)]
pub struct TlsGateway {
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The generated certificate, PEM, to trust as a certificate authority.
    pub certificate_pem: String,
    /// How many requests were refused for their credentials.
    refused: std::sync::Arc<AtomicU64>,
}

impl TlsGateway {
    /// Starts the gateway to `upstream` (`HOST:PORT`) on a free port.
    pub fn start(upstream: &str, authorization: &str) -> TlsGateway {
        use std::sync::Arc;
        let certified = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
        ])
        .expect("a certificate");
        let certificate_pem = certified.cert.pem();
        let key = rustls::pki_types::PrivateKeyDer::try_from(certified.key_pair.serialize_der())
            .expect("a private key");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .expect("a server configuration");
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
        let port = listener.local_addr().expect("an address").port();
        let refused = Arc::new(AtomicU64::new(0));
        let (upstream, authorization, counter) = (
            upstream.to_owned(),
            authorization.to_owned(),
            Arc::clone(&refused),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (config, upstream, authorization, counter) = (
                    Arc::clone(&config),
                    upstream.clone(),
                    authorization.clone(),
                    Arc::clone(&counter),
                );
                std::thread::spawn(move || {
                    let _ = serve_one(stream, config, &upstream, &authorization, &counter);
                });
            }
        });
        TlsGateway {
            url: format!("https://127.0.0.1:{port}"),
            certificate_pem,
            refused,
        }
    }

    /// How many requests were refused for their credentials so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// One connection: the request's head and body read over TLS, checked,
/// forwarded with `Connection: close`, and the answer relayed.
fn serve_one(
    stream: std::net::TcpStream,
    config: std::sync::Arc<rustls::ServerConfig>,
    upstream: &str,
    authorization: &str,
    refused: &AtomicU64,
) -> std::io::Result<()> {
    use std::io::{Read, Write};
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let connection = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(connection, stream);
    let mut request = Vec::new();
    let mut buffer = [0_u8; 4096];
    let head_end = loop {
        let read = tls.read(&mut buffer)?;
        if read == 0 {
            return Ok(());
        }
        request.extend_from_slice(&buffer[..read]);
        if let Some(end) = request.windows(4).position(|window| window == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = String::from_utf8_lossy(&request[..head_end]).into_owned();
    let header = |name: &str| {
        head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    };
    let length: usize = header("content-length")
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    while request.len() < head_end + length {
        let read = tls.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        request.extend_from_slice(&buffer[..read]);
    }
    if header("authorization").as_deref() != Some(authorization) {
        refused.fetch_add(1, Ordering::Relaxed);
        tls.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )?;
        tls.conn.send_close_notify();
        return tls.flush();
    }
    // The same request to the upstream, on a connection of its own.
    let mut forwarded = String::new();
    for (index, line) in head.trim_end().split("\r\n").enumerate() {
        let name = line
            .split_once(':')
            .map(|(name, _)| name.trim().to_ascii_lowercase());
        if index > 0 && matches!(name.as_deref(), Some("connection" | "authorization")) {
            continue;
        }
        forwarded.push_str(line);
        forwarded.push_str("\r\n");
    }
    forwarded.push_str("Connection: close\r\n\r\n");
    let mut upstream = std::net::TcpStream::connect(upstream)?;
    upstream.set_read_timeout(Some(Duration::from_secs(30)))?;
    upstream.write_all(forwarded.as_bytes())?;
    upstream.write_all(&request[head_end..])?;
    let mut answer = Vec::new();
    upstream.read_to_end(&mut answer)?;
    tls.write_all(&answer)?;
    tls.conn.send_close_notify();
    tls.flush()
}
