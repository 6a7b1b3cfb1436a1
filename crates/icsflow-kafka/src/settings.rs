//! Broker connection and topic names, as the roles need them.

use std::collections::BTreeMap;

use icsflow_core::Feed;
use rdkafka::ClientConfig;

use std::sync::Arc;

use icsflow_core::Reference;

/// How ingest hands its outputs over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IngestDelivery {
    /// Outputs produced without waiting; a partner offset is committed once
    /// what was produced for it is acknowledged. After a crash, records
    /// after the last commit are produced again (the engine absorbs the
    /// repeats; other readers of the journey and dead-letter topics see
    /// them twice).
    #[default]
    AtLeastOnce,
    /// Each batch's outputs and its partner offsets are committed in one
    /// Kafka transaction (KIP-447): readers with `isolation.level =
    /// read_committed` see each partner record's outcome exactly once.
    ExactlyOnce,
}

impl IngestDelivery {
    /// The values of `ingest.delivery`.
    pub const NAMES: [&'static str; 2] = ["at_least_once", "exactly_once"];

    pub fn parse(text: &str) -> Option<IngestDelivery> {
        match text {
            "at_least_once" => Some(IngestDelivery::AtLeastOnce),
            "exactly_once" => Some(IngestDelivery::ExactlyOnce),
            _ => None,
        }
    }
}

/// How to reach the brokers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaSettings {
    pub bootstrap_servers: String,
    /// Consumer group of the ingest role.
    pub ingest_group_id: String,
    /// Consumer group of the join role.
    pub join_group_id: String,
    pub session_timeout_ms: u32,
    /// Static group membership (`group.instance.id`) for both roles'
    /// consumers: a replica restarted within the session timeout gets its
    /// own partitions back and no other replica's are moved. In
    /// Kubernetes, the pod's name (stable in a StatefulSet).
    pub group_instance_id: Option<String>,
    /// At least once, or exactly once through transactions.
    pub ingest_delivery: IngestDelivery,
    /// Passed to librdkafka as they are (SASL, TLS, tuning). Applied last,
    /// so they override icsflow's own choices.
    pub librdkafka: BTreeMap<String, String>,
}

impl KafkaSettings {
    /// Settings for a test, a benchmark or a tool run against the broker at
    /// `bootstrap_servers`: groups `{prefix}-ingest` and `{prefix}-join`, a
    /// 6 s session (a stopped member's partitions move quickly), dynamic
    /// membership, at least once, nothing passed to librdkafka. Deployments
    /// take every value from their configuration instead, whose defaults are
    /// defined once, in the binary's settings table.
    pub fn for_broker(bootstrap_servers: &str, prefix: &str) -> KafkaSettings {
        KafkaSettings {
            bootstrap_servers: bootstrap_servers.to_owned(),
            ingest_group_id: format!("{prefix}-ingest"),
            join_group_id: format!("{prefix}-join"),
            session_timeout_ms: 6000,
            group_instance_id: None,
            ingest_delivery: IngestDelivery::AtLeastOnce,
            librdkafka: BTreeMap::new(),
        }
    }

    /// A client configuration: icsflow's common settings, then the role's
    /// own, then the librdkafka passthrough, which always wins.
    pub(crate) fn client_config(&self, role_settings: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set_log_level(crate::context::librdkafka_log_level());
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            // What Kafka's own tools (kafka-consumer-groups, the broker's
            // request logs, Strimzi's exporter) show for this client; a
            // role sets its own (`icsflow-ingest`, `icsflow-join`).
            .set("client.id", "icsflow")
            .set("statistics.interval.ms", "5000");
        for (key, value) in role_settings {
            config.set(*key, *value);
        }
        for (key, value) in &self.librdkafka {
            config.set(key, value);
        }
        config
    }

    /// The `client.id` of a role's clients (`role` is `icsflow-ingest` or
    /// `icsflow-join`), which Kafka's own tools show per group member
    /// (kafka-consumer-groups, the broker's request logs and quotas,
    /// Strimzi's exporter): the role, then the replica, that is its group
    /// instance id, else the host's name (Kubernetes sets `HOSTNAME` to the
    /// pod's), left out when it already begins with the role's name
    /// (`icsflow-join-0`). Only `[A-Za-z0-9._-]` is kept.
    pub(crate) fn client_id(&self, role: &str) -> String {
        client_id(
            role,
            self.group_instance_id.as_deref(),
            std::env::var("HOSTNAME").ok(),
        )
    }
}

/// [`KafkaSettings::client_id`] from the role, the group instance id and
/// the host's name.
fn client_id(role: &str, instance: Option<&str>, host: Option<String>) -> String {
    let replica = instance
        .map(str::to_owned)
        .or(host)
        .map(|name| {
            name.chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
                .take(100)
                .collect::<String>()
        })
        .filter(|name| !name.is_empty());
    match replica {
        Some(replica) if replica.starts_with(role) => replica,
        Some(replica) => format!("{role}-{replica}"),
        None => role.to_owned(),
    }
}

impl KafkaSettings {
    /// Consumer settings: the common ones, fetch tuning, then the role's.
    pub(crate) fn consumer_config(&self, role_settings: &[(&str, &str)]) -> ClientConfig {
        let session_timeout = self.session_timeout_ms.to_string();
        let mut settings = vec![
            // A consumer's setting: set on a producer too, librdkafka warned
            // at every start that it ignores it.
            ("session.timeout.ms", session_timeout.as_str()),
            // Incremental cooperative rebalancing: a rebalance moves only the
            // partitions that change owner, so a replica keeps (and does not
            // replay) the ones it still owns.
            ("partition.assignment.strategy", "cooperative-sticky"),
            // A broker holds a fetch at most this long waiting for data;
            // librdkafka's 500 ms would add up to a second of latency over
            // the two consumer stages.
            ("fetch.wait.max.ms", "20"),
            // When the records already fetched fill librdkafka's queue (as
            // they do while a replay outruns the engine), it pauses fetching
            // for this long; its default of 1 s stalled a replay for most of
            // a second at a time.
            ("fetch.queue.backoff.ms", "10"),
        ];
        if let Some(instance) = &self.group_instance_id {
            settings.push(("group.instance.id", instance.as_str()));
        }
        settings.extend_from_slice(role_settings);
        self.client_config(&settings)
    }

    /// Ingest's producer: the common producer settings with a longer
    /// linger, and with a transactional id when delivery is exactly once.
    ///
    /// librdkafka sends one produce request per partition, and the broker's
    /// cost is per request more than per byte: at a 5 ms linger ingest sent
    /// 610-740 requests a second for 4-10 k journey records, three to four
    /// times the requests of a copier moving 650 k records a second.
    /// Waiting 20 ms fills each request with more (BENCHMARKS.md), at the
    /// cost of up to 20 ms of latency, well inside the 250 ms target.
    pub(crate) fn ingest_producer_config(&self, transactional_id: Option<&str>) -> ClientConfig {
        let client_id = self.client_id("icsflow-ingest");
        let mut settings = vec![("client.id", client_id.as_str()), ("linger.ms", "20")];
        if let Some(transactional_id) = transactional_id {
            settings.extend_from_slice(&[
                ("transactional.id", transactional_id),
                // A transaction's first produce to a partition waits for the
                // last transaction's markers; librdkafka retries that after
                // this pause (100 ms by default, which would cap every
                // transaction at it).
                ("retry.backoff.ms", "10"),
                // A transaction left open by a crashed process holds back
                // every `read_committed` reader of its partitions (join
                // among them) until the broker aborts it after this long.
                // Each transaction lasts about 100 ms, so librdkafka's 60 s
                // default only lengthens that stall; 10 s is Kafka Streams'
                // choice for the same reason.
                ("transaction.timeout.ms", "10000"),
            ]);
        }
        self.producer_config_with(&settings)
    }

    /// Producer settings: idempotent, acknowledged by all in-sync replicas,
    /// keys hashed with murmur2 like the Java client so that every producer
    /// language puts a pseudonym on the same partition.
    pub(crate) fn producer_config(&self) -> ClientConfig {
        self.producer_config_with(&[])
    }

    /// The producer settings, then a client's own (which win over them),
    /// then the librdkafka passthrough (which wins over both).
    fn producer_config_with(&self, role_settings: &[(&str, &str)]) -> ClientConfig {
        let mut settings = vec![
            ("partitioner", "murmur2_random"),
            ("enable.idempotence", "true"),
            // A producer may not have the broker create a topic it names
            // (librdkafka's producers may by default, with the broker's
            // default partition count): topics come from the plan
            // (`icsflow topics`), so a misspelt name fails instead.
            ("allow.auto.create.topics", "false"),
            ("linger.ms", "5"),
            ("compression.type", "lz4"),
        ];
        settings.extend_from_slice(role_settings);
        self.client_config(&settings)
    }
}

impl KafkaSettings {
    /// What librdkafka refuses in the consumer and producer settings the
    /// roles build (an unknown property, a value of the wrong kind), found
    /// by building its configuration objects: nothing connects. Names the
    /// setting, never its value (it may be a password).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let consumer = self.consumer_config(&[("group.id", "icsflow-check")]);
        for config in [consumer, self.producer_config()] {
            if let Err(error) = config.create_native_config() {
                let problem = match error {
                    rdkafka::error::KafkaError::ClientConfig(_, description, key, value) => {
                        // librdkafka's description quotes the value, which
                        // may be a secret: it is cut out, whatever it is.
                        let description = if value.is_empty() {
                            description
                        } else {
                            description.replace(&value, "…")
                        };
                        format!("`kafka.librdkafka.{key}`: librdkafka refuses it: {description}")
                    }
                    other => {
                        format!("`kafka.librdkafka`: librdkafka refuses the settings: {other}")
                    }
                };
                if !problems.contains(&problem) {
                    problems.push(problem);
                }
            }
        }
        problems
    }
}

/// How partners' records reach ingest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TopicLayout {
    /// One topic per feed, written by every partner of that feed. Simple;
    /// a partner can put records in another's name.
    #[default]
    Shared,
    /// One topic per feed and partner: the feed's topic name, a dot, and
    /// the partner's ODS code from the ICS's reference data.
    PerPartner(Arc<Reference>),
}

/// Topic names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topics {
    pub discharge: String,
    pub social_care: String,
    pub primary_care: String,
    /// Canonical events keyed by pseudonym, written by ingest, read by join.
    pub journey: String,
    /// Rejected partner records, with the reason in headers.
    pub dead_letter: String,
    /// One topic per feed, or one per feed and partner.
    pub layout: TopicLayout,
}

impl Topics {
    /// The per-partner topic of `feed` for the partner with ODS code
    /// `code`: the feed's topic, a dot, the code (`ics.discharge.v1.RXP`).
    pub fn per_partner_topic(&self, feed: Feed, code: &str) -> String {
        format!("{}.{code}", self.feed_topic(feed))
    }

    /// Where a partner publishes a record of `feed` naming `organisation`
    /// as its source: the feed's topic, or with the per-partner layout the
    /// topic of the partner that publishes for that organisation (the
    /// feed's topic when no partner does; ingest never reads it then).
    pub fn topic_for(
        &self,
        feed: Feed,
        organisation: icsflow_core::OdsCode,
    ) -> std::borrow::Cow<'_, str> {
        let shared = self.feed_topic(feed);
        match &self.layout {
            TopicLayout::PerPartner(reference) => reference
                .partners()
                .iter()
                .find(|partner| partner.feed() == feed && partner.speaks_for(organisation))
                .map_or(std::borrow::Cow::Borrowed(shared), |partner| {
                    std::borrow::Cow::Owned(self.per_partner_topic(feed, partner.code.as_str()))
                }),
            TopicLayout::Shared => std::borrow::Cow::Borrowed(shared),
        }
    }

    /// The topic of `feed` (with the per-partner layout, the prefix of its
    /// partners' topics).
    pub fn feed_topic(&self, feed: Feed) -> &str {
        match feed {
            Feed::Discharge => &self.discharge,
            Feed::SocialCare => &self.social_care,
            Feed::PrimaryCare => &self.primary_care,
        }
    }

    pub fn partner_topics(&self) -> [(&str, Feed); 3] {
        Feed::ALL.map(|feed| (self.feed_topic(feed), feed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(librdkafka: &[(&str, &str)]) -> KafkaSettings {
        KafkaSettings {
            librdkafka: librdkafka
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
            ..KafkaSettings::for_broker("127.0.0.1:9092", "icsflow")
        }
    }

    #[test]
    fn consumers_fetch_with_short_waits_and_pauses_and_the_role_and_passthrough_win() {
        let config = settings(&[]).consumer_config(&[("group.id", "join")]);
        assert_eq!(config.get("fetch.wait.max.ms"), Some("20"));
        assert_eq!(config.get("fetch.queue.backoff.ms"), Some("10"));
        assert_eq!(config.get("group.id"), Some("join"));

        let tuned = settings(&[("fetch.queue.backoff.ms", "250")])
            .consumer_config(&[("fetch.wait.max.ms", "50")]);
        assert_eq!(tuned.get("fetch.queue.backoff.ms"), Some("250"));
        assert_eq!(tuned.get("fetch.wait.max.ms"), Some("50"));
    }

    #[test]
    fn librdkafka_refusals_name_the_setting_and_never_its_value() {
        assert!(settings(&[("security.protocol", "SASL_SSL")])
            .problems()
            .is_empty());
        let problems = settings(&[("no.such.property", "s3cret")]).problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("no.such.property"), "{problems:?}");
        assert!(!problems[0].contains("s3cret"), "{problems:?}");
        // Regression: librdkafka's message for a bad value quotes it.
        let problems = settings(&[("security.protocol", "S3CRET_PROTOCOL")]).problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("security.protocol"), "{problems:?}");
        assert!(!problems[0].contains("S3CRET_PROTOCOL"), "{problems:?}");
    }

    /// Regression: every client identified itself as `rdkafka`, so Kafka's
    /// own tools could not tell icsflow's roles apart.
    #[test]
    fn every_client_names_itself_and_the_passthrough_still_wins() {
        assert_eq!(
            settings(&[]).producer_config().get("client.id"),
            Some("icsflow")
        );
        assert!(settings(&[])
            .ingest_producer_config(None)
            .get("client.id")
            .is_some_and(|id| id.starts_with("icsflow-ingest")));
        // Per replica, as Kafka's tools list group members.
        assert_eq!(
            client_id("icsflow-join", Some("icsflow-join-2"), None),
            "icsflow-join-2"
        );
        assert_eq!(
            client_id(
                "icsflow-ingest",
                None,
                Some("icsflow-ingest-7d9f-x2bq".into())
            ),
            "icsflow-ingest-7d9f-x2bq"
        );
        assert_eq!(
            client_id("icsflow-join", Some("north-1"), Some("h".into())),
            "icsflow-join-north-1"
        );
        assert_eq!(
            client_id("icsflow-ingest", None, Some("host 1\n".into())),
            "icsflow-ingest-host1"
        );
        assert_eq!(client_id("icsflow-ingest", None, None), "icsflow-ingest");
        let named = settings(&[("client.id", "ics-north")]);
        assert_eq!(
            named.ingest_producer_config(None).get("client.id"),
            Some("ics-north")
        );
    }

    #[test]
    fn ingest_lingers_longer_and_the_passthrough_still_wins() {
        let at_least_once = settings(&[]).ingest_producer_config(None);
        assert_eq!(at_least_once.get("linger.ms"), Some("20"));
        assert_eq!(at_least_once.get("enable.idempotence"), Some("true"));
        assert_eq!(at_least_once.get("transactional.id"), None);
        let exactly_once = settings(&[]).ingest_producer_config(Some("ingest-0"));
        assert_eq!(exactly_once.get("transactional.id"), Some("ingest-0"));
        assert_eq!(exactly_once.get("transaction.timeout.ms"), Some("10000"));
        let overridden = settings(&[("linger.ms", "5"), ("transaction.timeout.ms", "30000")])
            .ingest_producer_config(Some("ingest-0"));
        assert_eq!(overridden.get("linger.ms"), Some("5"));
        assert_eq!(overridden.get("transaction.timeout.ms"), Some("30000"));
        // Other producers keep the common linger.
        assert_eq!(settings(&[]).producer_config().get("linger.ms"), Some("5"));
    }

    #[test]
    fn producers_get_no_consumer_settings() {
        let config = settings(&[]).producer_config();
        assert_eq!(config.get("partitioner"), Some("murmur2_random"));
        assert_eq!(config.get("fetch.wait.max.ms"), None);
        assert_eq!(config.get("fetch.queue.backoff.ms"), None);
    }
}
