//! The HTTP server of `scorer run`: `/metrics` (Prometheus text format), `/healthz`
//! (liveness: 200 while every loop makes progress, 503 naming the stuck loop) and `/readyz`
//! (readiness: 200 only while in the group with every assigned partition restored). The
//! rules are in [`crate::health`].

use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::get;

use crate::health::Health;
use crate::metrics::Metrics;

/// Serves the three endpoints on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let h2 = health.clone();
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = metrics.clone();
                async move {
                    (
                        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
                        m.render(),
                    )
                }
            }),
        )
        .route(
            "/healthz",
            get(move || {
                let h = health.clone();
                async move {
                    match h.liveness() {
                        Ok(()) => (StatusCode::OK, "ok".to_string()),
                        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e),
                    }
                }
            }),
        )
        .route(
            "/readyz",
            get(move || {
                let h = h2.clone();
                async move {
                    match h.readiness() {
                        Ok(()) => (StatusCode::OK, "ready"),
                        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e),
                    }
                }
            }),
        );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
