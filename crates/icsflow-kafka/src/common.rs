//! What both roles share: their error, the clock they read "now" from,
//! the shutdown signal, and taking what librdkafka already holds.

/// Why a role stopped with an error (bad input never does).
#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    #[error("kafka client: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("the broker did not acknowledge a produced record: {0}")]
    DeliveryFailed(String),
    #[error("could not create topic {0}")]
    TopicCreation(String),
    /// The transaction of a batch could not be committed and the producer
    /// cannot go on (it was fenced, an abort failed, or the commit failed
    /// without saying whether it took effect): the role stops so that a
    /// restart reads from the offsets the broker holds.
    #[error("the transaction of a batch failed: {0}")]
    TransactionFailed(rdkafka::error::KafkaError),
    #[error("could not start a thread: {0}")]
    Thread(#[from] std::io::Error),
    /// The join's apply thread ended while the loop still ran: a panic in
    /// the engine, logged above. The role stops rather than run without
    /// applying.
    #[error("the thread applying events to the engines stopped")]
    ApplyStopped,
}

/// The version of the librdkafka this build links, for `icsflow_build_info`.
pub fn librdkafka_version() -> String {
    rdkafka::util::get_rdkafka_version().1
}

/// Tells a role to stop: it stops fetching, finishes in-flight work,
/// commits and returns.
pub type Shutdown = tokio::sync::watch::Receiver<bool>;

/// Resolves when the shutdown signal is raised.
pub async fn stopped(shutdown: &mut Shutdown) {
    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

/// The future's output if it is ready at once, without waiting: how a role
/// takes what librdkafka already holds after the first record of a batch.
pub(crate) fn ready_now<F: std::future::Future>(future: F) -> Option<F::Output> {
    let future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.poll(&mut context) {
        std::task::Poll::Ready(output) => Some(output),
        std::task::Poll::Pending => None,
    }
}

/// The next item of a stream: a role keeps one rdkafka message stream for
/// its life and takes messages with this (`StreamConsumer::recv` makes and
/// drops a stream, two locked waker-table updates, per message).
pub fn next_message<S: futures_core::Stream + Unpin>(
    stream: &mut S,
) -> impl std::future::Future<Output = Option<S::Item>> + '_ {
    std::future::poll_fn(move |context| std::pin::Pin::new(&mut *stream).poll_next(context))
}
