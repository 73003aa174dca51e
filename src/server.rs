//! `cedar-authorizer serve`: the TLS webhook listener, the plain admin
//! listener, reloads and shutdown.
//!
//! The webhook is a thin shell around [`Engine::decide`]: accept (bounded
//! by `--max-connections`), TLS handshake (bounded in time, client
//! certificate checked), HTTP/1.1 or HTTP/2 by ALPN (header-read timeout),
//! route, read the body (bounded in size and time), decide, answer.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::cli::ServeArgs;
use crate::deadline::FirstByteDeadline;
use crate::engine::{Engine, Outcome, Verdict};
use crate::entities::resource_path;
use crate::metrics::Metrics;
use crate::policy::{self, SchemaBundle};
use crate::reload::{self, ReloadConfig};
use crate::sar::{self, Attributes};
use crate::tls::{self, CertPaths, RotatingResolver};

/// Which answers get a decision log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DecisionLog {
    None,
    Denied,
    All,
}

/// Shared by every request handler.
struct AppState {
    engine: Arc<Engine>,
    metrics: Arc<Metrics>,
    max_body_bytes: usize,
    request_timeout: Duration,
    decision_log: DecisionLog,
}

fn json_error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    let body = serde_json::json!({ "error": message.to_string() });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Requests bigger than this are decided on the blocking pool, so a
/// pathological one (100,000 groups) does not stall a runtime worker.
const INLINE_DECISION_BYTES: usize = 64 * 1024;

async fn authorize(State(state): State<Arc<AppState>>, request: Request<Body>) -> Response {
    let metrics = Arc::clone(&state.metrics);
    match tokio::time::timeout(state.request_timeout, authorize_inner(state, request)).await {
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
                state
                    .metrics
                    .request_errors
                    .with_label_values(&["too_large"])
                    .inc();
                json_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "request body larger than {} bytes (--max-body-bytes)",
                        state.max_body_bytes
                    ),
                )
            } else {
                state
                    .metrics
                    .request_errors
                    .with_label_values(&["malformed"])
                    .inc();
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
            state
                .metrics
                .request_errors
                .with_label_values(&["malformed"])
                .inc();
            return json_error(StatusCode::BAD_REQUEST, e);
        }
    };
    let outcome = state.engine.decide(&review.request);
    let out = sar::response_json(review.api_version, &outcome.decision.status);
    let total = started.elapsed();
    state.metrics.record(&outcome, total.as_secs_f64());
    log_decision(state.decision_log, &review.request, &outcome, total);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        out,
    )
        .into_response()
}

/// One structured event per answer. `extra` values are never logged (EKS
/// puts access key ids there); only their keys are.
fn log_decision(level: DecisionLog, req: &sar::AccessRequest, outcome: &Outcome, total: Duration) {
    let d = &outcome.decision;
    let wanted = match level {
        DecisionLog::None => false,
        DecisionLog::Denied => d.verdict == Verdict::Denied,
        DecisionLog::All => true,
    };
    if !wanted {
        return;
    }
    let (verb, path) = match &req.attributes {
        Attributes::Resource(r) => (r.verb.as_str(), resource_path(r)),
        Attributes::NonResource(n) => (n.verb.as_str(), n.path.clone()),
    };
    let extra_keys: Vec<&str> = req.extra.keys().map(String::as_str).collect();
    tracing::info!(
        target: "cedar_authorizer::decision",
        user = %req.user,
        groups = ?req.groups,
        extra_keys = ?extra_keys,
        verb,
        path = %path,
        decision = d.verdict.as_str(),
        policies = ?d.policies,
        exempt = d.exempt,
        cache_hit = outcome.cache_hit,
        generation = outcome.generation,
        latency_us = total.as_micros() as u64,
        evaluation_error = %d.status.evaluation_error,
        "decision"
    );
}

async fn not_found(State(state): State<Arc<AppState>>) -> Response {
    state
        .metrics
        .request_errors
        .with_label_values(&["not_found"])
        .inc();
    json_error(
        StatusCode::NOT_FOUND,
        "not found: POST SubjectAccessReviews to /authorize",
    )
}

async fn method_not_allowed(State(state): State<Arc<AppState>>) -> Response {
    state
        .metrics
        .request_errors
        .with_label_values(&["method_not_allowed"])
        .inc();
    let mut r = json_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed: use POST",
    );
    r.headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
    r
}

fn webhook_router(state: Arc<AppState>) -> Router {
    let route = post(authorize).fallback(method_not_allowed);
    Router::new()
        .route("/authorize", route.clone())
        .route("/v1/authorize", route)
        .fallback(not_found)
        .with_state(state)
}

/// State of the admin listener.
struct AdminState {
    engine: Arc<Engine>,
    metrics: Arc<Metrics>,
    /// Cleared when shutdown starts.
    ready: Arc<AtomicBool>,
}

fn admin_router(state: Arc<AdminState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(|State(s): State<Arc<AdminState>>| async move {
                if s.ready.load(Ordering::SeqCst) {
                    (StatusCode::OK, "ok\n")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
                }
            }),
        )
        .route(
            "/metrics",
            get(|State(s): State<Arc<AdminState>>| async move {
                let entries = s.engine.snapshot().cache.as_ref().map_or(0, |c| c.len());
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    s.metrics.render(entries),
                )
            }),
        )
        .with_state(state)
}

/// Everything `serve` needs, from flags.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub cert: Option<CertPaths>,
    pub cert_dir: PathBuf,
    pub client_ca: Option<PathBuf>,
    pub allowed_client_cns: Vec<String>,
    pub policies: PathBuf,
    pub schema: Option<PathBuf>,
    pub cache_size: usize,
    pub max_body_bytes: usize,
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_grace_period: Duration,
    pub policy_poll_interval: Duration,
    pub cert_poll_interval: Duration,
    pub reload_debounce: Duration,
    pub decision_log: DecisionLog,
    pub policy_metrics: bool,
    pub exemptions: crate::engine::Exemptions,
}

/// Why the server could not start: one line naming the flag or file.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("--policies {}: {source}", dir.display())]
    Policies {
        dir: PathBuf,
        source: policy::LoadError,
    },
    #[error("{0}")]
    Schema(policy::LoadError),
    #[error("{0}")]
    Tls(#[from] tls::TlsError),
    #[error("{flag} {addr}: {source}")]
    Bind {
        flag: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A started server: its addresses, and the handle that stops it.
pub struct Running {
    pub webhook_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub engine: Arc<Engine>,
    pub metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    shutdown: watch::Sender<bool>,
    tasks: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Starts a graceful shutdown and waits for it: not ready, stop
    /// accepting, let in-flight requests finish within the grace period.
    pub async fn shutdown(self) {
        self.ready.store(false, Ordering::SeqCst);
        let _ = self.shutdown.send(true);
        let _ = self.tasks.await;
    }
}

/// Loads everything, binds both listeners and starts serving.
pub async fn start(config: ServeConfig) -> Result<Running, StartError> {
    let schema =
        Arc::new(SchemaBundle::load(config.schema.as_deref()).map_err(StartError::Schema)?);
    let snapshot = {
        let (dir, schema, cache) = (
            config.policies.clone(),
            Arc::clone(&schema),
            config.cache_size,
        );
        tokio::task::spawn_blocking(move || policy::load(&dir, &schema, 1, cache))
            .await
            .expect("policy load does not panic")
    }
    .map_err(|source| StartError::Policies {
        dir: config.policies.clone(),
        source,
    })?;
    for w in &snapshot.warnings {
        tracing::warn!(diagnostic = %w, "policy validation warning");
    }
    let metrics = Arc::new(Metrics::new(config.policy_metrics));
    metrics.policy_set_installed(&snapshot);
    let (permits, forbids) = snapshot.effect_counts();
    tracing::info!(generation = 1, permits, forbids, dir = %config.policies.display(), "policy set loaded");
    let engine = Arc::new(Engine::new(snapshot, config.exemptions.clone()));

    let cert_paths = match &config.cert {
        Some(p) => p.clone(),
        None => {
            let p = tls::default_cert(&config.cert_dir)?;
            tracing::info!(
                cert = %p.cert.display(),
                ca = %config.cert_dir.join(crate::certs::CA_CERT).display(),
                "no --tls-cert-file given: serving the self-signed certificate; point a kubeconfig's certificate-authority at the CA"
            );
            p
        }
    };
    let resolver = Arc::new(RotatingResolver::new(tls::load_certified_key(&cert_paths)?));
    let tls_config = tls::server_config(Arc::clone(&resolver), config.client_ca.as_deref())?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls_config));

    let (listener, webhook_addr) = bind(config.listen, "--bind-address/--secure-port").await?;
    let (admin_listener, admin_addr) = bind(config.admin_listen, "--metrics-bind-address").await?;

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let ready = Arc::new(AtomicBool::new(true));

    let app = Arc::new(AppState {
        engine: Arc::clone(&engine),
        metrics: Arc::clone(&metrics),
        max_body_bytes: config.max_body_bytes,
        request_timeout: config.request_timeout,
        decision_log: config.decision_log,
    });
    let admin = Arc::new(AdminState {
        engine: Arc::clone(&engine),
        metrics: Arc::clone(&metrics),
        ready: Arc::clone(&ready),
    });

    let mut tasks = tokio::task::JoinSet::new();
    {
        let mut rx = shutdown_rx.clone();
        tasks.spawn(async move {
            let _ = axum::serve(admin_listener, admin_router(admin))
                .with_graceful_shutdown(async move {
                    let _ = rx.changed().await;
                })
                .await;
        });
    }
    let reloader = reload::spawn(
        Arc::clone(&engine),
        Arc::clone(&metrics),
        ReloadConfig {
            dir: config.policies.clone(),
            schema,
            cache_size: config.cache_size,
            poll_interval: config.policy_poll_interval,
            debounce: config.reload_debounce,
        },
        shutdown_rx.clone(),
    );
    tasks.spawn(async move {
        let _ = reloader.await;
    });
    tasks.spawn(tls::watch_cert_files(
        cert_paths,
        resolver,
        config.cert_poll_interval,
        shutdown_rx.clone(),
    ));
    tasks.spawn(accept_loop(
        listener,
        acceptor,
        webhook_router(app),
        Arc::clone(&metrics),
        config.clone(),
        shutdown_rx,
    ));
    tracing::info!(address = %webhook_addr, "webhook listening (TLS, h2 and http/1.1)");
    tracing::info!(address = %admin_addr, "admin listening (/metrics /healthz /readyz)");

    Ok(Running {
        webhook_addr,
        admin_addr,
        engine,
        metrics,
        ready,
        shutdown: shutdown_tx,
        tasks: tokio::spawn(async move { while tasks.join_next().await.is_some() {} }),
    })
}

/// Binds a listener; errors name the flag that chose the address.
async fn bind(
    addr: SocketAddr,
    flag: &'static str,
) -> Result<(TcpListener, SocketAddr), StartError> {
    let err = |source| StartError::Bind { flag, addr, source };
    let listener = TcpListener::bind(addr).await.map_err(err)?;
    let local = listener.local_addr().map_err(err)?;
    Ok((listener, local))
}

/// A TLS handshake that has not finished in this time is abandoned, so
/// port scanners and stuck clients cannot hold connection slots.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

async fn accept_loop(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    router: Router,
    metrics: Arc<Metrics>,
    config: ServeConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let allowed_cns = Arc::new(config.allowed_client_cns.clone());
    loop {
        // Wait for a free slot before accepting: excess connections queue
        // in the kernel's backlog instead of being dropped.
        let permit = tokio::select! {
            p = Arc::clone(&slots).acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let metrics = Arc::clone(&metrics);
        let allowed_cns = Arc::clone(&allowed_cns);
        let service = TowerToHyperService::new(router.clone());
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let header_read_timeout = config.header_read_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    metrics.tls_handshake_failures.inc();
                    tracing::debug!(%peer, error = %e, "tls handshake failed");
                    return;
                }
                Err(_) => {
                    metrics.tls_handshake_failures.inc();
                    tracing::debug!(%peer, "tls handshake timed out");
                    return;
                }
            };
            if !allowed_cns.is_empty() {
                let cn = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(|c| tls::common_name(c));
                if !cn.as_ref().is_some_and(|cn| allowed_cns.contains(cn)) {
                    metrics.tls_handshake_failures.inc();
                    tracing::warn!(%peer, client_cn = ?cn, "client certificate subject not in --allowed-client-cn; connection closed");
                    return;
                }
            }
            let io = FirstByteDeadline::new(tls, header_read_timeout);
            let conn = builder.serve_connection(TokioIo::new(io), service);
            let _ = watcher.watch(conn.into_owned()).await;
        });
    }
    drop(listener);
    if tokio::time::timeout(config.shutdown_grace_period, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("grace period over; closing connections still open");
    }
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        let _ = builder.json().flatten_event(true).try_init();
    } else {
        let _ = builder.try_init();
    }
}

/// Entry point of `serve`: returns the process exit code.
pub fn main(args: ServeArgs) -> i32 {
    init_logging(&args.log_format);
    let config = match args.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return 1;
        }
    };
    runtime.block_on(async move {
        let running = match start(config).await {
            Ok(r) => r,
            Err(e) => {
                if let StartError::Policies {
                    source: policy::LoadError::Invalid(diags),
                    dir,
                } = &e
                {
                    eprintln!(
                        "error: --policies {}: the policy set does not load",
                        dir.display()
                    );
                    for d in diags {
                        eprintln!("{}", d.render());
                    }
                } else {
                    eprintln!("error: {e}");
                }
                return 1;
            }
        };
        wait_for_signal().await;
        tracing::info!("shutting down: not ready, draining in-flight requests");
        let drained = running.shutdown();
        tokio::select! {
            _ = drained => {
                tracing::info!("shut down cleanly");
                0
            }
            _ = wait_for_signal() => {
                tracing::warn!("second signal: exiting without waiting");
                0
            }
        }
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
