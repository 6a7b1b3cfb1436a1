//! The embedded broker of the demo: librdkafka's in-process mock cluster,
//! and topic creation on a real broker.
//!
//! The mock cluster keeps at most 5 MiB per partition and silently drops
//! older data, so the demo spreads its topics over several partitions and
//! its producers compress; it is for demos and fast tests, never for
//! deployments.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::settings::{KafkaSettings, Topics};
use crate::RoleError;

/// A one-broker Kafka cluster inside this process, with every icsflow
/// topic created. Dropping it stops the cluster.
pub struct EmbeddedBroker {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl std::fmt::Debug for EmbeddedBroker {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("EmbeddedBroker")
            .field("bootstrap_servers", &self.cluster.bootstrap_servers())
            .finish()
    }
}

impl EmbeddedBroker {
    /// Starts the cluster and creates the topics, each with `partitions`
    /// partitions (the dead-letter topic with one).
    pub fn start(topics: &Topics, partitions: i32) -> Result<EmbeddedBroker, RoleError> {
        let cluster = MockCluster::new(1)?;
        for (topic, count) in topic_partitions(topics, partitions) {
            cluster.create_topic(topic, count, 1)?;
        }
        Ok(EmbeddedBroker { cluster })
    }

    pub fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }
}

fn topic_partitions(topics: &Topics, partitions: i32) -> [(&str, i32); 5] {
    [
        (topics.discharge.as_str(), partitions),
        (topics.social_care.as_str(), partitions),
        (topics.primary_care.as_str(), partitions),
        (topics.journey.as_str(), partitions),
        (topics.dead_letter.as_str(), 1),
    ]
}

/// Creates whichever icsflow topics do not exist yet on a real broker
/// (replication factor 1: for demos and tests; production topics are
/// created by the platform team with their own settings).
pub async fn create_missing_topics(
    settings: &KafkaSettings,
    topics: &Topics,
    partitions: i32,
) -> Result<(), RoleError> {
    let admin: AdminClient<DefaultClientContext> = settings.client_config(&[]).create()?;
    let wanted = topic_partitions(topics, partitions);
    let new_topics: Vec<NewTopic<'_>> = wanted
        .iter()
        .map(|(name, count)| NewTopic::new(name, *count, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&new_topics, &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(RoleError::TopicCreation(format!("{topic}: {code}")));
            }
        }
    }
    Ok(())
}
