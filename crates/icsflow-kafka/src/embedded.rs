//! The embedded broker of the demo: librdkafka's in-process mock cluster.
//!
//! The mock cluster keeps at most 5 MiB per partition and silently drops
//! older data, so the demo spreads its topics over several partitions and
//! its producers compress; it is for demos and fast tests, never for
//! deployments.

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::common::RoleError;
use crate::settings::Topics;
use crate::topics::topic_plan;

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
    /// Starts the cluster and creates the topics of the plan
    /// ([`crate::topic_plan`]).
    pub fn start(topics: &Topics, eviction_horizon_days: u32) -> Result<EmbeddedBroker, RoleError> {
        let cluster = MockCluster::new(1)?;
        for topic in topic_plan(topics, eviction_horizon_days) {
            cluster.create_topic(&topic.name, topic.partitions, 1)?;
        }
        Ok(EmbeddedBroker { cluster })
    }

    pub fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }
}
