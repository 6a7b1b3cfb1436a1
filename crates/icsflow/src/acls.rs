//! `icsflow acls`: the Kafka ACLs of an ICS, rendered from its reference
//! data and icsflow's settings, so that who may write what is data in one
//! file, not commands typed once and forgotten.
//!
//! Each partner may write only its own topics (per-partner layout) or its
//! feed's topic (shared layout); icsflow's roles get only what they use:
//! ingest reads the partner topics, writes the journey and dead-letter
//! topics, uses its consumer group and (exactly once) its transactional
//! ids; join reads the journey topic and uses its group. Rendered as
//! `kafka-acls.sh` commands, or as Strimzi `KafkaUser` and `KafkaTopic`
//! resources.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use icsflow::settings::Settings;
use icsflow_core::{Feed, Reference};
use icsflow_kafka::{IngestDelivery, TopicLayout};

use crate::roles::{load_client_settings, KafkaArgs};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// One `kafka-acls.sh --add` command per principal and resource, as a
    /// shell script.
    KafkaAcls,
    /// Strimzi `KafkaTopic` and `KafkaUser` (SCRAM-SHA-512, simple
    /// authorization) resources, as one YAML stream.
    Strimzi,
}

/// Flags of `icsflow acls`.
#[derive(Debug, Args)]
#[command(after_help = "\
Topic names, consumer groups, the topic layout and the delivery mode come from the configuration;
partners and principals from the reference data (deploy/config/reference.toml documents it). With the
per_partner layout each partner gets Write on its own topic of its feed (for example
ics.discharge.v1.RXP) and nothing else; with the shared layout, Write on its feed's topic, where
nothing stops it writing in another partner's name.

Apply the kafka-acls output with an administrator's credentials:
  icsflow acls --config icsflow.toml --command-config admin.properties > acls.sh && sh acls.sh")]
pub(crate) struct AclsArgs {
    /// TOML configuration file: topics, group ids, `topics.layout`,
    /// `ingest.delivery`, `reference.file`.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The ICS's reference data (overrides `reference.file`).
    #[arg(long, value_name = "FILE")]
    reference: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::KafkaAcls)]
    format: Format,
    /// kafka-acls: the brokers the commands talk to (default:
    /// `kafka.bootstrap_servers`).
    #[arg(short = 'b', long = "bootstrap-server", value_name = "HOST:PORT")]
    bootstrap_server: Option<String>,
    /// kafka-acls: a client properties file with an administrator's
    /// credentials, passed as --command-config.
    #[arg(long, value_name = "FILE")]
    command_config: Option<PathBuf>,
    /// Strimzi: the Kafka cluster's name (the strimzi.io/cluster label).
    #[arg(long, value_name = "NAME", default_value = "ics")]
    strimzi_cluster: String,
    /// Also grant this principal Write on every partner topic: a stand-in
    /// publishing for all partners (`icsflow simulate` in a demo or a test
    /// environment). Never in a live ICS.
    #[arg(long, value_name = "User:NAME")]
    simulator_principal: Option<String>,
}

/// A Kafka resource an ACL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resource {
    Topic,
    Group,
    TransactionalId,
}

/// One ACL entry: a principal allowed operations on a resource (by its
/// literal name, or every name with this prefix).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Grant {
    principal: String,
    resource: Resource,
    name: String,
    prefixed: bool,
    operations: &'static [&'static str],
    /// Why, as a comment: whose grant and what it is for.
    why: String,
}

const WRITE: &[&str] = &["Write", "Describe"];
const READ: &[&str] = &["Read", "Describe"];
const GROUP: &[&str] = &["Read"];

pub(crate) fn run(arguments: AclsArgs) -> anyhow::Result<ExitCode> {
    let kafka = KafkaArgs {
        bootstrap_server: arguments.bootstrap_server.clone(),
        ..KafkaArgs::default()
    };
    let settings = match load_client_settings(
        "acls",
        arguments.config.as_deref(),
        &kafka,
        arguments.reference.as_deref(),
    ) {
        Ok(settings) => settings,
        Err(exit) => return Ok(exit),
    };
    let Some(reference) = settings.reference.clone() else {
        eprintln!("icsflow acls: needs the ICS's reference data: --reference FILE or `reference.file` in --config (see deploy/config/reference.toml)");
        return Ok(ExitCode::from(64));
    };
    if let Some(principal) = &arguments.simulator_principal {
        if !principal.starts_with("User:") || principal.len() <= "User:".len() {
            eprintln!(
                "icsflow acls: --simulator-principal `{principal}` is not of the form User:NAME"
            );
            return Ok(ExitCode::from(64));
        }
    }
    let grants = grants(
        &settings,
        &reference,
        arguments.simulator_principal.as_deref(),
    );
    let rendered = match arguments.format {
        Format::KafkaAcls => Ok(render_kafka_acls(
            &grants,
            &settings.kafka.bootstrap_servers,
            arguments.command_config.as_deref(),
        )),
        Format::Strimzi => render_strimzi(&grants, &settings, &arguments.strimzi_cluster),
    };
    match rendered {
        Ok(text) => {
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Err(problem) => {
            eprintln!("icsflow acls: {problem}");
            Ok(ExitCode::from(64))
        }
    }
}

/// The topics partners write: with the per-partner layout, each partner's
/// own topic of its feed; with the shared layout, the feed's topic.
fn partner_topic(settings: &Settings, feed: Feed, code: &str) -> String {
    if matches!(settings.topics.layout, TopicLayout::PerPartner(_)) {
        settings.topics.per_partner_topic(feed, code)
    } else {
        settings.topics.feed_topic(feed).to_owned()
    }
}

/// Every ACL of the ICS, in a stable order: partners, then the roles.
fn grants(settings: &Settings, reference: &Reference, simulator: Option<&str>) -> Vec<Grant> {
    let topics = &settings.topics;
    let mut grants = Vec::new();
    for partner in reference.partners() {
        grants.push(Grant {
            principal: partner.principal.clone(),
            resource: Resource::Topic,
            name: partner_topic(settings, partner.feed(), partner.code.as_str()),
            prefixed: false,
            operations: WRITE,
            why: format!(
                "Partner {} ({}, {}): publishes its {} feed.",
                partner.code,
                partner.name,
                partner.kind.as_str(),
                partner.feed().as_str()
            ),
        });
    }
    // The partner topics as ingest reads them: every partner's topic of a
    // feed (a prefix), or the feed's shared topic.
    let partner_topics = topics.partner_topics().map(|(name, _)| {
        if matches!(settings.topics.layout, TopicLayout::PerPartner(_)) {
            (format!("{name}."), true)
        } else {
            (name.to_owned(), false)
        }
    });
    if let Some(principal) = simulator {
        for (name, prefixed) in &partner_topics {
            grants.push(Grant {
                principal: principal.to_owned(),
                resource: Resource::Topic,
                name: name.clone(),
                prefixed: *prefixed,
                operations: WRITE,
                why: "The simulator, standing in for every partner (demo and test environments only).".to_owned(),
            });
        }
    }
    let roles = reference.roles();
    for (name, prefixed) in partner_topics {
        grants.push(Grant {
            principal: roles.ingest.clone(),
            resource: Resource::Topic,
            name,
            prefixed,
            operations: READ,
            why: "Ingest: reads the partner topics.".to_owned(),
        });
    }
    for name in [&topics.journey, &topics.dead_letter] {
        grants.push(Grant {
            principal: roles.ingest.clone(),
            resource: Resource::Topic,
            name: name.clone(),
            prefixed: false,
            operations: WRITE,
            why: "Ingest: writes validated events and dead letters.".to_owned(),
        });
    }
    grants.push(Grant {
        principal: roles.ingest.clone(),
        resource: Resource::Group,
        name: settings.kafka.ingest_group_id.clone(),
        prefixed: false,
        operations: GROUP,
        why: "Ingest: its consumer group.".to_owned(),
    });
    if settings.kafka.ingest_delivery == IngestDelivery::ExactlyOnce {
        grants.push(Grant {
            principal: roles.ingest.clone(),
            resource: Resource::TransactionalId,
            name: format!("{}-", settings.kafka.ingest_group_id),
            prefixed: true,
            operations: WRITE,
            why: "Ingest, exactly once: its transactional ids (the group id, a dash, the replica)."
                .to_owned(),
        });
    }
    grants.push(Grant {
        principal: roles.join.clone(),
        resource: Resource::Topic,
        name: topics.journey.clone(),
        prefixed: false,
        operations: READ,
        why: "Join: reads the journey topic.".to_owned(),
    });
    grants.push(Grant {
        principal: roles.join.clone(),
        resource: Resource::Group,
        name: settings.kafka.join_group_id.clone(),
        prefixed: false,
        operations: GROUP,
        why: "Join: its consumer group.".to_owned(),
    });
    grants
}

fn render_kafka_acls(
    grants: &[Grant],
    bootstrap: &str,
    command_config: Option<&std::path::Path>,
) -> String {
    let mut out = String::from(
        "#!/bin/sh\n# Kafka ACLs of icsflow and the ICS's partners, rendered by `icsflow acls`\n# from the reference data and the settings. Run with an administrator's\n# credentials; adding an ACL that exists already changes nothing.\nset -e\n",
    );
    let config = command_config
        .map(|path| {
            format!(
                " --command-config {}",
                shell_word(&path.display().to_string())
            )
        })
        .unwrap_or_default();
    let bootstrap = shell_word(bootstrap);
    for grant in grants {
        let resource = match grant.resource {
            Resource::Topic => "--topic",
            Resource::Group => "--group",
            Resource::TransactionalId => "--transactional-id",
        };
        let operations: String = grant
            .operations
            .iter()
            .map(|operation| format!(" --operation {operation}"))
            .collect();
        let pattern = if grant.prefixed {
            " --resource-pattern-type prefixed"
        } else {
            ""
        };
        let _ = write!(
            out,
            "\n# {}\nkafka-acls.sh --bootstrap-server {bootstrap}{config} --add --allow-principal {}{operations} {resource} {}{pattern}\n",
            one_line(&grant.why),
            shell_word(&grant.principal),
            shell_word(&grant.name)
        );
    }
    out
}

/// `text` as one word of a POSIX shell command: as it is when it holds
/// only characters no shell treats specially, otherwise in single quotes
/// (a quote inside closed, escaped and reopened). Nothing pasted can become
/// a command of its own.
fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-_.,:/@%+=".contains(&byte));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// `text` as a YAML scalar that reads back as exactly `text`: a JSON
/// string, which YAML takes as a double-quoted scalar.
fn yaml_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

/// `text` on one line, for a comment: control characters (a line break
/// above all) become spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|character| {
            if character.is_control() {
                ' '
            } else {
                character
            }
        })
        .collect()
}

/// A Kubernetes object name for `text`: lower case, `_` as `-` (a topic's
/// real name goes in `topicName`); `None` unless that leaves lower-case
/// letters, digits, `-` and `.`, at most 253 characters, starting and
/// ending with a letter or digit.
fn kubernetes_name(text: &str) -> Option<String> {
    let name = text.to_ascii_lowercase().replace('_', "-");
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"-.".contains(&byte)
        })
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric();
    valid.then_some(name)
}

fn render_strimzi(grants: &[Grant], settings: &Settings, cluster: &str) -> Result<String, String> {
    // Every value below is a checked name (a Kubernetes name, a Kafka topic
    // name, a principal of `User:` and a safe name), written as a JSON
    // string: YAML reads a JSON string as the same string, whatever it holds.
    let cluster = kubernetes_name(cluster)
        .filter(|name| name == cluster)
        .ok_or_else(|| {
            "--strimzi-cluster is not a Kubernetes name (lower-case letters, digits, `-` and `.`)"
                .to_owned()
        })?;
    let cluster = yaml_string(&cluster);
    let mut out = String::from(
        "# Strimzi resources of icsflow and the ICS's partners, rendered by\n# `icsflow acls --format strimzi` from the reference data and the settings:\n# the topics, and one KafkaUser (SCRAM-SHA-512) per principal with only the\n# ACLs it needs. Apply in the Kafka cluster's namespace.\n",
    );
    // The plan (`icsflow topics` prints it): one place for partitions and
    // retention.
    let topic_list =
        icsflow_kafka::topic_plan(&settings.topics, settings.journey_retention_horizon());
    for topic in topic_list {
        let (name, partitions, retention, why) = (
            topic.name.as_str(),
            topic.partitions,
            topic.retention_ms(),
            topic.purpose,
        );
        let object = kubernetes_name(name)
            .ok_or_else(|| format!("topic `{name}` cannot name a Kubernetes object"))?;
        let (object, name) = (yaml_string(&object), yaml_string(name));
        let _ = write!(
            out,
            "---\n# {why}\napiVersion: kafka.strimzi.io/v1\nkind: KafkaTopic\nmetadata:\n  name: {object}\n  labels:\n    strimzi.io/cluster: {cluster}\nspec:\n  topicName: {name}\n  partitions: {partitions}\n  replicas: 3\n  config:\n    cleanup.policy: delete\n    retention.ms: {retention}\n    min.insync.replicas: 2\n"
        );
    }
    let mut principals: Vec<&str> = Vec::new();
    for grant in grants {
        if !principals.contains(&grant.principal.as_str()) {
            principals.push(&grant.principal);
        }
    }
    for principal in principals {
        let user = principal.trim_start_matches("User:");
        let object = kubernetes_name(user)
            .filter(|name| name == user)
            .ok_or_else(|| format!("principal `{principal}`: a Strimzi KafkaUser's name is its user name, and `{user}` is not a valid lower-case Kubernetes name"))?;
        let mine: Vec<&Grant> = grants
            .iter()
            .filter(|grant| grant.principal == principal)
            .collect();
        let _ = write!(
            out,
            "---\n# {}\napiVersion: kafka.strimzi.io/v1\nkind: KafkaUser\nmetadata:\n  name: {}\n  labels:\n    strimzi.io/cluster: {cluster}\nspec:\n  authentication:\n    type: scram-sha-512\n  authorization:\n    type: simple\n    acls:\n",
            one_line(&mine[0].why),
            yaml_string(&object)
        );
        for grant in mine {
            let kind = match grant.resource {
                Resource::Topic => "topic",
                Resource::Group => "group",
                Resource::TransactionalId => "transactionalId",
            };
            let pattern = if grant.prefixed { "prefix" } else { "literal" };
            let _ = write!(
                out,
                "      - resource:\n          type: {kind}\n          name: {}\n          patternType: {pattern}\n        operations: [{}]\n",
                yaml_string(&grant.name),
                grant.operations.join(", ")
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use icsflow::reference;

    fn settings(extra: &str) -> Settings {
        let text = format!(
            "[reference]\nfile = \"{}/../../{}\"\n{extra}",
            env!("CARGO_MANIFEST_DIR"),
            reference::DEMO_REFERENCE
        );
        icsflow::settings::load(Some(("test.toml", &text)), &Default::default())
            .and_then(Settings::with_files)
            .expect("valid settings")
    }

    #[test]
    fn each_partner_may_write_only_its_own_topic_and_the_roles_only_what_they_use() {
        let settings =
            settings("[topics]\nlayout = \"per_partner\"\n[ingest]\ndelivery = \"exactly_once\"\n");
        let reference = settings.reference.clone().expect("reference");
        let grants = grants(&settings, &reference, None);
        let rxp: Vec<&Grant> = grants
            .iter()
            .filter(|grant| grant.principal == "User:partner-rxp")
            .collect();
        assert_eq!(rxp.len(), 1);
        assert_eq!(
            (
                rxp[0].resource,
                rxp[0].name.as_str(),
                rxp[0].prefixed,
                rxp[0].operations
            ),
            (Resource::Topic, "ics.discharge.v1.RXP", false, WRITE)
        );
        let script = render_kafka_acls(&grants, "kafka:9092", None);
        assert!(script.contains("kafka-acls.sh --bootstrap-server kafka:9092 --add --allow-principal User:icsflow-ingest --operation Read --operation Describe --topic ics.discharge.v1. --resource-pattern-type prefixed\n"), "{script}");
        assert!(script.contains("--allow-principal User:icsflow-ingest --operation Write --operation Describe --transactional-id icsflow-ingest- --resource-pattern-type prefixed\n"), "{script}");
        assert!(
            script.contains(
                "--allow-principal User:icsflow-join --operation Read --group icsflow-join\n"
            ),
            "{script}"
        );
        // Join writes nothing; no partner reads anything.
        assert!(!grants
            .iter()
            .any(|grant| grant.principal == "User:icsflow-join" && grant.operations == WRITE));
        assert!(
            !grants
                .iter()
                .any(|grant| grant.principal.starts_with("User:partner-")
                    && grant.operations != WRITE)
        );
    }

    #[test]
    fn at_least_once_ingest_gets_no_transactional_ids_and_shared_topics_are_literal() {
        let settings = settings("");
        let reference = settings.reference.clone().expect("reference");
        let grants = grants(&settings, &reference, Some("User:icsflow-simulator"));
        assert!(!grants
            .iter()
            .any(|grant| grant.resource == Resource::TransactionalId));
        assert!(grants
            .iter()
            .filter(|grant| grant.resource == Resource::Topic)
            .all(|grant| !grant.prefixed));
        assert_eq!(
            grants
                .iter()
                .filter(|grant| grant.principal == "User:icsflow-simulator")
                .count(),
            3
        );
    }

    /// The example overlay's Strimzi resources are what `icsflow acls`
    /// renders from the demo reference data and the overlay's settings.
    #[test]
    fn the_example_strimzi_resources_are_rendered_from_the_reference_data() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        let overlay = format!("{root}/deploy/k8s/overlays/example");
        let text =
            std::fs::read_to_string(format!("{overlay}/icsflow.toml")).expect("overlay settings");
        let mut settings =
            icsflow::settings::load(Some(("icsflow.toml", &text)), &Default::default())
                .expect("valid overlay settings");
        let reference = reference::parse(reference::DEMO_REFERENCE, reference::DEMO_REFERENCE_TEXT)
            .expect("valid");
        assert!(
            text.contains("layout = \"per_partner\""),
            "the overlay's topics are per partner"
        );
        // As loading the reference file does.
        settings.topics.layout =
            icsflow_kafka::TopicLayout::PerPartner(std::sync::Arc::new(reference.clone()));
        let grants = grants(&settings, &reference, Some(EXAMPLE_SIMULATOR));
        let rendered = render_strimzi(&grants, &settings, "ics").expect("renders");
        let committed = std::fs::read_to_string(format!("{overlay}/strimzi/resources.yaml"))
            .unwrap_or_default();
        if committed != rendered {
            std::fs::write(format!("{overlay}/strimzi/resources.yaml.new"), &rendered)
                .expect("write");
            panic!("deploy/k8s/overlays/example/strimzi/resources.yaml is stale: the rendering is in resources.yaml.new next to it (icsflow acls --format strimzi --config deploy/k8s/overlays/example/icsflow.toml --reference deploy/config/reference.toml --simulator-principal {EXAMPLE_SIMULATOR})");
        }
    }

    /// Regression: a newline in a partner's name injected a command
    /// (`--operation All --topic *`) into the rendered acls.sh and a line
    /// into the Strimzi YAML; topic names holding `$(…)` were rendered
    /// unquoted. Names are one line of printable text, every shell word is
    /// quoted, every YAML value is a JSON string; hostile text read back
    /// by a real shell and a JSON parser is the text itself.
    #[test]
    fn hostile_text_renders_as_itself() {
        let hostile = [
            "$(touch /tmp/icsflow-owned)",
            "a'b\"c",
            "x\nkafka-acls.sh --add --operation All --topic *",
            "`id`; rm -rf /",
            "",
            "plain-name_1.2",
        ];
        for text in hostile {
            let output = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf '%s' {}", shell_word(text)))
                .output()
                .expect("sh runs");
            assert_eq!(String::from_utf8_lossy(&output.stdout), text, "{text:?}");
            let read: String = serde_json::from_str(&yaml_string(text)).expect("a string");
            assert_eq!(read, text);
            assert!(!one_line(text).contains('\n'));
        }
        assert!(!std::path::Path::new("/tmp/icsflow-owned").exists());
        let with_newline = reference::DEMO_REFERENCE_TEXT.replacen(
            "name = \"County Durham and Darlington NHS Foundation Trust\"",
            "name = \"Durham\\n--operation All --topic *\"",
            1,
        );
        assert_ne!(with_newline, reference::DEMO_REFERENCE_TEXT);
        let problems = reference::parse("hostile.toml", &with_newline).expect_err("refused");
        assert!(
            problems
                .iter()
                .any(|problem| problem.contains("line break")),
            "{problems:?}"
        );
    }

    /// The simulator's principal in the example overlay.
    const EXAMPLE_SIMULATOR: &str = "User:icsflow-simulator";
}
