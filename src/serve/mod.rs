//! `serve`: the TLS webhook listener, the plain admin listener, policy
//! reloads, certificate rotation and shutdown.
//!
//! [`run`] is the one entry point: the `serve` command binds the two
//! sockets and calls it, and tests call it in process on `127.0.0.1:0`.
//! Nothing here knows about command-line parsing.

mod admin;
mod deadline;
mod decision_log;
mod listener;
mod metrics;
mod reload;
mod shadow;
mod tls;
mod webhook;

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::engine::{CacheLimits, Engine, Exemptions};
use crate::policy::{self, SchemaBundle};
use crate::store::{self, ObjectStore, PolicySource};
use decision_log::DecisionLogger;
use metrics::Metrics;
use reload::ReloadConfig;
use tls::RotatingResolver;

pub use decision_log::DecisionLog;
pub use tls::CertPaths;

/// Large requests decided at once on the blocking pool.
const LARGE_DECISIONS: usize = 2;

/// Everything `serve` needs besides its two sockets.
#[derive(Clone, Debug)]
pub struct Config {
    /// Serving pair; `None`: the self-signed default in `cert_dir`.
    pub cert: Option<CertPaths>,
    pub cert_dir: PathBuf,
    /// Require client certificates signed by this CA.
    pub client_ca: Option<PathBuf>,
    /// With a client CA: only these subject CNs are served (empty: any).
    pub allowed_client_cns: Vec<String>,
    pub policies: PathBuf,
    /// `--shadow-policies`: decided on every request, never enforced.
    pub shadow_policies: Option<PathBuf>,
    /// Directory, Policy objects, or both.
    pub policy_source: PolicySource,
    /// Client configuration for Policy objects; `None`: in-cluster, then
    /// `$KUBECONFIG` or `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// Write Policy objects' status.
    pub policy_status: bool,
    /// `None`: the built-in schema.
    pub schema: Option<PathBuf>,
    /// Decision cache bounds (entries and bytes).
    pub cache: CacheLimits,
    pub max_body_bytes: usize,
    /// The same for AdmissionReviews.
    pub max_admission_body_bytes: usize,
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
    pub max_connections: usize,
    /// Requests handled at once; more get 429.
    pub max_in_flight_requests: usize,
    /// Request body bytes held at once; more get 429.
    pub max_in_flight_body_bytes: usize,
    pub shutdown_grace_period: Duration,
    pub policy_poll_interval: Duration,
    pub cert_poll_interval: Duration,
    pub reload_debounce: Duration,
    pub decision_log: DecisionLog,
    /// Decision records as JSON lines rather than text events.
    pub json_logs: bool,
    pub policy_metrics: bool,
    pub exemptions: Exemptions,
}

/// Why the server could not start: one line naming the flag or file.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The policy directory does not load.
    #[error("--policies {}: {source}", dir.display())]
    Policies {
        dir: PathBuf,
        #[source]
        source: policy::LoadError,
    },
    /// The schema does not load.
    #[error("{0}")]
    Schema(#[source] policy::LoadError),
    /// The Policy object client cannot be configured.
    #[error("{0}")]
    Objects(#[from] store::StoreError),
    /// Certificates or keys do not load.
    #[error("{0}")]
    Tls(#[from] tls::TlsError),
    /// A socket could not be used.
    #[error("{flag}: {source}")]
    Socket {
        flag: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// Loads the policies and certificates, then serves the webhook on
/// `listener` and the admin endpoints on `admin_listener` until `shutdown`
/// resolves; then `/readyz` turns 503, in-flight requests drain for the
/// grace period, and the admin listener closes last.
pub async fn run(
    listener: TcpListener,
    admin_listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let schema =
        Arc::new(SchemaBundle::load(config.schema.as_deref()).map_err(StartError::Schema)?);
    // With Policy objects, nothing is answered until they are listed and a
    // set holding them is loaded (`serving`); a bad directory still stops
    // the start here.
    let source = config.policy_source;
    let snapshot = {
        let (dir, schema) = (config.policies.clone(), Arc::clone(&schema));
        tokio::task::spawn_blocking(move || match source {
            PolicySource::Dir => policy::load(&dir, &schema, 1),
            PolicySource::Both => store::read_sources(Some(&dir), None)
                .or_else(|e| match e {
                    policy::LoadError::Empty(_) => Ok(Vec::new()),
                    other => Err(other),
                })
                .and_then(|files| policy::Snapshot::build(&files, &schema, 1)),
            PolicySource::Crd => policy::Snapshot::build(&[], &schema, 1),
        })
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
    let engine = Arc::new(Engine::new(
        snapshot,
        config.exemptions.clone(),
        config.cache,
    ));

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
    let live_tls = Arc::new(tls::LiveConfig::new(resolver, config.client_ca.clone())?);
    // Before the admin listener answers: a probe that sees /readyz also sees
    // the expiry metrics.
    let expiry: Arc<tls::ExpiryGauge> = {
        let metrics = Arc::clone(&metrics);
        Arc::new(move |name: &str, t: i64| {
            metrics.certificate_expiry.with_label_values(&[name]).set(t)
        })
    };
    tls::report_expiry(&cert_paths, config.client_ca.as_deref(), &*expiry);
    let socket_err = |flag| move |source| StartError::Socket { flag, source };
    let webhook_addr = listener
        .local_addr()
        .map_err(socket_err("--bind-address/--secure-port"))?;
    let admin_addr = admin_listener
        .local_addr()
        .map_err(socket_err("--metrics-bind-address"))?;

    // Background work (reloads, certificate polls) stops on this signal;
    // the listeners follow the shutdown sequence below.
    let (stop_tx, stop_rx) = watch::channel(false);
    let decision_log = DecisionLogger {
        level: config.decision_log,
        json: config.json_logs,
    };
    let (shadow, shadow_reloader) = match &config.shadow_policies {
        Some(dir) => {
            let reload = ReloadConfig {
                dir: dir.clone(),
                read_dir: true,
                objects: None,
                // The shadow set never decides whether the webhook serves.
                serving: Arc::new(AtomicBool::new(true)),
                schema: Arc::clone(&schema),
                poll_interval: config.policy_poll_interval,
                debounce: config.reload_debounce,
            };
            shadow::start(&metrics, decision_log, reload, stop_rx.clone())
                .await
                .unzip()
        }
        None => (None, None),
    };
    let ready = Arc::new(AtomicBool::new(true));
    let serving = Arc::new(AtomicBool::new(!source.reads_objects()));
    let (objects, objects_task) = if source.reads_objects() {
        let client = store::watch::client(config.kubeconfig.as_deref()).await?;
        let (o, task) = ObjectStore::spawn(
            client,
            Arc::clone(&schema),
            config.policy_status,
            stop_rx.clone(),
        );
        tracing::info!("watching Policy objects (cedar.k8s.aws/v1alpha1); not answering until they are listed and loaded");
        (Some(o), Some(task))
    } else {
        (None, None)
    };
    let app = Arc::new(webhook::AppState {
        engine: Arc::clone(&engine),
        metrics: Arc::clone(&metrics),
        max_body_bytes: config.max_body_bytes,
        max_admission_body_bytes: config.max_admission_body_bytes,
        request_timeout: config.request_timeout,
        decision_log,
        shadow,
        serving: Arc::clone(&serving),
        budget: webhook::Budget {
            requests: Arc::new(Semaphore::new(config.max_in_flight_requests.max(1))),
            body_kib: Arc::new(Semaphore::new(
                config.max_in_flight_body_bytes.div_ceil(1024).max(1),
            )),
            blocking: Arc::new(Semaphore::new(LARGE_DECISIONS)),
        },
    });
    let admin_state = Arc::new(admin::AdminState {
        engine: Arc::clone(&engine),
        metrics: Arc::clone(&metrics),
        ready: Arc::clone(&ready),
        serving: Arc::clone(&serving),
    });
    let reloader = reload::spawn(
        Arc::new(reload::Live {
            engine: Arc::clone(&engine),
            metrics: Arc::clone(&metrics),
        }),
        ReloadConfig {
            dir: config.policies.clone(),
            read_dir: source.reads_dir(),
            objects,
            serving,
            schema,
            poll_interval: config.policy_poll_interval,
            debounce: config.reload_debounce,
        },
        stop_rx.clone(),
    );
    let cert_watch = tokio::spawn(tls::watch_cert_files(
        cert_paths,
        Arc::clone(&live_tls),
        config.cert_poll_interval,
        expiry,
        stop_rx,
    ));
    // The admin listener answers /readyz, so it starts only once the
    // reloader's watch is in place: a change made as soon as the webhook
    // is ready is seen by the watcher, not first by the poll.
    let (admin_stop_tx, mut admin_stop_rx) = watch::channel(false);
    let admin_task = tokio::spawn(async move {
        let _ = axum::serve(admin_listener, admin::router(admin_state))
            .with_graceful_shutdown(async move {
                let _ = admin_stop_rx.changed().await;
            })
            .await;
    });
    tracing::info!(address = %webhook_addr, "webhook listening (TLS, h2 and http/1.1)");
    tracing::info!(address = %admin_addr, "admin listening (/metrics /healthz /readyz)");

    let limits = listener::Limits {
        max_connections: config.max_connections,
        header_read_timeout: config.header_read_timeout,
        shutdown_grace_period: config.shutdown_grace_period,
        allowed_client_cns: config.allowed_client_cns.clone(),
    };
    let ready_flag = Arc::clone(&ready);
    let shutdown = async move {
        shutdown.await;
        ready_flag.store(false, Ordering::SeqCst);
        tracing::info!("shutting down: not ready, draining in-flight requests");
    };
    listener::serve(
        listener,
        live_tls,
        webhook::router(app),
        Arc::clone(&metrics),
        limits,
        shutdown,
    )
    .await;
    let _ = stop_tx.send(true);
    let _ = admin_stop_tx.send(true);
    let _ = tokio::join!(reloader, cert_watch, admin_task);
    if let Some(r) = shadow_reloader {
        let _ = r.await;
    }
    if let Some(task) = objects_task {
        let _ = task.await;
    }
    Ok(())
}
