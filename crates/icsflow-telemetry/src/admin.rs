//! The admin endpoint: `/metrics`, `/healthz` (alive) and `/readyz`
//! (assigned partitions replayed and broker reachable), on their own port.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus::Registry;

pub use icsflow_events::Health;

/// What the admin handlers need.
#[derive(Clone, Debug)]
pub struct AdminState {
    pub registry: Registry,
    pub health: Arc<Health>,
}

/// Serves the admin endpoint on an already bound listener until `shutdown`
/// completes.
pub async fn serve_admin(
    listener: tokio::net::TcpListener,
    state: AdminState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readiness))
        .with_state(state);
    serve_bounded(listener, router, shutdown).await
}

/// Serves the published view (`/metrics` only, flow gauges under the
/// small-number rule) on its own listener until `shutdown` completes. A
/// port of its own lets a network policy open it wider than the admin
/// port.
pub async fn serve_published(
    listener: tokio::net::TcpListener,
    registry: Registry,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = Router::new()
        .route(
            "/metrics",
            get(|State(registry): State<Registry>| async move {
                exposition(registry, crate::render_published).await
            }),
        )
        .with_state(registry);
    serve_bounded(listener, router, shutdown).await
}

/// How the admin and published servers bound what clients can hold: the
/// published view is the port meant to be opened beyond the partners, and
/// the admin port is where Kubernetes' probes and Prometheus go.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnectionLimits {
    /// Connections served at once. A new connection past it closes the
    /// oldest one open, so no client can starve the others by holding
    /// connections (a scraper's is the newest when it arrives).
    pub(crate) max_connections: usize,
    /// A request's headers, and the next request on an idle keep-alive
    /// connection, must arrive within this.
    pub(crate) header_read_timeout: std::time::Duration,
    /// No connection is held longer than this (a scraper reconnects).
    pub(crate) max_connection_age: std::time::Duration,
}

impl ConnectionLimits {
    pub(crate) const DEFAULT: ConnectionLimits = ConnectionLimits {
        max_connections: 64,
        header_read_timeout: std::time::Duration::from_secs(2),
        max_connection_age: std::time::Duration::from_secs(60),
    };
}

async fn serve_bounded(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_limits(listener, router, shutdown, ConnectionLimits::DEFAULT).await
}

/// Accepts connections until `shutdown` completes, each served by hyper
/// under `limits`. Connections still open at shutdown are left to end with
/// the process.
async fn serve_with_limits(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    limits: ConnectionLimits,
) -> std::io::Result<()> {
    // The connections open, oldest first.
    let mut open: std::collections::VecDeque<tokio::task::AbortHandle> =
        std::collections::VecDeque::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors or a connection reset before it
                // was accepted: keep serving the others.
                Err(error) => {
                    tracing::debug!(%error, "accepting an admin connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        open.retain(|connection| !connection.is_finished());
        while open.len() >= limits.max_connections {
            // The oldest makes room: a client holding connections loses its
            // own, never another client's new one.
            if let Some(oldest) = open.pop_front() {
                oldest.abort();
            }
        }
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let task = tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let _ = tokio::time::timeout(limits.max_connection_age, connection).await;
        });
        open.push_back(task.abort_handle());
    }
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    exposition(state.registry.clone(), crate::render).await
}

async fn exposition(
    registry: Registry,
    render: fn(&Registry) -> Result<String, crate::RenderError>,
) -> axum::response::Response {
    // Rendering walks engine state under a lock; keep it off the reactor.
    let rendered = tokio::task::spawn_blocking(move || render(&registry)).await;
    match rendered {
        Ok(Ok(body)) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        // A 500, never an empty 200: Prometheus then marks the target down
        // (`up` 0) instead of reading every series as gone.
        Ok(Err(error)) => {
            tracing::error!(%error, "metrics could not be rendered");
            (StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n")).into_response()
        }
        Err(error) => {
            tracing::error!(%error, "rendering the metrics failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the metrics could not be rendered; see the log\n".to_owned(),
            )
                .into_response()
        }
    }
}

async fn readiness(State(state): State<AdminState>) -> impl IntoResponse {
    let reasons = state.health.not_ready_reasons();
    if reasons.is_empty() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", reasons.join("; ")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a rendering failure answered 200 with an empty body,
    /// which Prometheus reads as every series gone.
    #[tokio::test]
    async fn a_rendering_failure_is_a_500_never_an_empty_200() {
        let failed = exposition(Registry::new(), |_| {
            Err(crate::RenderError("a collector broke".to_owned()))
        })
        .await;
        assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let rendered = exposition(Registry::new(), crate::render).await;
        assert_eq!(rendered.status(), StatusCode::OK);
    }
}
