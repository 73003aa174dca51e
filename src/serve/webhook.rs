//! The webhook's HTTP surface: `POST /authorize` (and `/v1/authorize`),
//! JSON errors for everything else.
//!
//! A thin shell around [`crate::engine::Engine::decide`]: read the body
//! (bounded in size and time), parse, decide, answer, record.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

use super::decision_log::DecisionLogger;
use super::metrics::Metrics;
use crate::engine::Engine;
use crate::sar;

/// Requests bigger than this are decided on the blocking pool, so a
/// pathological one (100,000 groups) does not stall a runtime worker.
const INLINE_DECISION_BYTES: usize = 64 * 1024;

/// Shared by every request handler; read-only after start.
pub(crate) struct AppState {
    pub engine: Arc<Engine>,
    pub metrics: Arc<Metrics>,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub decision_log: DecisionLogger,
}

pub(crate) fn json_error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    let body = serde_json::json!({ "error": message.to_string() });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

impl AppState {
    fn count_error(&self, kind: &str) {
        self.metrics.request_errors.with_label_values(&[kind]).inc();
    }
}

async fn authorize(State(state): State<Arc<AppState>>, request: Request<Body>) -> Response {
    let timeout = state.request_timeout;
    let metrics = Arc::clone(&state.metrics);
    match tokio::time::timeout(timeout, authorize_inner(state, request)).await {
        Ok(response) => response,
        Err(_) => {
            metrics.request_errors.with_label_values(&["timeout"]).inc();
            json_error(
                StatusCode::REQUEST_TIMEOUT,
                "request not completed within --request-timeout",
            )
        }
    }
}

async fn authorize_inner(state: Arc<AppState>, request: Request<Body>) -> Response {
    let body = match axum::body::to_bytes(request.into_body(), state.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            return if too_large {
                state.count_error("too_large");
                json_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "request body larger than {} bytes (--max-body-bytes)",
                        state.max_body_bytes
                    ),
                )
            } else {
                state.count_error("malformed");
                json_error(
                    StatusCode::BAD_REQUEST,
                    format!("reading request body: {e}"),
                )
            };
        }
    };
    let started = Instant::now();
    let large = body.len() > INLINE_DECISION_BYTES;
    let work = {
        let state = Arc::clone(&state);
        move || answer(&state, &body, started)
    };
    if large {
        tokio::task::spawn_blocking(work)
            .await
            .unwrap_or_else(|_| json_error(StatusCode::BAD_REQUEST, "request could not be decided"))
    } else {
        work()
    }
}

fn answer(state: &AppState, body: &Bytes, started: Instant) -> Response {
    let review = match sar::parse_review(body) {
        Ok(r) => r,
        Err(e) => {
            state.count_error("malformed");
            return json_error(StatusCode::BAD_REQUEST, e);
        }
    };
    let outcome = state.engine.decide(&review.request);
    let out = sar::response_json(review.api_version, &outcome.decision.status);
    let total = started.elapsed();
    state.metrics.record(&outcome, total.as_secs_f64());
    state.decision_log.record(&review.request, &outcome, total);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        out,
    )
        .into_response()
}

async fn not_found(State(state): State<Arc<AppState>>) -> Response {
    state.count_error("not_found");
    json_error(
        StatusCode::NOT_FOUND,
        "not found: POST SubjectAccessReviews to /authorize",
    )
}

async fn method_not_allowed(State(state): State<Arc<AppState>>) -> Response {
    state.count_error("method_not_allowed");
    let mut r = json_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed: use POST",
    );
    r.headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
    r
}

/// The webhook's routes.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    let route = post(authorize).fallback(method_not_allowed);
    Router::new()
        .route("/authorize", route.clone())
        .route("/v1/authorize", route)
        .fallback(not_found)
        .with_state(state)
}
