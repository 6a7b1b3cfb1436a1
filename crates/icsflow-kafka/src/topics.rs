//! How many partitions each icsflow topic has and how long it keeps its
//! records: the one place that says so. `icsflow topics` prints and creates
//! them, `icsflow acls --format strimzi` renders them as KafkaTopics, the
//! demo and the soak create them; nothing creates a topic silently (every
//! producer refuses the broker's automatic creation).

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::types::RDKafkaErrorCode;

use crate::common::RoleError;
use crate::context::ToolContext;
use crate::settings::{KafkaSettings, TopicLayout, Topics};

/// A feed's shared topic: every partner of the feed writes it; ingest's
/// replicas share its partitions (scale ingest up to this).
pub const SHARED_FEED_PARTITIONS: i32 = 6;
/// A partner's own topic: one organisation's records, a few a second at
/// most; ingest reads every partner's, so the sum is what it scales over.
pub const PER_PARTNER_PARTITIONS: i32 = 3;
/// The journey topic: the join role scales up to this many replicas, and it
/// can never change (a patient's events must stay on one partition).
pub const JOURNEY_PARTITIONS: i32 = 6;
/// The dead-letter topic: rejected records, read by `icsflow rejections`.
pub const DEAD_LETTER_PARTITIONS: i32 = 3;

const DAY: u32 = 1;

/// One topic of the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedTopic {
    pub name: String,
    pub partitions: i32,
    pub retention_days: u32,
    /// Why it exists and why it keeps what it keeps, for a reader.
    pub purpose: &'static str,
}

impl PlannedTopic {
    pub fn retention_ms(&self) -> u64 {
        u64::from(self.retention_days) * 86_400_000
    }
}

/// Every icsflow topic for these settings: the partner topics of the
/// layout (per partner: one per partner of the reference data), the
/// journey topic and the dead-letter topic. The journey topic keeps ten
/// days more than the engine's eviction horizon (130 for the default 120),
/// so that a replay rebuilds every journey a replica would still hold.
pub fn topic_plan(topics: &Topics, eviction_horizon_days: u32) -> Vec<PlannedTopic> {
    let mut plan = Vec::new();
    match &topics.layout {
        TopicLayout::PerPartner(reference) => {
            for partner in reference.partners() {
                plan.push(PlannedTopic {
                    name: topics.per_partner_topic(partner.feed(), partner.code.as_str()),
                    partitions: PER_PARTNER_PARTITIONS,
                    retention_days: 30 * DAY,
                    purpose: "a partner's own topic",
                });
            }
        }
        TopicLayout::Shared => {
            for (name, _) in topics.partner_topics() {
                plan.push(PlannedTopic {
                    name: name.to_owned(),
                    partitions: SHARED_FEED_PARTITIONS,
                    retention_days: 30 * DAY,
                    purpose: "a feed's shared topic",
                });
            }
        }
    }
    plan.push(PlannedTopic {
        name: topics.journey.clone(),
        partitions: JOURNEY_PARTITIONS,
        retention_days: (eviction_horizon_days + 10) * DAY,
        purpose: "validated events; retention beyond the eviction horizon, so a replay rebuilds every journey held; deleted by age, never compacted (its records of batched events have no key)",
    });
    plan.push(PlannedTopic {
        name: topics.dead_letter.clone(),
        partitions: DEAD_LETTER_PARTITIONS,
        retention_days: 30 * DAY,
        purpose: "rejected partner records",
    });
    plan
}

/// What the broker holds of a plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopicsFound {
    /// Planned topics that exist, with their partition count.
    pub existing: Vec<(PlannedTopic, i32)>,
    /// Planned topics that do not exist.
    pub missing: Vec<PlannedTopic>,
}

/// Which topics of `plan` exist on the broker, and with how many
/// partitions.
pub fn find_topics(
    settings: &KafkaSettings,
    plan: &[PlannedTopic],
) -> Result<TopicsFound, RoleError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer<ToolContext> = settings
        .client_config(&[("client.id", "icsflow-topics")])
        .create_with_context(ToolContext::new("topics"))?;
    let metadata = consumer.fetch_metadata(None, Duration::from_secs(10))?;
    let mut found = TopicsFound::default();
    for topic in plan {
        // A topic the broker reports with an error other than "unknown"
        // (a leader not elected yet, just after creation) exists.
        let unknown = |existing: &&rdkafka::metadata::MetadataTopic| {
            existing.error().is_some_and(|error| {
                rdkafka::types::RDKafkaErrorCode::from(error)
                    == RDKafkaErrorCode::UnknownTopicOrPartition
            })
        };
        match metadata
            .topics()
            .iter()
            .find(|existing| existing.name() == topic.name && !unknown(existing))
        {
            Some(existing) => found
                .existing
                .push((topic.clone(), existing.partitions().len() as i32)),
            None => found.missing.push(topic.clone()),
        }
    }
    Ok(found)
}

/// Creates the topics given, with their planned partitions and retention;
/// `replication` replicas each, or the broker's default when `None`.
/// Returns the names of those it created: a topic created meanwhile by
/// someone else is not an error, and is not among them.
pub async fn create_topics(
    settings: &KafkaSettings,
    plan: &[PlannedTopic],
    replication: Option<i32>,
) -> Result<Vec<String>, RoleError> {
    if plan.is_empty() {
        return Ok(Vec::new());
    }
    let admin: AdminClient<ToolContext> = settings
        .client_config(&[("client.id", "icsflow-topics")])
        .create_with_context(ToolContext::new("topics"))?;
    let retention: Vec<String> = plan
        .iter()
        .map(|topic| topic.retention_ms().to_string())
        .collect();
    let new_topics: Vec<NewTopic<'_>> = plan
        .iter()
        .zip(&retention)
        .map(|(topic, retention)| {
            NewTopic::new(
                &topic.name,
                topic.partitions,
                TopicReplication::Fixed(replication.unwrap_or(-1)),
            )
            .set("retention.ms", retention)
            .set("cleanup.policy", "delete")
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let mut created = Vec::new();
    for result in admin.create_topics(&new_topics, &options).await? {
        match result {
            Ok(topic) => created.push(topic),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(RoleError::TopicCreation(format!("{topic}: {code}")));
            }
        }
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics(layout: TopicLayout) -> Topics {
        Topics {
            discharge: "ics.discharge.v1".into(),
            social_care: "ics.social_care.v1".into(),
            primary_care: "ics.primary_care.v1".into(),
            journey: "icsflow.journey.v1".into(),
            dead_letter: "icsflow.deadletter.v1".into(),
            layout,
        }
    }

    #[test]
    fn every_topic_once_with_its_partitions() {
        let shared = topic_plan(&topics(TopicLayout::Shared), 120);
        assert_eq!(
            shared
                .iter()
                .map(|topic| (topic.name.as_str(), topic.partitions))
                .collect::<Vec<_>>(),
            [
                ("ics.discharge.v1", SHARED_FEED_PARTITIONS),
                ("ics.social_care.v1", SHARED_FEED_PARTITIONS),
                ("ics.primary_care.v1", SHARED_FEED_PARTITIONS),
                ("icsflow.journey.v1", JOURNEY_PARTITIONS),
                ("icsflow.deadletter.v1", DEAD_LETTER_PARTITIONS),
            ]
        );
        let reference = std::sync::Arc::new(icsflow_core::samples_reference());
        let per_partner = topic_plan(&topics(TopicLayout::PerPartner(reference.clone())), 120);
        assert_eq!(per_partner.len(), reference.partners().len() + 2);
        assert!(per_partner
            .iter()
            .any(|topic| topic.name == "ics.discharge.v1.RVW"
                && topic.partitions == PER_PARTNER_PARTITIONS));
        // The journey topic outlives the eviction horizon, whatever it is.
        assert_eq!(shared[3].retention_days, 130);
        assert_eq!(
            topic_plan(&topics(TopicLayout::Shared), 200)[3].retention_days,
            210
        );
    }
}
