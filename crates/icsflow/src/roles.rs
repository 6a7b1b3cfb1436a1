//! `icsflow ingest`, `icsflow join` and `icsflow run`: the consumer roles,
//! with their admin endpoint, logging and graceful shutdown.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use icsflow_avro::{EventDecoder, SchemaCatalogue, SchemaRegistryClient};
use icsflow_events::{Events, Gauge};
use icsflow_journeys::{AsOf, Clock, PartitionEngines};
use icsflow_kafka::{run_ingest, run_join, JoinOptions, Shutdown};
use icsflow_telemetry::{
    serve_admin, serve_published, AdminState, EngineCollector, PrometheusRecorder, Registry,
};
use tracing::{error, info, warn};

use icsflow::settings::{self, LogFormat, Settings, EXAMPLE_CONFIG};

/// Which role(s) to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Ingest,
    Join,
    Run,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Join => "join",
            Role::Run => "run",
        }
    }
}

/// Flags every role takes.
#[derive(Debug, Args)]
#[command(
    after_help = "Every setting, with its default and what it does: deploy/config/icsflow.example.toml.\nEnvironment variables ICSFLOW__SECTION__KEY override the file.\nInvalid settings are listed together and the process exits 64 before opening any port."
)]
pub(crate) struct RoleArgs {
    /// TOML configuration file (see deploy/config/icsflow.example.toml).
    /// Without it, built-in defaults and ICSFLOW__* variables apply.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) kafka: KafkaArgs,
    /// Where /metrics, /healthz and /readyz are served, for example
    /// 127.0.0.1:9464. Overrides `admin.addr`.
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) admin_addr: Option<String>,
    /// Also serve the published view here: the flow metrics only, counts of
    /// 1-7 left out and the rest rounded to the nearest 5 (the NHS
    /// small-number rule), for dashboards shared beyond the partners.
    /// Overrides `admin.published_addr`.
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) published_addr: Option<String>,
    /// Only check the settings (defaults, the file, ICSFLOW__* variables
    /// and these flags), say whether they are valid, and exit: 0 if valid,
    /// 64 if not. Connects to nothing and opens no port.
    #[arg(long)]
    pub(crate) check: bool,
    /// The reference data file, over `reference.file` (`icsflow acls
    /// --reference`; the roles take it from the settings).
    #[arg(skip)]
    pub(crate) reference: Option<PathBuf>,
}

/// The Kafka flags of every command that talks to Kafka, as kcat and
/// Kafka's own tools spell them. Applied over the configuration file and
/// the ICSFLOW__* variables.
#[derive(Clone, Debug, Default, Args)]
pub(crate) struct KafkaArgs {
    /// Kafka bootstrap servers, HOST:PORT[,HOST:PORT...] (overrides
    /// `kafka.bootstrap_servers`).
    #[arg(
        short = 'b',
        long = "bootstrap-server",
        visible_alias = "broker",
        value_name = "HOST:PORT"
    )]
    pub(crate) bootstrap_server: Option<String>,
    /// A librdkafka setting NAME=VALUE, by librdkafka's own name; repeat for
    /// more. Applied last, over `[kafka.librdkafka]`, for example
    /// -X security.protocol=SASL_SSL -X sasl.mechanisms=SCRAM-SHA-512.
    #[arg(short = 'X', value_name = "NAME=VALUE", value_parser = parse_librdkafka_setting)]
    pub(crate) librdkafka: Vec<(String, String)>,
}

fn parse_librdkafka_setting(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!(
            "`{text}` is not NAME=VALUE (for example security.protocol=SASL_SSL)"
        )),
    }
}

impl KafkaArgs {
    /// Puts the flags over the loaded settings.
    fn apply(&self, settings: &mut Settings) {
        if let Some(servers) = &self.bootstrap_server {
            settings.kafka.bootstrap_servers = servers.clone();
        }
        for (name, value) in &self.librdkafka {
            settings
                .kafka
                .librdkafka
                .insert(name.clone(), value.clone());
        }
    }
}

/// Exit status for configuration problems (EX_USAGE).
const EXIT_CONFIGURATION: u8 = 64;

/// The commands that run a role, and so need the ICS's reference data.
const ROLES_NEEDING_REFERENCE: [&str; 3] = ["ingest", "join", "run"];

pub(crate) fn run(role: Role, arguments: RoleArgs) -> anyhow::Result<ExitCode> {
    let settings = match load_settings(role.name(), &arguments) {
        Ok(settings) => settings,
        Err(exit) => return Ok(exit),
    };
    if arguments.check {
        for variable in &settings.misspelt_variables {
            eprintln!("icsflow {}: warning: {variable} is not read: icsflow's environment variables are ICSFLOW__SECTION__KEY, with two underscores (for example ICSFLOW__KAFKA__BOOTSTRAP_SERVERS)", role.name());
        }
        println!(
            "icsflow {}: the settings are valid (admin endpoint {}{})",
            role.name(),
            settings.admin_addr,
            settings
                .published_addr
                .map(|address| format!(", published view {address}"))
                .unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    init_logging(&settings);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run_roles(role, settings))
}

/// The settings of a tool that only talks to a broker (publish, simulate):
/// the configuration file if given, then `--broker` over
/// `kafka.bootstrap_servers`.
pub(crate) fn load_client_settings(
    name: &str,
    config: Option<&std::path::Path>,
    kafka: &KafkaArgs,
    reference: Option<&std::path::Path>,
) -> Result<Settings, ExitCode> {
    let arguments = RoleArgs {
        config: config.map(std::path::Path::to_path_buf),
        kafka: kafka.clone(),
        admin_addr: None,
        published_addr: None,
        check: false,
        reference: reference.map(std::path::Path::to_path_buf),
    };
    let settings = load_settings(name, &arguments)?;
    // A tool's own output is its answer; its log (stderr) says only what
    // went wrong (warnings: an undelivered record, the Kafka client's
    // errors), unless -v, RUST_LOG or librdkafka's `debug` asks for more.
    init_logging_at(&settings, "warn");
    Ok(settings)
}

/// Standard input for `-`, otherwise the file, buffered. A file that
/// cannot be opened is [`InputUnreadable`] (exit 66, not 1, which means a
/// refused line).
pub(crate) fn open_input(path: &std::path::Path) -> anyhow::Result<Box<dyn std::io::BufRead>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(std::io::stdin().lock()));
    }
    let file = std::fs::File::open(path).map_err(|error| InputUnreadable {
        path: path.display().to_string(),
        error,
    })?;
    Ok(Box::new(std::io::BufReader::new(file)))
}

/// An input file named on the command line could not be opened.
#[derive(Debug)]
pub(crate) struct InputUnreadable {
    path: String,
    error: std::io::Error,
}

impl std::fmt::Display for InputUnreadable {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "cannot open {}: {}", self.path, self.error)
    }
}

impl std::error::Error for InputUnreadable {}

/// Loads the settings (defaults, the file, ICSFLOW__* variables, then the
/// flags), or prints every problem and returns exit status 64.
pub(crate) fn load_settings(name: &str, arguments: &RoleArgs) -> Result<Settings, ExitCode> {
    let (mut environment, unreadable) = process_environment();
    // A variable that looks meant for icsflow but is not read (one
    // underscore after the prefix, or between section and key): named,
    // never its value, and the run goes on.
    let misspelt: Vec<String> = settings::misspelt_variables(&environment)
        .into_iter()
        .map(str::to_owned)
        .collect();
    if let Some(address) = &arguments.admin_addr {
        environment.insert("ICSFLOW__ADMIN__ADDR".to_owned(), address.clone());
    }
    if let Some(address) = &arguments.published_addr {
        environment.insert("ICSFLOW__ADMIN__PUBLISHED_ADDR".to_owned(), address.clone());
    }
    if let Some(path) = &arguments.reference {
        // A flag's path is the working directory's, never the
        // configuration file's folder.
        let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        environment.insert(
            "ICSFLOW__REFERENCE__FILE".to_owned(),
            path.display().to_string(),
        );
    }
    let file_text = match &arguments.config {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => Some((path.display().to_string(), text)),
            Err(error) => {
                eprintln!(
                    "icsflow {name}: cannot read the configuration file {}: {error}",
                    path.display()
                );
                return Err(ExitCode::from(EXIT_CONFIGURATION));
            }
        },
        None => None,
    };
    let loaded = settings::load(
        file_text
            .as_ref()
            .map(|(name, text)| (name.as_str(), text.as_str())),
        &environment,
    );
    // The flags go over the file and the environment, and librdkafka
    // checks what they make.
    let loaded = loaded.and_then(|mut settings| {
        settings.misspelt_variables = misspelt;
        // Files a configuration file names are read from its folder, as
        // one ships them side by side (the image, a ConfigMap).
        if let Some(folder) = arguments.config.as_deref().and_then(std::path::Path::parent) {
            for path in [
                &mut settings.reference_file,
                &mut settings.schema_registry_ca_file,
            ]
            .into_iter()
            .flatten()
            {
                if path.is_relative() {
                    *path = folder.join(&*path);
                }
            }
        }
        arguments.kafka.apply(&mut settings);
        let mut problems = settings.kafka.problems();
        // The files the settings name (the reference data, the registry's
        // CA) are read and checked now, with the rest.
        // The roles count every record by the ICS's reference data (its
        // places and organisations, `Reference::counted`): without it, record
        // content would decide the labels and tables.
        // A filter that does not parse was once ignored for `info` without
        // a word: the operator who set it would never see the lines asked
        // for.
        if let Some(filter) = environment.get("RUST_LOG") {
            if tracing_subscriber::EnvFilter::try_new(filter).is_err() {
                problems.push("`RUST_LOG` is not a log filter (a level such as debug, or a list such as `info,icsflow_kafka=debug`): fix it or unset it".to_owned());
            }
        }
        if ROLES_NEEDING_REFERENCE.contains(&name) && settings.reference_file.is_none() {
            problems.push(format!("`reference.file` is empty: icsflow {name} counts every record by the ICS's reference data (its places, partners and their sites), so that no record can add a place or an organisation of its own; name the ICS's file (deploy/config/reference.toml is the demo ICS's and documents every field)"));
        }
        match settings.with_files() {
            Ok(settings) if problems.is_empty() => Ok(settings),
            Ok(_) => Err(problems),
            Err(more) => {
                problems.extend(more);
                Err(problems)
            }
        }
    });
    let loaded = match (loaded, unreadable.is_empty()) {
        (Ok(settings), true) => Ok(settings),
        (Ok(_), false) => Err(unreadable),
        (Err(mut problems), _) => {
            problems.extend(unreadable);
            Err(problems)
        }
    };
    loaded.map_err(|problems| {
        eprintln!(
            "icsflow {name}: the configuration has {} problem(s):",
            problems.len()
        );
        for problem in &problems {
            eprintln!("  - {problem}");
        }
        eprintln!("Every setting is documented in {EXAMPLE_CONFIG}.");
        ExitCode::from(EXIT_CONFIGURATION)
    })
}

/// The process environment as text. A variable that is not UTF-8 is left
/// out (a panic in `std::env::vars` otherwise), and named as a problem when
/// it is one of icsflow's own (`ICSFLOW__*`).
fn process_environment() -> (BTreeMap<String, String>, Vec<String>) {
    let mut environment = BTreeMap::new();
    let mut unreadable = Vec::new();
    for (name, value) in std::env::vars_os() {
        match (name.into_string(), value.into_string()) {
            (Ok(name), Ok(value)) => {
                environment.insert(name, value);
            }
            (Ok(name), Err(_)) if name.starts_with("ICSFLOW__") => {
                unreadable.push(format!("{name}: the value is not valid UTF-8"));
            }
            _ => {}
        }
    }
    (environment, unreadable)
}

/// How much `-v` and `-q` (given anywhere on the command line) move the log
/// level from the configured one: +1 per `-v`, -1 per `-q`.
static VERBOSITY: std::sync::atomic::AtomicI8 = std::sync::atomic::AtomicI8::new(0);

pub(crate) fn set_verbosity(verbose: u8, quiet: u8) {
    let shift = i8::try_from(verbose).unwrap_or(i8::MAX) - i8::try_from(quiet).unwrap_or(i8::MAX);
    VERBOSITY.store(shift, std::sync::atomic::Ordering::Relaxed);
}

/// The log filter: `-v`/`-q` if given, else `RUST_LOG` if set (as every
/// Rust service reads it), else `log.level`. Setting librdkafka's `debug`
/// (`kafka.librdkafka.debug`, `-X debug=cgrp`) asks for its debug lines:
/// they are shown unless the filter says otherwise for the target
/// `librdkafka`.
fn log_filter(configured: &str, librdkafka_debug: bool) -> String {
    const LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];
    let shift = VERBOSITY.load(std::sync::atomic::Ordering::Relaxed);
    if shift != 0 {
        // From the configured level when it is a plain level, from info
        // otherwise.
        let base = LEVELS
            .iter()
            .position(|level| configured.trim().eq_ignore_ascii_case(level))
            .unwrap_or(2) as i8;
        let index = (base + shift).clamp(0, LEVELS.len() as i8 - 1) as usize;
        // The Kafka client's own lines stay at info or quieter: at debug
        // they are a protocol trace, asked for with librdkafka's `debug`.
        let client = LEVELS[index.min(2)];
        let librdkafka = if librdkafka_debug { "debug" } else { client };
        return format!("{},rdkafka={client},librdkafka={librdkafka}", LEVELS[index]);
    }
    let filter = match std::env::var("RUST_LOG") {
        Ok(filter) if tracing_subscriber::EnvFilter::try_new(&filter).is_ok() => filter,
        _ => configured.to_owned(),
    };
    if librdkafka_debug && !filter.contains("librdkafka") {
        format!("{filter},librdkafka=debug")
    } else {
        filter
    }
}

pub(crate) fn init_logging(settings: &Settings) {
    init_logging_at(settings, &settings.log_level);
}

/// The log as [`init_logging`], from `level` instead of `log.level`.
fn init_logging_at(settings: &Settings, level: &str) {
    let librdkafka_debug = settings.kafka.librdkafka.contains_key("debug");
    let filter = tracing_subscriber::EnvFilter::try_new(log_filter(level, librdkafka_debug))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a log file or a container's log
    // collector would otherwise keep the escape codes.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match settings.log_format {
        LogFormat::Text => builder.try_init(),
        // Flat: the message and the fields at the top level of each line,
        // as log pipelines expect (tracing's default nests them).
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    for variable in &settings.misspelt_variables {
        warn!(variable = variable.as_str(), "an environment variable that looks meant for a setting is not read: icsflow's are ICSFLOW__SECTION__KEY, with two underscores (for example ICSFLOW__KAFKA__BOOTSTRAP_SERVERS)");
    }
}

/// What a process serving the roles holds: the metrics registry and the
/// recorder of the pipeline metrics on it, the events the roles emit, the
/// join role's engines and the two clocks: `now` (the wall clock, or the
/// demo's simulated one) and `as_of`, what the engines are read as of.
pub(crate) struct Pipeline {
    pub(crate) registry: Registry,
    pub(crate) recorder: Arc<PrometheusRecorder>,
    pub(crate) events: Events,
    pub(crate) engines: Arc<PartitionEngines>,
    pub(crate) now: Clock,
    pub(crate) as_of: Clock,
}

impl Pipeline {
    /// Registers the pipeline metrics and, unless the role is ingest only,
    /// the engine collector reading the engines as of `as_of` (given `now`).
    pub(crate) fn new(role: Role, now: Clock, as_of: AsOf) -> anyhow::Result<Pipeline> {
        let registry = Registry::new();
        let recorder =
            Arc::new(PrometheusRecorder::register(&registry).context("registering metrics")?);
        let events = Events::new(Arc::clone(&recorder) as Arc<dyn icsflow_events::Recorder>);
        events
            .gauge(
                Gauge::BuildInfo,
                &[
                    env!("CARGO_PKG_VERSION"),
                    env!("ICSFLOW_REVISION"),
                    &icsflow_kafka::librdkafka_version(),
                    role.name(),
                ],
            )
            .set(1);
        let engines = Arc::new(PartitionEngines::default());
        let as_of = as_of.clock(&now, &engines);
        if role != Role::Ingest {
            let (source_engines, clock) = (Arc::clone(&engines), Arc::clone(&as_of));
            let source = move || source_engines.metrics(clock());
            registry
                .register(Box::new(EngineCollector::new(Arc::new(source))))
                .context("registering the engine collector")?;
        }
        Ok(Pipeline {
            registry,
            recorder,
            events,
            engines,
            now,
            as_of,
        })
    }
}

async fn run_roles(role: Role, settings: Settings) -> anyhow::Result<ExitCode> {
    let pipeline = Pipeline::new(role, icsflow_journeys::wall_clock(), settings.engine_as_of)?;
    if let Some(reference) = &settings.reference {
        pipeline
            .events
            .bound_organisations_by(Arc::clone(reference));
    }
    serve(role.name(), role, &settings, &pipeline, |_| async {}).await
}

/// Serves the admin endpoint and runs the role(s) until a stop signal,
/// with `companion` (given the shutdown signal) running alongside.
pub(crate) async fn serve<Companion, Running>(
    name: &str,
    role: Role,
    settings: &Settings,
    pipeline: &Pipeline,
    companion: Companion,
) -> anyhow::Result<ExitCode>
where
    Companion: FnOnce(Shutdown) -> Running,
    Running: std::future::Future<Output = ()> + Send + 'static,
{
    let Pipeline {
        registry,
        events,
        engines,
        now,
        as_of,
        ..
    } = pipeline;
    let listener = tokio::net::TcpListener::bind(settings.admin_addr)
        .await
        .with_context(|| {
            format!(
                "binding the admin endpoint to {} (set --admin-addr or admin.addr)",
                settings.admin_addr
            )
        })?;
    let bound = listener.local_addr().context("reading the admin address")?;
    // Through the logger like every other line (JSON when the logs are);
    // the demo also shows it on its terminal.
    let admin_url = format!("http://{bound}/metrics");
    info!(url = %admin_url, "admin endpoint (also /healthz, /readyz)");
    if role_is_demo(name) {
        println!("icsflow {name}: admin endpoint at {admin_url} (also /healthz, /readyz)");
    }

    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let admin = tokio::spawn(serve_admin(
        listener,
        AdminState {
            registry: registry.clone(),
            health: Arc::clone(events.health()),
        },
        stopped(shutdown.clone()),
    ));
    let published = match settings.published_addr {
        Some(address) => {
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| {
                    format!(
                        "binding the published view to {address} (set --published-addr or admin.published_addr)"
                    )
                })?;
            let bound = listener
                .local_addr()
                .context("reading the published address")?;
            let published_url = format!("http://{bound}/metrics");
            info!(url = %published_url, "published view (small numbers suppressed)");
            if role_is_demo(name) {
                println!(
                    "icsflow {name}: published view (small numbers suppressed) at {published_url}"
                );
            }
            Some(tokio::spawn(serve_published(
                listener,
                registry.clone(),
                stopped(shutdown.clone()),
            )))
        }
        None => None,
    };
    let signals = tokio::spawn(async move {
        wait_for_signal().await;
        info!("stop requested: finishing in-flight work");
        let _ = stop.send(true);
        wait_for_signal().await;
        error!("second stop request: exiting at once");
        std::process::exit(130);
    });
    let companion = tokio::spawn(companion(shutdown.clone()));

    // Checked when the settings were loaded (the demo brings its own).
    let reference = settings
        .reference
        .clone()
        .context("the roles need the ICS's reference data (`reference.file`)")?;
    let catalogue = Arc::new(SchemaCatalogue::embedded());
    // The CA, if any, was read and checked with the settings.
    let decoder = match settings.registry_connection(None) {
        Some(connection) => {
            let client = SchemaRegistryClient::over_http(&connection, Arc::clone(&catalogue))
                .map_err(|problem| anyhow::anyhow!("`schema_registry.ca_file`: {problem}"))?;
            EventDecoder::with_registry(catalogue, Arc::new(client))
        }
        None => EventDecoder::new(catalogue),
    };
    let ingest = async {
        if role == Role::Join {
            return Ok(());
        }
        run_ingest(
            &settings.kafka,
            &settings.topics,
            Arc::clone(&reference),
            decoder,
            Arc::clone(now),
            events.clone(),
            shutdown.clone(),
        )
        .await
        .map(|_| ())
    };
    let join = async {
        if role == Role::Ingest {
            return Ok(());
        }
        let options = JoinOptions {
            engine_config: settings.engine,
            as_of: Arc::clone(as_of),
            now: Arc::clone(now),
            reference: Arc::clone(&reference),
        };
        run_join(
            &settings.kafka,
            &settings.topics,
            options,
            Arc::clone(engines),
            events.clone(),
            shutdown.clone(),
        )
        .await
        .map(|_| ())
    };
    let mut roles_shutdown = shutdown.clone();
    let deadline = Duration::from_secs(settings.shutdown_timeout_seconds);
    let roles = async { tokio::try_join!(ingest, join) };
    tokio::pin!(roles);
    // The roles run until they stop; after a stop request they have
    // `shutdown.timeout_seconds` to finish.
    let outcome = tokio::select! {
        outcome = &mut roles => Some(outcome),
        () = async {
            while !*roles_shutdown.borrow() {
                if roles_shutdown.changed().await.is_err() { break; }
            }
            tokio::time::sleep(deadline).await;
        } => None,
    };
    signals.abort();
    let exit = match outcome {
        Some(Ok(_)) => ExitCode::SUCCESS,
        Some(Err(role_error)) => {
            error!(error = %role_error, "role stopped with an error");
            ExitCode::FAILURE
        }
        None => {
            error!(
                seconds = settings.shutdown_timeout_seconds,
                "shutdown took longer than shutdown.timeout_seconds"
            );
            ExitCode::FAILURE
        }
    };
    companion.abort();
    admin.abort();
    if let Some(published) = published {
        published.abort();
    }
    Ok(exit)
}

/// The demo shows its addresses on its terminal as well as in the log.
fn role_is_demo(name: &str) -> bool {
    name == "demo"
}

/// Completes once the shutdown signal says stop.
async fn stopped(mut shutdown: Shutdown) {
    icsflow_kafka::stopped(&mut shutdown).await;
}

/// Completes at the first stop request: Ctrl-C or SIGINT, SIGTERM (what
/// Kubernetes sends) or SIGHUP (a closed terminal, or a supervisor's
/// "stop"). Each gets the same graceful shutdown.
pub(crate) async fn wait_for_signal() {
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = unix_stop_signal() => {}
    }
}

#[cfg(unix)]
async fn unix_stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let listen = |kind: SignalKind| async move {
        match signal(kind) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = listen(SignalKind::terminate()) => {}
        () = listen(SignalKind::hangup()) => {}
    }
}

#[cfg(not(unix))]
async fn unix_stop_signal() {
    std::future::pending::<()>().await;
}
