//! Every setting, defined once: its key, kind (and so its validation), its
//! default and its documentation. The example configuration
//! (`deploy/config/icsflow.example.toml`) is generated from these
//! definitions ([`example_toml`]) and a test keeps the file in step.

use icsflow_engine::EngineConfig;
use icsflow_journeys::AsOf;
use icsflow_kafka::IngestDelivery;

use super::LogFormat;

/// What values a setting takes, and so how it is checked.
#[derive(Clone, Copy, Debug)]
pub(super) enum Kind {
    /// Text, written in quotes (checked further where it is used: an
    /// address, a URL, a topic name).
    Text,
    /// One of these words.
    Choice(&'static [&'static str]),
    /// A whole number in this range.
    Number { min: i64, max: i64 },
    /// A table passed to librdkafka as it is (documented, not set, in the
    /// example).
    Passthrough,
}

/// One setting.
#[derive(Debug)]
pub(super) struct Setting {
    /// `section.name`, as in the file; `ICSFLOW__SECTION__NAME` in the
    /// environment.
    pub(super) key: &'static str,
    pub(super) kind: Kind,
    /// Its value when neither the file nor the environment gives one.
    pub(super) default: &'static str,
    /// The value the example file shows, when not the default.
    pub(super) example: Option<&'static str>,
    /// The comment above it in the example file.
    pub(super) doc: &'static str,
}

/// `topics.layout`'s word for one topic per feed and partner.
pub(super) const PER_PARTNER: &str = "per_partner";
/// The values of `topics.layout`.
pub(super) const LAYOUTS: [&str; 2] = ["shared", PER_PARTNER];

/// The free-form table passed to librdkafka as it is.
pub(super) const PASSTHROUGH: &str = "kafka.librdkafka";

const HEADER: &str = "icsflow configuration: every setting, with its default value.\n\
                      \n\
                      Used by `icsflow ingest`, `icsflow join` and `icsflow run` through\n\
                      `--config FILE`. Values are read in this order, later ones winning:\n\
                      built-in defaults, this file, then environment variables named\n\
                      ICSFLOW__<SECTION>__<KEY> (for example ICSFLOW__KAFKA__BOOTSTRAP_SERVERS).\n\
                      An unknown key, a value of the wrong type or out of range is an error: the\n\
                      process lists every problem and exits with status 64 before opening any\n\
                      port.";

/// Every setting, in the example file's order.
pub(super) const SETTINGS: &[Setting] = &[
    Setting {
        key: "kafka.bootstrap_servers",
        kind: Kind::Text,
        default: "127.0.0.1:9092",
        example: None,
        doc: "Brokers to bootstrap from: host:port, comma-separated.",
    },
    Setting {
        key: "kafka.session_timeout_ms",
        kind: Kind::Number {
            min: 1000,
            max: 3_600_000,
        },
        default: "10000",
        example: None,
        doc: "Consumer group session timeout. A replica that stops heartbeating for\n\
              this long loses its partitions to the others.",
    },
    Setting {
        key: "kafka.group_instance_id",
        kind: Kind::Text,
        default: "",
        example: None,
        doc: "Static group membership (librdkafka's group.instance.id) for the roles'\n\
              consumers: a replica restarted within session_timeout_ms gets its own\n\
              partitions back, and no other replica's partitions move or replay. Give\n\
              each replica its own stable value (in Kubernetes, the StatefulSet pod's\n\
              name); empty for dynamic membership. Both groups rebalance incrementally\n\
              (cooperative-sticky): only partitions that change owner are replayed.",
    },
    Setting {
        key: "kafka.librdkafka",
        kind: Kind::Passthrough,
        default: "",
        example: None,
        doc: "Settings passed to librdkafka as they are, applied after icsflow's own, for\n\
              SASL, TLS and tuning. Names as in librdkafka's CONFIGURATION.md. Through\n\
              the environment, write `_` for `.`:\n\
              ICSFLOW__KAFKA__LIBRDKAFKA__SASL_USERNAME sets sasl.username.\n\
              [kafka.librdkafka]\n\
              \"security.protocol\" = \"SASL_SSL\"\n\
              \"sasl.mechanisms\" = \"SCRAM-SHA-512\"\n\
              \"sasl.username\" = \"icsflow\"\n\
              \"sasl.password\" = \"from a Kubernetes Secret, through the environment\"\n\
              \"ssl.ca.location\" = \"/etc/icsflow/ca.pem\"\n\
              Ingest's producer waits up to 20 ms to fill a request and join's consumer\n\
              up to 20 ms for 64 KiB a fetch, which keeps the broker's requests few under\n\
              load (about 45 ms from publish to gauge). For less latency at the cost of\n\
              more broker CPU per event:\n\
              \"linger.ms\" = \"5\"\n\
              \"fetch.min.bytes\" = \"1\"",
    },
    Setting {
        key: "ingest.group_id",
        kind: Kind::Text,
        default: "icsflow-ingest",
        example: None,
        doc: "Consumer group of the ingest role (partner topics).",
    },
    Setting {
        key: "ingest.delivery",
        kind: Kind::Choice(&IngestDelivery::NAMES),
        default: "at_least_once",
        example: None,
        doc: "`at_least_once`: outputs are produced without waiting and a partner offset\n\
              is committed once what was produced for it is acknowledged; after a crash\n\
              some records are produced again (the engines absorb the repeats, other\n\
              readers of the journey and dead-letter topics see them twice).\n\
              `exactly_once`: each batch's outputs and partner offsets are committed in\n\
              one Kafka transaction, so readers with isolation.level=read_committed (the\n\
              join role, librdkafka's default) see each record's outcome once. Needs the\n\
              transaction-state topic and, with ACLs, a transactional-id grant.",
    },
    Setting {
        key: "join.group_id",
        kind: Kind::Text,
        default: "icsflow-join",
        example: None,
        doc: "Consumer group of the join role (journey topic). Scale by running more\n\
              replicas in this group, up to the journey topic's partition count.",
    },
    Setting {
        key: "topics.layout",
        kind: Kind::Choice(&LAYOUTS),
        default: "shared",
        example: None,
        doc: "`shared`: one topic per feed (the three below), written by every partner\n\
              of that feed; simple, but any partner can put records in another's name.\n\
              `per_partner`: one topic per feed and partner, named after the feed's\n\
              topic and the partner's ODS code (ics.discharge.v1.RXP), read by pattern,\n\
              so a new partner needs a topic and credentials, not a new release. A\n\
              record whose source_organisation is not the topic's partner's (its code,\n\
              its sites, the organisations it publishes for) is dead-lettered as\n\
              organisation_mismatch. Needs `reference.file`; `icsflow acls` renders the\n\
              ACLs that let each partner write only its own topics.",
    },
    Setting {
        key: "topics.discharge",
        kind: Kind::Text,
        default: "ics.discharge.v1",
        example: None,
        doc: "Partner topic of the acute trusts' discharge feed (with `per_partner`,\n\
              the prefix of each trust's topic).",
    },
    Setting {
        key: "topics.social_care",
        kind: Kind::Text,
        default: "ics.social_care.v1",
        example: None,
        doc: "Partner topic of the local authorities' social care feed.",
    },
    Setting {
        key: "topics.primary_care",
        kind: Kind::Text,
        default: "ics.primary_care.v1",
        example: None,
        doc: "Partner topic of the GP practices', PCNs' and pharmacies' primary care feed.",
    },
    Setting {
        key: "topics.journey",
        kind: Kind::Text,
        default: "icsflow.journey.v1",
        example: None,
        doc: "Validated events keyed by patient pseudonym; written by ingest, read by\n\
              join. Its partition count bounds how many join replicas do work.",
    },
    Setting {
        key: "topics.dead_letter",
        kind: Kind::Text,
        default: "icsflow.deadletter.v1",
        example: None,
        doc: "Rejected partner records, with the reason in headers (icsflow.reason).",
    },
    Setting {
        key: "reference.file",
        kind: Kind::Text,
        default: "",
        example: Some("reference.toml"),
        doc: "The ICS's reference data: places, partner organisations (name, kind,\n\
              place, Kafka principal, what each publishes for) and publishing cadences.\n\
              deploy/config/reference.toml is the demo ICS's and documents every field.\n\
              Needed by the roles (ingest, join, run), which count every record by it:\n\
              a place outside the ICS as `out_of_area`, a trust's site as the trust, and\n\
              a record of an organisation no partner speaks for dead-lettered\n\
              (organisation_mismatch). No default (empty); this example names the demo\n\
              ICS's, next to it. A relative path is read from the configuration file's\n\
              folder (from the working directory when there is no file). The partner\n\
              tools (publish, simulate, rejections) do without it.",
    },
    Setting {
        key: "schema_registry.url",
        kind: Kind::Text,
        default: "",
        example: None,
        doc: "Base URL of a Confluent-compatible Schema Registry, needed only for\n\
              partners publishing in Confluent framing (magic byte 0 + schema id), for\n\
              example https://registry.example.org or, for Apicurio,\n\
              http://apicurio:8080/apis/ccompat/v7. Empty: single-object framing only.",
    },
    Setting {
        key: "schema_registry.timeout_ms",
        kind: Kind::Number {
            min: 100,
            max: 120_000,
        },
        default: "5000",
        example: None,
        doc: "How long one registry request may take before the record is held back and\n\
              retried (never dead-lettered for an unavailable registry).",
    },
    Setting {
        key: "schema_registry.username",
        kind: Kind::Text,
        default: "",
        example: None,
        doc: "Credentials, sent on every request: username and password for HTTP basic\n\
              authentication (a hosted registry's API key and secret), or a bearer\n\
              token; not both. Give secrets through the environment\n\
              (ICSFLOW__SCHEMA_REGISTRY__PASSWORD, ICSFLOW__SCHEMA_REGISTRY__BEARER_TOKEN);\n\
              they are never logged. Credentials need an https:// URL.",
    },
    Setting {
        key: "schema_registry.password",
        kind: Kind::Text,
        default: "",
        example: None,
        doc: "",
    },
    Setting {
        key: "schema_registry.bearer_token",
        kind: Kind::Text,
        default: "",
        example: None,
        doc: "",
    },
    Setting {
        key: "schema_registry.ca_file",
        kind: Kind::Text,
        default: "",
        example: None,
        doc: "PEM file of the certificate authorities to trust for an https:// registry\n\
              instead of the Mozilla roots built in (an ICS's private CA). Empty: the\n\
              built-in roots.",
    },
    Setting {
        key: "admin.addr",
        kind: Kind::Text,
        default: "127.0.0.1:9464",
        example: None,
        doc: "Where /metrics, /healthz and /readyz are served (also --admin-addr). This\n\
              machine only by default: the metrics name the ICS's places and partners.\n\
              In a container, 0.0.0.0:9464 so that probes and Prometheus reach it (the\n\
              image sets ICSFLOW__ADMIN__ADDR so; a network policy then says who may).",
    },
    Setting {
        key: "admin.published_addr",
        kind: Kind::Text,
        default: "",
        example: None,
        doc: "Where the published view is served (also --published-addr): only the\n\
              icsflow_flow_* gauges, under the NHS small-number rule (counts of 1-7 left\n\
              out, every other count rounded to the nearest 5), for dashboards shared\n\
              beyond the partners that hold the data. Its own port, so a network policy\n\
              can open it wider than the admin port. Empty: not served.",
    },
    Setting {
        key: "engine.eviction_horizon_days",
        kind: Kind::Number {
            min: EngineConfig::MINIMUM_HORIZON_DAYS as i64,
            max: 3650,
        },
        default: "120",
        example: None,
        doc: "Complete journeys whose last event is older than this many days are\n\
              dropped from memory, their contribution to every total kept. At least 92\n\
              (the 91-day reablement outcome must settle first).",
    },
    Setting {
        key: "engine.as_of",
        kind: Kind::Choice(&AsOf::NAMES),
        default: "wall_clock",
        example: None,
        doc: "What \"now\" is for the join role: `wall_clock` for live feeds, or\n\
              `latest_event` (the newest event applied) to replay history, backfill, or\n\
              follow a simulation running faster or slower than real time. Open stays,\n\
              delayed bed days and eviction are all measured as of it.",
    },
    Setting {
        key: "log.format",
        kind: Kind::Choice(&LogFormat::NAMES),
        default: "text",
        example: None,
        doc: "`text` for a terminal, `json` for a log pipeline.",
    },
    Setting {
        key: "log.level",
        kind: Kind::Text,
        default: "info",
        example: None,
        doc: "A level (error, warn, info, debug, trace) or a filter such as\n\
              \"info,icsflow_kafka=debug\". No pseudonym or NHS number is logged at info\n\
              or above.",
    },
    Setting {
        key: "shutdown.timeout_seconds",
        kind: Kind::Number { min: 1, max: 600 },
        default: "20",
        example: None,
        doc: "After SIGTERM or SIGINT: stop fetching, finish in-flight records, commit,\n\
              and exit within this many seconds.",
    },
];

/// A setting's definition.
pub(super) fn setting(key: &str) -> &'static Setting {
    SETTINGS
        .iter()
        .find(|setting| setting.key == key)
        .unwrap_or_else(|| panic!("`{key}` is not defined in SETTINGS"))
}

/// Every key a file or the environment may set (the passthrough table's
/// own keys aside).
pub fn known_keys() -> impl Iterator<Item = &'static str> {
    SETTINGS
        .iter()
        .filter(|setting| !matches!(setting.kind, Kind::Passthrough))
        .map(|setting| setting.key)
}

/// The example configuration: every setting with its documentation and its
/// default value (or the example's, for `reference.file`).
pub fn example_toml() -> String {
    let mut text = String::new();
    let comment = |text: &mut String, doc: &str| {
        for line in doc.lines() {
            if line.is_empty() {
                text.push_str("#\n");
            } else {
                text.push_str(&format!("# {line}\n"));
            }
        }
    };
    comment(&mut text, HEADER);
    let mut section = "";
    for setting in SETTINGS {
        let (this_section, name) = setting.key.split_once('.').unwrap_or(("", setting.key));
        if this_section != section {
            section = this_section;
            text.push_str(&format!("\n[{section}]\n"));
        }
        if let Kind::Passthrough = setting.kind {
            text.push('\n');
            comment(&mut text, setting.doc);
            continue;
        }
        comment(&mut text, setting.doc);
        let value = setting.example.unwrap_or(setting.default);
        match setting.kind {
            Kind::Number { .. } => text.push_str(&format!("{name} = {value}\n")),
            _ => text.push_str(&format!("{name} = \"{value}\"\n")),
        }
    }
    text
}
