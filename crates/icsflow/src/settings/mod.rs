//! Configuration of the consumer roles: built-in defaults, then a TOML
//! file, then `ICSFLOW__SECTION__KEY` environment variables.
//!
//! Loading is a pure function of the file's text and an environment map
//! (tests never touch the process environment). Every problem is collected
//! and reported together: unknown keys, values of the wrong type, values
//! out of range. The caller exits 64 on any, before binding a port.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use config::{Config, Environment, File, FileFormat, Value, ValueKind};
use icsflow_engine::EngineConfig;
use icsflow_journeys::AsOf;
use icsflow_kafka::{IngestDelivery, KafkaSettings, TopicLayout, Topics};

mod table;

pub use table::{example_toml, known_keys};
use table::{setting, Kind, PASSTHROUGH, PER_PARTNER};

/// Where the commented example of every setting lives.
pub const EXAMPLE_CONFIG: &str = "deploy/config/icsflow.example.toml";

/// Every setting, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub kafka: KafkaSettings,
    /// With `TopicLayout::PerPartner` once [`Settings::with_files`]
    /// has read the reference data.
    pub topics: Topics,
    /// `topics.layout` as written, until [`Settings::with_files`] turns
    /// `per_partner` into `topics.layout` with the reference data: read the
    /// layout from `topics.layout`, never from here.
    wants_per_partner_topics: bool,
    /// The ICS's reference data file, if named.
    pub reference_file: Option<std::path::PathBuf>,
    /// Environment variables that look meant for a setting but are not
    /// read ([`misspelt_variables`]): warned about once logging is set up.
    pub misspelt_variables: Vec<String>,
    /// Its contents, once [`Settings::with_files`] has read them.
    pub reference: Option<std::sync::Arc<icsflow_core::Reference>>,
    /// Base URL of a Confluent-compatible Schema Registry, for records in
    /// Confluent framing; `None` accepts single-object framing only.
    pub schema_registry_url: Option<String>,
    pub schema_registry_timeout_ms: u64,
    /// How icsflow authenticates to the registry.
    pub schema_registry_credentials: icsflow_avro::RegistryCredentials,
    /// PEM certificates to trust for an `https` registry instead of the
    /// built-in Mozilla roots.
    pub schema_registry_ca_file: Option<std::path::PathBuf>,
    /// Its contents, once [`Settings::with_files`] has read them.
    pub schema_registry_ca_pem: Option<Vec<u8>>,
    pub admin_addr: SocketAddr,
    /// Where the published view (flow metrics under the small-number rule)
    /// is served; `None`: not served.
    pub published_addr: Option<SocketAddr>,
    pub engine: EngineConfig,
    /// The instant the join role measures open stays and evicts as of.
    pub engine_as_of: AsOf,
    pub log_format: LogFormat,
    pub log_level: String,
    pub shutdown_timeout_seconds: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// The values of `log.format`.
    pub const NAMES: [&'static str; 2] = ["text", "json"];
}

/// Loads settings from an optional TOML file (its name, for messages, and
/// its text) and an environment map. Returns every problem found.
pub fn load(
    file: Option<(&str, &str)>,
    environment: &BTreeMap<String, String>,
) -> Result<Settings, Vec<String>> {
    let mut builder = Config::builder();
    if let Some((_, text)) = file {
        builder = builder.add_source(File::from_str(text, FileFormat::Toml));
    }
    let variables: config::Map<String, String> = environment
        .iter()
        .filter(|(name, _)| name.starts_with("ICSFLOW__"))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    builder = builder.add_source(
        Environment::with_prefix("ICSFLOW")
            .prefix_separator("__")
            .separator("__")
            .source(Some(variables)),
    );
    let built = match builder.build() {
        Ok(built) => built,
        Err(error) => {
            let origin = file.map_or("configuration", |(name, _)| name);
            // The parser's message quotes the offending line, which may be
            // a `password = "…"` line: only where it is, never what it holds.
            return Err(vec![format!(
                "{origin}: {}",
                where_only(&error.to_string())
            )]);
        }
    };

    let mut problems = Vec::new();
    let table = built
        .clone()
        .try_deserialize::<config::Map<String, Value>>()
        .unwrap_or_default();
    let mut leaves = Vec::new();
    collect_leaves("", table, &mut leaves);
    for (key, _) in &leaves {
        if key == PASSTHROUGH
            || key.starts_with(&format!("{PASSTHROUGH}."))
            || known_keys().any(|known| known == key)
        {
            continue;
        }
        let variable = format!("ICSFLOW__{}", key.replace('.', "__").to_uppercase());
        let origin = if environment.contains_key(&variable) {
            format!("the environment ({variable})")
        } else {
            file.map_or_else(
                || "the configuration".to_owned(),
                |(name, _)| name.to_owned(),
            )
        };
        let suggestion = known_keys()
            .filter(|known| known.split('.').next() == key.split('.').next())
            .collect::<Vec<_>>()
            .join(", ");
        let hint = if suggestion.is_empty() {
            String::new()
        } else {
            format!(" (known keys in this section: {suggestion})")
        };
        problems.push(format!("unknown key `{key}` in {origin}{hint}"));
    }

    let mut reader = Reader {
        config: &built,
        problems: &mut problems,
    };
    let bootstrap_servers = reader.text("kafka.bootstrap_servers");
    let session_timeout_ms = reader.number::<u32>("kafka.session_timeout_ms");
    let group_instance_id = reader.text("kafka.group_instance_id");
    let ingest_group_id = reader.text("ingest.group_id");
    let join_group_id = reader.text("join.group_id");
    let ingest_delivery = reader.choice("ingest.delivery");
    let layout = reader.choice("topics.layout");
    let topics = Topics {
        discharge: reader.text("topics.discharge"),
        social_care: reader.text("topics.social_care"),
        primary_care: reader.text("topics.primary_care"),
        journey: reader.text("topics.journey"),
        dead_letter: reader.text("topics.dead_letter"),
        layout: TopicLayout::Shared,
    };
    let reference_file = reader.text("reference.file");
    let registry_url = reader.string("schema_registry.url");
    let schema_registry_timeout_ms = reader.number::<u64>("schema_registry.timeout_ms");
    let registry_username = reader.string("schema_registry.username");
    let registry_password = reader.string("schema_registry.password");
    let registry_token = reader.string("schema_registry.bearer_token");
    let registry_ca_file = reader.string("schema_registry.ca_file");
    let admin_addr = reader.string("admin.addr");
    let published_addr = reader.string("admin.published_addr");
    let eviction_horizon_days = reader.number::<i32>("engine.eviction_horizon_days");
    let engine_as_of = reader.choice("engine.as_of");
    let log_format = reader.choice("log.format");
    let log_level = reader.string("log.level");
    let shutdown_timeout_seconds = reader.number::<u64>("shutdown.timeout_seconds");
    let librdkafka = reader.passthrough();

    for (key, group) in [
        ("ingest.group_id", &ingest_group_id),
        ("join.group_id", &join_group_id),
    ] {
        if group.trim().is_empty() {
            problems.push(format!(
                "`{key}` is empty: each role's consumer group needs a name"
            ));
        }
    }
    if bootstrap_servers.trim().is_empty() {
        problems.push(
            "`kafka.bootstrap_servers` is empty: give host:port of at least one broker".to_owned(),
        );
    }
    // Every topic setting, once: each needs a name of its own.
    let topic_settings = [
        ("topics.discharge", &topics.discharge),
        ("topics.social_care", &topics.social_care),
        ("topics.primary_care", &topics.primary_care),
        ("topics.journey", &topics.journey),
        ("topics.dead_letter", &topics.dead_letter),
    ];
    for (key, name) in topic_settings {
        if name.trim().is_empty() {
            problems.push(format!("`{key}` is empty: every topic needs a name"));
        }
    }
    for (key, name) in topic_settings {
        if !name.trim().is_empty() && !is_kafka_topic_name(name) {
            problems.push(format!("`{key}` is not a topic name Kafka takes: 1 to 249 of letters, digits, `.`, `_` and `-`, and not `.` or `..`"));
        }
    }
    // Ingest subscribes to `^<feed topic>\.[A-Z0-9]+$` on the per-partner
    // layout: icsflow's own topics must never match it, or ingest reads
    // what it writes (one dead letter became thousands, in a loop).
    for (key, own) in [
        ("topics.journey", &topics.journey),
        ("topics.dead_letter", &topics.dead_letter),
    ] {
        for (feed_key, feed_topic) in &topic_settings[..3] {
            let matches_pattern = own
                .strip_prefix(feed_topic.as_str())
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|suffix| {
                    !suffix.is_empty()
                        && suffix
                            .bytes()
                            .all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit())
                });
            if matches_pattern {
                problems.push(format!("`{key}` is a partner topic of `{feed_key}` (its name, a dot and a partner code): ingest would read what it writes; name it apart from the partner topics"));
            }
        }
    }
    if !ingest_group_id.trim().is_empty() && ingest_group_id.trim() == join_group_id.trim() {
        problems.push("`ingest.group_id` and `join.group_id` are the same: the two roles would share one consumer group and take each other's partitions; give each its own".to_owned());
    }
    let mut names = topic_settings.map(|(_, name)| name);
    names.sort();
    if names
        .windows(2)
        .any(|pair| pair[0] == pair[1] && !pair[0].is_empty())
    {
        problems.push("two `topics.*` settings name the same topic: each feed, the journey topic and the dead-letter topic need their own".to_owned());
    }
    let reference_file = Some(reference_file.trim())
        .filter(|file| !file.is_empty())
        .map(std::path::PathBuf::from);
    let wants_per_partner_topics = layout == PER_PARTNER;
    if wants_per_partner_topics && reference_file.is_none() {
        problems.push("`topics.layout` is `per_partner` but `reference.file` is empty: the partner topics and who owns them come from the ICS's reference data (see deploy/config/reference.toml)".to_owned());
    }
    let schema_registry_url = match registry_url.trim() {
        "" => None,
        url => match checked_registry_url("`schema_registry.url`", url) {
            Ok(url) => Some(url),
            Err(problem) => {
                problems.push(problem);
                None
            }
        },
    };
    // Secrets are named, never quoted.
    let schema_registry_credentials = match (
        registry_username.is_empty(),
        registry_password.is_empty(),
        registry_token.is_empty(),
    ) {
        (true, true, true) => icsflow_avro::RegistryCredentials::None,
        (false, false, true) => icsflow_avro::RegistryCredentials::Basic {
            username: registry_username,
            password: icsflow_avro::Secret::new(registry_password),
        },
        (true, true, false) => {
            icsflow_avro::RegistryCredentials::Bearer(icsflow_avro::Secret::new(registry_token))
        }
        (_, _, false) => {
            problems.push("`schema_registry.bearer_token` and `schema_registry.username`/`password` are both set: give one kind of credentials".to_owned());
            icsflow_avro::RegistryCredentials::None
        }
        (true, false, true) => {
            problems.push(
                "`schema_registry.password` is set without `schema_registry.username`".to_owned(),
            );
            icsflow_avro::RegistryCredentials::None
        }
        (false, true, true) => {
            problems.push("`schema_registry.username` is set without `schema_registry.password` (give it through ICSFLOW__SCHEMA_REGISTRY__PASSWORD)".to_owned());
            icsflow_avro::RegistryCredentials::None
        }
    };
    if schema_registry_credentials != icsflow_avro::RegistryCredentials::None
        && schema_registry_url
            .as_deref()
            .is_some_and(|url| url.starts_with("http://"))
    {
        problems.push("`schema_registry.url` is plain http:// but credentials are set: they would cross the network in clear; use https://".to_owned());
    }
    let schema_registry_ca_file = Some(registry_ca_file.trim())
        .filter(|file| !file.is_empty())
        .map(std::path::PathBuf::from);
    let admin_addr = match socket_address(&admin_addr) {
        Some(address) => address,
        None => {
            problems.push(format!("`admin.addr` is `{admin_addr}`: expected IP:PORT or localhost:PORT, for example 0.0.0.0:9464"));
            SocketAddr::from(([0, 0, 0, 0], 9464))
        }
    };
    let published_addr = match published_addr.trim() {
        "" => None,
        text => match socket_address(text).ok_or(()) {
            Ok(address)
                if address.port() == admin_addr.port()
                    && (address.ip() == admin_addr.ip()
                        || address.ip().is_unspecified()
                        || admin_addr.ip().is_unspecified()) =>
            {
                problems.push(format!("`admin.published_addr` is `{text}`, on the port of `admin.addr` (`{admin_addr}`): the published view needs a port of its own"));
                None
            }
            Ok(address) => Some(address),
            Err(_) => {
                problems.push(format!("`admin.published_addr` is `{text}`: expected IP:PORT or localhost:PORT, for example 0.0.0.0:9465, or empty for none"));
                None
            }
        },
    };
    // Choices were checked against their definitions' values.
    let engine_as_of = AsOf::parse(&engine_as_of).unwrap_or_default();
    let log_format = if log_format == "json" {
        LogFormat::Json
    } else {
        LogFormat::Text
    };
    if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
        problems.push(format!("`log.level` is `{log_level}`: expected a level (error, warn, info, debug, trace) or a filter such as `info,icsflow_kafka=debug`"));
    }

    let ingest_delivery = IngestDelivery::parse(&ingest_delivery).unwrap_or_default();
    // Overrides that would void the delivery guarantees icsflow states.
    let refused_override = |key: &str, refused: &dyn Fn(&str) -> bool| {
        librdkafka
            .get(key)
            .is_some_and(|value| refused(value.trim()))
    };
    if refused_override("isolation.level", &|value| value != "read_committed") {
        problems.push("`kafka.librdkafka.isolation.level` would let the roles read aborted records (exactly-once ingest's outputs are only whole to a read_committed reader); leave it unset".to_owned());
    }
    if refused_override("acks", &|value| !matches!(value, "all" | "-1")) {
        problems.push("`kafka.librdkafka.acks` other than all would let a broker failure lose records ingest counted as delivered; leave it unset".to_owned());
    }
    if refused_override("enable.idempotence", &|value| value != "true") {
        problems.push("`kafka.librdkafka.enable.idempotence` false would let retries write records twice (and exactly-once needs it); leave it unset".to_owned());
    }
    for key in [
        "transactional.id",
        "enable.auto.offset.store",
        "group.id",
        "group.instance.id",
    ] {
        if librdkafka.contains_key(key) {
            problems.push(format!("`kafka.librdkafka.{key}` is icsflow's to set (from its own settings); leave it unset"));
        }
    }
    let kafka = KafkaSettings {
        bootstrap_servers,
        ingest_group_id,
        join_group_id,
        session_timeout_ms,
        group_instance_id: Some(group_instance_id.trim().to_owned()).filter(|id| !id.is_empty()),
        ingest_delivery,
        librdkafka,
    };
    problems.extend(kafka.problems());
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Settings {
        kafka,
        topics,
        wants_per_partner_topics,
        misspelt_variables: Vec::new(),
        reference_file,
        reference: None,
        schema_registry_url,
        schema_registry_timeout_ms,
        schema_registry_credentials,
        schema_registry_ca_file,
        schema_registry_ca_pem: None,
        admin_addr,
        published_addr,
        engine: EngineConfig {
            eviction_horizon_days,
        },
        engine_as_of,
        log_format,
        log_level,
        shutdown_timeout_seconds,
    })
}

impl Settings {
    /// The eviction horizon in days, which the journey topic's planned
    /// retention exceeds (`icsflow_kafka::topic_plan`).
    pub fn journey_retention_horizon(&self) -> u32 {
        u32::try_from(self.engine.eviction_horizon_days).unwrap_or(0)
    }

    /// The registry connection for `url` (the configured one when `None`):
    /// timeout, credentials and the CA read by [`Settings::with_files`];
    /// `None` when no registry is configured or given.
    pub fn registry_connection(
        &self,
        url: Option<&str>,
    ) -> Option<icsflow_avro::RegistryConnection> {
        let url = url.or(self.schema_registry_url.as_deref())?;
        Some(icsflow_avro::RegistryConnection {
            url: url.trim_end_matches('/').to_owned(),
            timeout: std::time::Duration::from_millis(self.schema_registry_timeout_ms),
            credentials: self.schema_registry_credentials.clone(),
            ca_pem: self.schema_registry_ca_pem.clone(),
        })
    }

    /// Reads the files the settings name, once: the reference data
    /// (`reference.file`; with the per-partner layout handed to the topics)
    /// and the registry's CA file (`schema_registry.ca_file`, checked as
    /// PEM). Every problem of both is returned.
    pub fn with_files(mut self) -> Result<Settings, Vec<String>> {
        let mut problems = Vec::new();
        if let Some(path) = &self.schema_registry_ca_file {
            match std::fs::read(path) {
                Ok(pem) => match icsflow_avro::check_ca_pem(&pem) {
                    Ok(()) => self.schema_registry_ca_pem = Some(pem),
                    Err(problem) => problems.push(format!("`schema_registry.ca_file`: {problem}")),
                },
                Err(error) => problems.push(format!(
                    "`schema_registry.ca_file`: cannot read {}: {error}",
                    path.display()
                )),
            }
        }
        if let Some(path) = &self.reference_file {
            match crate::reference::load(path) {
                Ok(reference) => {
                    let reference = std::sync::Arc::new(reference);
                    if self.wants_per_partner_topics {
                        self.topics.layout =
                            TopicLayout::PerPartner(std::sync::Arc::clone(&reference));
                    }
                    self.reference = Some(reference);
                }
                Err(more) => problems.extend(more),
            }
        }
        if problems.is_empty() {
            Ok(self)
        } else {
            Err(problems)
        }
    }
}

/// Environment variables that look meant for a setting but are not read
/// (`ICSFLOW_KAFKA__BOOTSTRAP_SERVERS`, `ICSFLOW__KAFKA_BOOTSTRAP_SERVERS`):
/// the name, its underscores aside, is a setting's, but it is not that
/// setting's `ICSFLOW__SECTION__KEY`. Other `ICSFLOW_*` variables (a build's
/// or a benchmark's) are not settings and are left alone.
pub fn misspelt_variables(environment: &BTreeMap<String, String>) -> Vec<&str> {
    let squeezed = |text: &str| -> String {
        text.chars()
            .filter(|character| character.is_ascii_alphanumeric())
            .map(|character| character.to_ascii_lowercase())
            .collect()
    };
    environment
        .keys()
        .map(String::as_str)
        .filter(|name| {
            let upper = name.to_ascii_uppercase();
            let Some(rest) = upper.strip_prefix("ICSFLOW") else {
                return false;
            };
            let meant = squeezed(rest);
            known_keys().any(|key| {
                squeezed(key) == meant
                    && *name != format!("ICSFLOW__{}", key.replace('.', "__").to_uppercase())
            })
        })
        .collect()
}

/// An address to listen on: `IP:PORT`, or `localhost:PORT` for the IPv4
/// loopback (read without resolving anything, so loading stays pure).
fn socket_address(text: &str) -> Option<SocketAddr> {
    let text = text.trim();
    if let Some(port) = text.strip_prefix("localhost:") {
        return port
            .parse::<u16>()
            .ok()
            .map(|port| SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse().ok()
}

/// Whether Kafka takes `name` as a topic name.
fn is_kafka_topic_name(name: &str) -> bool {
    (1..=249).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'))
}

/// The position of a configuration parse error without the text it quotes:
/// the first line of the message up to its first quotation or colon after
/// the position (`TOML parse error at line 3, column 12`).
fn where_only(message: &str) -> String {
    let first = message.lines().next().unwrap_or_default();
    let position = first.find(" at line ").and_then(|at| {
        let rest = &first[at..];
        let end = rest
            .find(|character: char| {
                !(character.is_ascii_alphanumeric() || " ,".contains(character))
            })
            .unwrap_or(rest.len());
        Some(format!("the file cannot be read as TOML{}", &rest[..end]))
    });
    position.unwrap_or_else(|| "the file cannot be read as TOML".to_owned())
}

/// A registry URL as icsflow takes it: http or https, with no credentials
/// in it (`user:password@host` would send them on every request, and print
/// them with the URL). Problems name the setting (or flag), never the URL,
/// which may hold a secret.
pub fn checked_registry_url(setting: &str, url: &str) -> Result<String, String> {
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return Err(format!("{setting} is not an http:// or https:// URL (such as https://registry.example.org or http://registry:8081)"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(format!("{setting} holds credentials (user:password@): they would be sent with every request and printed with the URL; give them as schema_registry.username and ICSFLOW__SCHEMA_REGISTRY__PASSWORD (or ICSFLOW__SCHEMA_REGISTRY__BEARER_TOKEN), over https"));
    }
    if authority.is_empty() || rest.contains(['?', '#']) {
        return Err(format!("{setting} needs a host, and no query or fragment (a token goes in schema_registry.bearer_token)"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

fn collect_leaves(
    prefix: &str,
    table: config::Map<String, Value>,
    leaves: &mut Vec<(String, Value)>,
) {
    let mut entries: Vec<(String, Value)> = table.into_iter().collect();
    entries.sort_by(|left, right| left.0.cmp(&right.0));
    for (name, value) in entries {
        let key = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}.{name}")
        };
        match value.kind.clone() {
            ValueKind::Table(inner) if key != PASSTHROUGH => collect_leaves(&key, inner, leaves),
            _ => leaves.push((key, value)),
        }
    }
}

/// Reads typed values, recording problems instead of stopping at the first.
struct Reader<'a> {
    config: &'a Config,
    problems: &'a mut Vec<String>,
}

impl Reader<'_> {
    fn default_of(key: &str) -> &'static str {
        setting(key).default
    }

    /// A setting that is one of its definition's words.
    fn choice(&mut self, key: &str) -> String {
        let Kind::Choice(values) = setting(key).kind else {
            unreachable!("`{key}` is not a choice");
        };
        let value = self.text(key);
        if values.contains(&value.as_str()) {
            value
        } else {
            let expected: Vec<String> = values.iter().map(|value| format!("`{value}`")).collect();
            self.problems.push(format!(
                "`{key}` is `{value}`: expected {}",
                expected.join(" or ")
            ));
            Self::default_of(key).to_owned()
        }
    }

    /// A setting that is text: a TOML number or boolean in its place is a
    /// problem (`group_instance_id = 3` is not the id `"3"` by accident).
    fn text(&mut self, key: &str) -> String {
        if let Ok(value) = self.config.get::<Value>(key) {
            if !matches!(value.kind, ValueKind::String(_) | ValueKind::Nil) {
                self.problems
                    .push(format!("`{key}` is not text: write it in quotes"));
            }
        }
        self.string(key)
    }

    fn string(&mut self, key: &str) -> String {
        match self.config.get::<String>(key) {
            Ok(value) => value,
            Err(config::ConfigError::NotFound(_)) => Self::default_of(key).to_owned(),
            Err(error) => {
                self.problems.push(format!("`{key}`: {error}"));
                Self::default_of(key).to_owned()
            }
        }
    }

    /// A whole number in its definition's range.
    fn number<T>(&mut self, key: &str) -> T
    where
        T: std::str::FromStr + TryFrom<i64> + PartialOrd + std::fmt::Display + Copy,
    {
        let Kind::Number { min, max } = setting(key).kind else {
            unreachable!("`{key}` is not a number");
        };
        let (Ok(min), Ok(max)) = (T::try_from(min), T::try_from(max)) else {
            unreachable!("`{key}`'s range does not fit its type");
        };
        let range = min..=max;
        let fallback = || Self::default_of(key).parse::<T>().ok();
        let text = self.string(key);
        match text.trim().parse::<T>() {
            Ok(value) if range.contains(&value) => value,
            Ok(value) => {
                self.problems.push(format!(
                    "`{key}` is {value}: expected a whole number from {} to {}",
                    range.start(),
                    range.end()
                ));
                fallback().unwrap_or(*range.start())
            }
            Err(_) => {
                self.problems.push(format!(
                    "`{key}` is `{text}`: expected a whole number from {} to {}",
                    range.start(),
                    range.end()
                ));
                fallback().unwrap_or(*range.start())
            }
        }
    }

    /// `kafka.librdkafka`: string values, passed through. Names given
    /// through the environment use `_` for librdkafka's `.`.
    fn passthrough(&mut self) -> BTreeMap<String, String> {
        let table = match self.config.get_table(PASSTHROUGH) {
            Ok(table) => table,
            Err(config::ConfigError::NotFound(_)) => return BTreeMap::new(),
            Err(error) => {
                self.problems.push(format!(
                    "`{PASSTHROUGH}`: {error}; expected a table of librdkafka settings"
                ));
                return BTreeMap::new();
            }
        };
        let mut settings = BTreeMap::new();
        for (name, value) in table {
            match value.into_string() {
                Ok(text) => {
                    settings.insert(name.replace('_', "."), text);
                }
                Err(error) => self.problems.push(format!(
                    "`{PASSTHROUGH}.{name}`: {error}; librdkafka settings are strings"
                )),
            }
        }
        settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environment(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn defaults_work_with_nothing_given() {
        let settings = load(None, &BTreeMap::new()).expect("defaults are valid");
        assert_eq!(settings.kafka.bootstrap_servers, "127.0.0.1:9092");
        assert_eq!(settings.topics.discharge, "ics.discharge.v1");
        // This machine only, unless told otherwise (the image says 0.0.0.0).
        assert_eq!(
            settings.admin_addr,
            "127.0.0.1:9464".parse().expect("address")
        );
        assert_eq!(settings.schema_registry_url, None);
        assert_eq!(settings.engine.eviction_horizon_days, 120);
    }

    #[test]
    fn file_then_environment() {
        let file = r#"
            [kafka]
            bootstrap_servers = "broker-1:9092"
            [kafka.librdkafka]
            "security.protocol" = "SASL_SSL"
            [topics]
            journey = "journey"
        "#;
        let settings = load(
            Some(("icsflow.toml", file)),
            &environment(&[
                ("ICSFLOW__KAFKA__BOOTSTRAP_SERVERS", "broker-2:9092"),
                ("ICSFLOW__KAFKA__LIBRDKAFKA__SASL_USERNAME", "ics"),
                ("ICSFLOW__ENGINE__EVICTION_HORIZON_DAYS", "200"),
                ("PATH", "/usr/bin"),
            ]),
        )
        .expect("valid");
        assert_eq!(settings.kafka.bootstrap_servers, "broker-2:9092");
        assert_eq!(settings.topics.journey, "journey");
        assert_eq!(settings.engine.eviction_horizon_days, 200);
        assert_eq!(
            settings
                .kafka
                .librdkafka
                .get("security.protocol")
                .map(String::as_str),
            Some("SASL_SSL")
        );
        assert_eq!(
            settings
                .kafka
                .librdkafka
                .get("sasl.username")
                .map(String::as_str),
            Some("ics")
        );
    }

    #[test]
    fn every_problem_is_reported_together() {
        let file = r#"
            [kafka]
            bootstrap_server = "typo:9092"
            session_timeout_ms = "soon"
            [admin]
            addr = "localhost"
            [log]
            format = "xml"
            [engine]
            eviction_horizon_days = 30
            [surprise]
            key = 1
        "#;
        let problems = load(
            Some(("bad.toml", file)),
            &environment(&[("ICSFLOW__TOPICS__JOURNY", "x")]),
        )
        .expect_err("invalid");
        let joined = problems.join("\n");
        for expected in [
            "unknown key `kafka.bootstrap_server` in bad.toml",
            "unknown key `surprise.key` in bad.toml",
            "unknown key `topics.journy` in the environment (ICSFLOW__TOPICS__JOURNY)",
            "`kafka.session_timeout_ms` is `soon`",
            "`admin.addr` is `localhost`",
            "`log.format` is `xml`",
            "`engine.eviction_horizon_days` is 30",
        ] {
            assert!(
                joined.contains(expected),
                "missing {expected:?} in:\n{joined}"
            );
        }
        assert_eq!(problems.len(), 7, "{joined}");
    }

    #[test]
    fn the_published_view_is_off_by_default_and_needs_a_port_of_its_own() {
        assert_eq!(
            load(None, &BTreeMap::new())
                .expect("defaults")
                .published_addr,
            None
        );
        let on = load(
            None,
            &environment(&[("ICSFLOW__ADMIN__PUBLISHED_ADDR", "0.0.0.0:9465")]),
        )
        .expect("valid");
        assert_eq!(
            on.published_addr,
            Some(SocketAddr::from(([0, 0, 0, 0], 9465)))
        );
        for (value, expected) in [
            ("0.0.0.0:9464", "on the port of `admin.addr`"),
            ("public", "expected IP:PORT or localhost:PORT"),
        ] {
            let problems = load(
                None,
                &environment(&[("ICSFLOW__ADMIN__PUBLISHED_ADDR", value)]),
            )
            .expect_err("invalid");
            assert!(problems[0].contains(expected), "{problems:?}");
        }
    }

    /// Regression: each of these passed `--check` and failed at start.
    #[test]
    fn what_fails_at_start_fails_the_check() {
        let problems = load(
            None,
            &environment(&[
                ("ICSFLOW__KAFKA__LIBRDKAFKA__NO_SUCH_PROPERTY", "1"),
                ("ICSFLOW__INGEST__GROUP_ID", ""),
                ("ICSFLOW__ADMIN__ADDR", "0.0.0.0:9464"),
                ("ICSFLOW__ADMIN__PUBLISHED_ADDR", "127.0.0.1:9464"),
            ]),
        )
        .expect_err("invalid");
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems
            .iter()
            .any(|problem| problem.contains("no.such.property")));
        assert!(problems
            .iter()
            .any(|problem| problem.contains("`ingest.group_id` is empty")));
        assert!(problems
            .iter()
            .any(|problem| problem.contains("`admin.published_addr`")));
    }

    #[test]
    fn a_file_that_is_not_toml_is_one_clear_problem() {
        let problems = load(Some(("broken.toml", "[kafka\nbootstrap")), &BTreeMap::new())
            .expect_err("invalid");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("broken.toml:"), "{problems:?}");
        assert!(problems[0].contains("line 1"), "{problems:?}");
    }

    /// Regressions: `--check` accepted settings that cannot work: a
    /// dead-letter topic matching the per-partner pattern (one record
    /// became 17,625 dead letters in 15 s), topic names Kafka refuses, one
    /// group for both roles, overrides that void the delivery guarantees,
    /// and `group_instance_id = 3`; misspelt variables went unremarked.
    #[test]
    fn settings_that_cannot_work_are_refused_by_name() {
        let refused = |text: &str, expected: &str| {
            let problems = load(Some(("c.toml", text)), &BTreeMap::new()).expect_err(text);
            assert!(
                problems.iter().any(|problem| problem.contains(expected)),
                "{text}: {problems:?}"
            );
        };
        refused(
            "[topics]\ndead_letter = \"ics.discharge.v1.DLQ\"\n",
            "`topics.dead_letter` is a partner topic of `topics.discharge`",
        );
        refused(
            "[topics]\njourney = \"ics.social_care.v1.J1\"\n",
            "`topics.journey` is a partner topic",
        );
        refused(
            "[topics]\njourney = \"journey events\"\n",
            "`topics.journey` is not a topic name Kafka takes",
        );
        refused(
            "[topics]\ndead_letter = \"..\"\n",
            "`topics.dead_letter` is not a topic name",
        );
        refused(
            "[ingest]\ngroup_id = \"g\"\n[join]\ngroup_id = \"g\"\n",
            "are the same",
        );
        refused(
            "[kafka.librdkafka]\n\"isolation.level\" = \"read_uncommitted\"\n",
            "isolation.level",
        );
        refused(
            "[kafka.librdkafka]\nacks = \"0\"\n",
            "`kafka.librdkafka.acks`",
        );
        refused(
            "[kafka.librdkafka]\n\"enable.idempotence\" = \"false\"\n",
            "enable.idempotence",
        );
        refused(
            "[kafka]\ngroup_instance_id = 3\n",
            "`kafka.group_instance_id` is not text",
        );
        assert!(load(
            Some(("c.toml", "[topics]\njourney = \"icsflow.journey.v2\"\n")),
            &BTreeMap::new()
        )
        .is_ok());
        let environment: BTreeMap<String, String> = [
            ("ICSFLOW_KAFKA__BOOTSTRAP_SERVERS", "x"),
            ("ICSFLOW__KAFKA_BOOTSTRAP_SERVERS", "x"),
            ("ICSFLOW__KAFKA__BOOTSTRAP_SERVERS", "x"),
            ("ICSFLOW_REVISION", "x"),
            ("ICSFLOW_BENCH_JOURNEYS", "x"),
            ("PATH", "x"),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
        assert_eq!(
            misspelt_variables(&environment),
            [
                "ICSFLOW_KAFKA__BOOTSTRAP_SERVERS",
                "ICSFLOW__KAFKA_BOOTSTRAP_SERVERS"
            ]
        );
    }

    /// Regressions: a TOML syntax error printed the offending line (a
    /// `password = "…"` line, say), and a registry URL with
    /// `user:password@` passed and sent the password over plain HTTP. A
    /// sentinel in every secret-bearing place appears in no problem.
    #[test]
    fn no_problem_quotes_a_secret() {
        const SENTINEL: &str = "S3NTINEL-pw";
        let broken = format!(
            "[schema_registry]\npassword = \"{SENTINEL}\"\n\"sasl.password\" = \"{SENTINEL}\" x\n"
        );
        let in_url = format!("[schema_registry]\nurl = \"http://rvw:{SENTINEL}@registry:8081\"\n");
        let in_query = format!("[schema_registry]\nurl = \"https://registry/?token={SENTINEL}\"\n");
        let not_a_url = format!("[schema_registry]\nurl = \"{SENTINEL}\"\n");
        for text in [broken, in_url, in_query, not_a_url] {
            let problems =
                load(Some(("secret.toml", &text)), &BTreeMap::new()).expect_err("refused");
            for problem in &problems {
                assert!(!problem.contains(SENTINEL), "{problem}");
            }
        }
        let problems = load(
            Some((
                "u.toml",
                &format!("[schema_registry]\nurl = \"https://a:{SENTINEL}@r\"\n"),
            )),
            &BTreeMap::new(),
        )
        .expect_err("credentials in the URL");
        assert!(
            problems
                .iter()
                .any(|problem| problem.contains("`schema_registry.url` holds credentials")),
            "{problems:?}"
        );
    }

    /// The example configuration is what the definitions generate: a
    /// setting added, changed or documented anew changes it here, and a
    /// stale file fails with the fresh one beside it to move over.
    #[test]
    fn the_example_file_is_generated_from_the_definitions() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/config/icsflow.example.toml"
        );
        let text = std::fs::read_to_string(path).expect("example config exists");
        let generated = example_toml();
        if text != generated {
            let fresh = format!("{path}.new");
            std::fs::write(&fresh, &generated).expect("written");
            panic!("{EXAMPLE_CONFIG} is stale: the definitions in settings/table.rs generate {fresh}; move it over");
        }
    }

    /// The commented example file sets every key with its default value
    /// (but `reference.file`, which has none and names the demo ICS's), so
    /// it can be copied as it is and every setting is documented.
    #[test]
    fn the_example_file_documents_every_setting() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/config/icsflow.example.toml"
        );
        let text = std::fs::read_to_string(path).expect("example config exists");
        let settings =
            load(Some((EXAMPLE_CONFIG, &text)), &BTreeMap::new()).expect("the example is valid");
        let mut defaults = load(None, &BTreeMap::new()).expect("defaults");
        defaults.reference_file = Some("reference.toml".into());
        assert_eq!(settings, defaults);
        // Each key under its own section: the two `group_id`s cannot
        // cover for each other.
        let parsed: toml::Table = toml::from_str(&text).expect("the example is TOML");
        for key in known_keys() {
            let (section, name) = key.split_once('.').expect("section.name");
            assert!(
                parsed
                    .get(section)
                    .and_then(|table| table.get(name))
                    .is_some(),
                "the example does not set {key}"
            );
        }
    }
}
