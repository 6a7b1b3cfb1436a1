//! Producing partner records: what `icsflow publish`, the simulator and the
//! demo use to write to the partner topics.

use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

use crate::common::RoleError;
use crate::settings::KafkaSettings;

/// A producer for partner topics, with the same settings as the roles'
/// producers (idempotent, murmur2 partitioner, lz4).
#[derive(Clone)]
pub struct PartnerProducer {
    producer: FutureProducer<crate::context::ToolContext>,
}

impl std::fmt::Debug for PartnerProducer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PartnerProducer")
            .finish_non_exhaustive()
    }
}

/// Resolves once the broker acknowledged the record, or with why it did
/// not.
pub type Delivery =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), DeliveryFailure>> + Send>>;

/// Why the broker did not take a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryFailure {
    /// The client's principal may not write the topic (or, for an
    /// idempotent producer, to the cluster): retrying will not help until
    /// the ACLs change.
    NotAuthorized(String),
    /// Anything else: unreachable, timed out, refused for now.
    Other(String),
}

impl DeliveryFailure {
    fn from_error(error: &rdkafka::error::KafkaError) -> DeliveryFailure {
        use rdkafka::types::RDKafkaErrorCode::{
            ClusterAuthorizationFailed, TopicAuthorizationFailed,
            TransactionalIdAuthorizationFailed,
        };
        match error.rdkafka_error_code() {
            Some(
                TopicAuthorizationFailed
                | ClusterAuthorizationFailed
                | TransactionalIdAuthorizationFailed,
            ) => DeliveryFailure::NotAuthorized(error.to_string()),
            _ => DeliveryFailure::Other(error.to_string()),
        }
    }
}

impl std::fmt::Display for DeliveryFailure {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeliveryFailure::NotAuthorized(detail) | DeliveryFailure::Other(detail) => {
                formatter.write_str(detail)
            }
        }
    }
}

impl PartnerProducer {
    pub fn new(settings: &KafkaSettings) -> Result<PartnerProducer, RoleError> {
        let mut config = settings.producer_config();
        // A command-line publisher should give up on an unreachable broker
        // within seconds, not librdkafka's five minutes.
        if !settings.librdkafka.contains_key("message.timeout.ms") {
            config.set("message.timeout.ms", "30000");
        }
        if !settings.librdkafka.contains_key("client.id") {
            config.set("client.id", "icsflow-publish");
        }
        Ok(PartnerProducer {
            producer: config.create_with_context(crate::context::ToolContext::new("publish"))?,
        })
    }

    /// Queues one record. It is produced in the background; await the
    /// returned delivery for the broker's answer. Waits while librdkafka's
    /// queue is full.
    pub async fn send(&self, topic: &str, key: &[u8], payload: &[u8]) -> Delivery {
        let mut record = FutureRecord::to(topic).key(key).payload(payload);
        loop {
            match self.producer.send_result(record) {
                Ok(delivery) => {
                    return Box::pin(async move {
                        match delivery.await {
                            Ok(Ok(_)) => Ok(()),
                            Ok(Err((error, _))) => Err(DeliveryFailure::from_error(&error)),
                            Err(_) => Err(DeliveryFailure::Other(
                                "the producer was dropped".to_owned(),
                            )),
                        }
                    });
                }
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    returned,
                )) => {
                    record = returned;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err((error, _)) => {
                    let failure = DeliveryFailure::from_error(&error);
                    return Box::pin(async move { Err(failure) });
                }
            }
        }
    }

    /// Waits for every queued record to be delivered or to fail.
    pub fn flush(&self, timeout: Duration) -> Result<(), RoleError> {
        self.producer.flush(Timeout::After(timeout))?;
        Ok(())
    }
}
