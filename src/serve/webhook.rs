//! The webhook's HTTP surface: `POST /authorize` (and `/v1/authorize`),
//! `POST /admit` (and `/v1/admit`), JSON errors for everything else.
//!
//! A thin shell around [`crate::engine::Engine::decide`] and
//! [`crate::engine::Engine::admit`]: read the body (bounded in size and
//! time), parse, decide, answer, record. Both endpoints share the limits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::decision_log::DecisionLogger;
use super::metrics::Metrics;
use crate::admission;
use crate::engine::Engine;
use crate::sar;

/// Requests bigger than this are decided on the blocking pool, so a large
/// one (thousands of groups) does not stall a runtime worker.
const INLINE_DECISION_BYTES: usize = 64 * 1024;

/// Body bytes are budgeted in units of this size.
const BUDGET_UNIT: usize = 1024;

/// How long a refused client should wait before retrying (the apiserver
/// retries 429s with backoff).
const RETRY_AFTER_SECONDS: &str = "1";

/// What the whole server may hold for requests at once. Beyond it a
/// request gets 429 with `Retry-After` rather than more memory.
pub(crate) struct Budget {
    /// One permit per request being handled (`--max-in-flight-requests`).
    pub requests: Arc<Semaphore>,
    /// One permit per KiB of request body held (`--max-in-flight-body-bytes`).
    pub body_kib: Arc<Semaphore>,
    /// Decisions running on the blocking pool at once. They keep running
    /// after a 408, so their number is what bounds their cost.
    pub blocking: Arc<Semaphore>,
}

/// Shared by every request handler; read-only after start.
pub(crate) struct AppState {
    pub engine: Arc<Engine>,
    pub metrics: Arc<Metrics>,
    pub max_body_bytes: usize,
    pub max_admission_body_bytes: usize,
    pub request_timeout: Duration,
    /// False until the set in force holds every policy source (Policy
    /// objects listed and loaded): before, answering from part of the
    /// sources could miss a `forbid`, so requests get 503 and the
    /// apiserver applies its failure policy.
    pub serving: Arc<std::sync::atomic::AtomicBool>,
    pub decision_log: DecisionLogger,
    /// `--shadow-policies`: where answered requests go to be decided again.
    pub shadow: Option<super::shadow::ShadowQueue>,
    pub budget: Budget,
}

fn too_busy(what: &str) -> Response {
    let mut r = json_error(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many requests in flight ({what}); retry shortly"),
    );
    r.headers_mut().insert(
        header::RETRY_AFTER,
        header::HeaderValue::from_static(RETRY_AFTER_SECONDS),
    );
    r
}

/// Why a body was not read.
enum BodyError {
    TooLarge,
    OverBudget,
    Read(String),
}

/// Reads the body within the size limit, taking budget permits as it
/// grows; the permits are held for as long as the body is.
async fn read_body(
    state: &AppState,
    body: Body,
    limit: usize,
) -> Result<(Bytes, OwnedSemaphorePermit), BodyError> {
    let mut body = body;
    let mut permit = Arc::clone(&state.budget.body_kib)
        .try_acquire_owned()
        .map_err(|_| BodyError::OverBudget)?;
    let mut held_kib = 1usize;
    let mut buf: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if buf.len() + data.len() > limit {
            return Err(BodyError::TooLarge);
        }
        let want_kib = (buf.len() + data.len()).div_ceil(BUDGET_UNIT).max(1);
        if want_kib > held_kib {
            let more = u32::try_from(want_kib - held_kib).map_err(|_| BodyError::TooLarge)?;
            let extra = Arc::clone(&state.budget.body_kib)
                .try_acquire_many_owned(more)
                .map_err(|_| BodyError::OverBudget)?;
            permit.merge(extra);
            held_kib = want_kib;
        }
        buf.extend_from_slice(&data);
    }
    Ok((Bytes::from(buf), permit))
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

/// Which review an endpoint answers.
#[derive(Clone, Copy)]
enum Endpoint {
    Authorize,
    Admit,
}

impl Endpoint {
    /// The body limit and the flag that sets it.
    fn body_limit(self, state: &AppState) -> (usize, &'static str) {
        match self {
            Endpoint::Authorize => (state.max_body_bytes, "--max-body-bytes"),
            Endpoint::Admit => (state.max_admission_body_bytes, "--max-admission-body-bytes"),
        }
    }
}

async fn authorize(State(state): State<Arc<AppState>>, request: Request<Body>) -> Response {
    handle(state, request, Endpoint::Authorize).await
}

async fn admit(State(state): State<Arc<AppState>>, request: Request<Body>) -> Response {
    handle(state, request, Endpoint::Admit).await
}

async fn handle(state: Arc<AppState>, request: Request<Body>, endpoint: Endpoint) -> Response {
    let timeout = state.request_timeout;
    let metrics = Arc::clone(&state.metrics);
    match tokio::time::timeout(timeout, handle_inner(state, request, endpoint)).await {
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

async fn handle_inner(
    state: Arc<AppState>,
    request: Request<Body>,
    endpoint: Endpoint,
) -> Response {
    if !state.serving.load(std::sync::atomic::Ordering::SeqCst) {
        state.count_error("not_loaded");
        drain(&state, request.into_body()).await;
        let mut r = json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "policy set not loaded yet (Policy objects not listed, or not loadable); see /readyz",
        );
        r.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from_static(RETRY_AFTER_SECONDS),
        );
        return r;
    }
    let Ok(_in_flight) = Arc::clone(&state.budget.requests).try_acquire_owned() else {
        state.count_error("too_many_requests");
        return too_busy("--max-in-flight-requests");
    };
    let (limit, flag) = endpoint.body_limit(&state);
    let (body, body_permit) = match read_body(&state, request.into_body(), limit).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            state.count_error("too_large");
            return json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body larger than {limit} bytes ({flag})"),
            );
        }
        Err(BodyError::OverBudget) => {
            state.count_error("too_many_requests");
            return too_busy("--max-in-flight-body-bytes");
        }
        Err(BodyError::Read(e)) => {
            state.count_error("malformed");
            return json_error(
                StatusCode::BAD_REQUEST,
                format!("reading request body: {e}"),
            );
        }
    };
    let started = Instant::now();
    if body.len() <= INLINE_DECISION_BYTES {
        return answer(&state, &body, started, endpoint);
    }
    // Waiting for a blocking slot counts against --request-timeout.
    let Ok(slot) = Arc::clone(&state.budget.blocking).acquire_owned().await else {
        return too_busy("large decisions");
    };
    let work = {
        let state = Arc::clone(&state);
        move || {
            let _held = (slot, body_permit);
            answer(&state, &body, started, endpoint)
        }
    };
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|_| json_error(StatusCode::BAD_REQUEST, "request could not be decided"))
}

fn answer(state: &AppState, body: &Bytes, started: Instant, endpoint: Endpoint) -> Response {
    match endpoint {
        Endpoint::Authorize => answer_sar(state, body, started),
        Endpoint::Admit => answer_admission(state, body, started),
    }
}

fn json_ok(body: impl Into<Body>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.into(),
    )
        .into_response()
}

fn answer_admission(state: &AppState, body: &Bytes, started: Instant) -> Response {
    let input = match admission::parse_review(body) {
        Ok(r) => r,
        Err(e) => {
            state.count_error("malformed");
            return json_error(StatusCode::BAD_REQUEST, e);
        }
    };
    // A Policy object that would not load is refused whoever sends it,
    // before and whatever Cedar's admission policies say.
    if let Some(why) = crate::store::admit::refusal(&input, &state.engine.snapshot().schema) {
        state
            .metrics
            .request_errors
            .with_label_values(&["invalid_policy"])
            .inc();
        return json_ok(input.response_json(Some(&why)));
    }
    let outcome = state.engine.admit(&input);
    let refused = (outcome.decision.verdict == crate::decision::Verdict::Denied)
        .then_some(outcome.decision.status.reason.as_str());
    let out = input.response_json(refused);
    let total = started.elapsed();
    state.metrics.record_admission(
        &outcome,
        admission::operation_name(&input.operation),
        total.as_secs_f64(),
    );
    state.decision_log.record_admission(&input, &outcome, total);
    // The answer is complete before the shadow sees the request, and
    // handing it over never waits.
    let response = json_ok(out);
    if let Some(shadow) = &state.shadow {
        shadow.admit(input, &outcome, total, body.len());
    }
    response
}

fn answer_sar(state: &AppState, body: &Bytes, started: Instant) -> Response {
    let answered = match state.engine.answer_review(body) {
        Ok(a) => a,
        Err(e) => {
            state.count_error("malformed");
            return json_error(StatusCode::BAD_REQUEST, e);
        }
    };
    let outcome = &answered.outcome;
    let total = started.elapsed();
    state.metrics.record(outcome, total.as_secs_f64());
    let logged = state.decision_log.wants(outcome.decision.verdict);
    if !logged && state.shadow.is_none() {
        return json_ok(answered.response);
    }
    // An answer from the cache was not parsed; the log and the shadow
    // need the request. The body parsed before, so it parses again.
    let request = match answered.review {
        Some(review) => review.request,
        None => match sar::parse_review(body) {
            Ok(review) => review.request,
            Err(_) => return json_ok(answered.response),
        },
    };
    if logged {
        state.decision_log.record(&request, outcome, total);
    }
    // The answer is complete before the shadow sees the request, and
    // handing it over never waits.
    let response = json_ok(answered.response);
    if let Some(shadow) = &state.shadow {
        shadow.authorize(request, outcome, total, body.len());
    }
    response
}

/// Reads and drops what is left of a request body, up to the body limit
/// and the request timeout. An HTTP/2 stream answered while its body is
/// still arriving is reset by hyper when the body is dropped, and some
/// clients (curl, for one) then report no response at all; reading the
/// body first lets every client see the answer.
async fn drain(state: &AppState, body: Body) {
    let limit = state.max_body_bytes;
    let _ = tokio::time::timeout(state.request_timeout, axum::body::to_bytes(body, limit)).await;
}

async fn not_found(State(state): State<Arc<AppState>>, request: Request<Body>) -> Response {
    state.count_error("not_found");
    drain(&state, request.into_body()).await;
    json_error(
        StatusCode::NOT_FOUND,
        "not found: POST SubjectAccessReviews to /authorize, AdmissionReviews to /admit",
    )
}

async fn method_not_allowed(
    State(state): State<Arc<AppState>>,
    request: Request<Body>,
) -> Response {
    state.count_error("method_not_allowed");
    drain(&state, request.into_body()).await;
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
    let admit_route = post(admit).fallback(method_not_allowed);
    Router::new()
        .route("/authorize", route.clone())
        .route("/v1/authorize", route)
        .route("/admit", admit_route.clone())
        .route("/v1/admit", admit_route)
        .fallback(not_found)
        .with_state(state)
}
