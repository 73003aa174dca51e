//! The plain-HTTP admin listener: `/healthz`, `/readyz`, `/metrics`.
//!
//! It stays up until the webhook listener has drained, so a probe sees
//! `/readyz` turn 503 while in-flight requests finish.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::routing::get;
use axum::Router;

use super::metrics::Metrics;
use crate::engine::Engine;

/// State of the admin listener.
pub(crate) struct AdminState {
    pub engine: Arc<Engine>,
    pub metrics: Arc<Metrics>,
    /// Cleared when shutdown starts; shared with the shutdown sequence.
    pub ready: Arc<AtomicBool>,
    /// Set once the set in force holds every policy source (Policy objects
    /// listed and loaded); shared with the reload path.
    pub serving: Arc<AtomicBool>,
}

/// The admin routes.
pub(crate) fn router(state: Arc<AdminState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(|State(s): State<Arc<AdminState>>| async move {
                if !s.serving.load(Ordering::SeqCst) {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "policy objects not loaded yet\n",
                    )
                } else if s.ready.load(Ordering::SeqCst) {
                    (StatusCode::OK, "ok\n")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
                }
            }),
        )
        .route(
            "/metrics",
            get(|State(s): State<Arc<AdminState>>| async move {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    s.metrics
                        .render(s.engine.cache_entries(), s.engine.cache_weight().0),
                )
            }),
        )
        .with_state(state)
}
