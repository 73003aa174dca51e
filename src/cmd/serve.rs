//! `serve`: flags to [`crate::serve::Config`], then the process around
//! [`crate::serve::run`]: logging, the runtime, the two sockets, signals
//! and exit codes.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{parse_duration, ExemptArgs, PolicyArgs};
use crate::serve::{self, DecisionLog, StartError};
use crate::store::PolicySource;

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub exempt: ExemptArgs,
    /// A second policy directory, reloaded like --policies, decided on
    /// every request after the answer and never enforced: divergences are
    /// counted (cedar_authorizer_shadow_decisions_total) and logged.
    #[arg(long, value_name = "DIR")]
    pub shadow_policies: Option<PathBuf>,
    /// Where policies come from: `dir` (--policies), `crd` (cedar.k8s.aws
    /// Policy objects) or `both`, merged into one set.
    #[arg(long, default_value = "dir", value_parser = clap::builder::ValueParser::new(str::parse::<PolicySource>))]
    pub policy_source: PolicySource,
    /// With --policy-source crd|both: kubeconfig for reading Policy
    /// objects; without it, the in-cluster configuration, then $KUBECONFIG
    /// or ~/.kube/config.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// With --policy-source crd|both: write each Policy object's status
    /// (Ready, observedGeneration, policies).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub policy_status: bool,
    /// Address of the webhook listener.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_address: IpAddr,
    /// Webhook port (TLS only); 0 picks a free port.
    #[arg(long, default_value_t = 10288)]
    pub secure_port: u16,
    /// PEM serving certificate (chain); re-read when the file changes.
    #[arg(long, requires = "tls_private_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of the serving certificate.
    #[arg(long, requires = "tls_cert_file")]
    pub tls_private_key_file: Option<PathBuf>,
    /// With no --tls-cert-file: where the self-signed certificate and its CA
    /// are written on first start, and reused after.
    #[arg(long, default_value = "./.cedar-authorizer/certs")]
    pub cert_dir: PathBuf,
    /// Require client certificates signed by this CA (the apiserver's).
    #[arg(long)]
    pub client_ca_file: Option<PathBuf>,
    /// With --client-ca-file: serve only clients whose certificate subject
    /// CN is one of these (repeatable).
    #[arg(
        long = "allowed-client-cn",
        value_name = "CN",
        requires = "client_ca_file"
    )]
    pub allowed_client_cns: Vec<String>,
    /// Plain-HTTP admin listener: /metrics, /healthz, /readyz.
    #[arg(long, default_value = "127.0.0.1:10289")]
    pub metrics_bind_address: SocketAddr,
    /// Decision cache entries; 0 disables the cache.
    #[arg(long, default_value_t = 65536)]
    pub cache_size: usize,
    /// Bound on the decision cache's memory (approximate bytes of cached
    /// requests and answers); sized for the static pod's 256 MiB limit.
    #[arg(long, default_value_t = crate::engine::DEFAULT_CACHE_MAX_BYTES)]
    pub cache_max_bytes: u64,
    /// Log format: `text` or `json`.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Which decisions are logged.
    #[arg(long, default_value = "denied", value_parser = clap::builder::ValueParser::new(str::parse::<DecisionLog>))]
    pub decision_log: DecisionLog,
    /// Count decisions per determining policy id
    /// (cedar_authorizer_policy_decisions_total).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub policy_metrics: bool,
    /// Largest accepted SubjectAccessReview body; larger ones get 413.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Largest accepted AdmissionReview body (/admit); larger ones get 413.
    /// An update carries the object and its old version, each up to the
    /// apiserver's 3 MiB request limit: a review the apiserver can send must
    /// fit, or the webhook's failurePolicy (Ignore) would admit it unread.
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    pub max_admission_body_bytes: usize,
    /// Time a client has to send the request headers (HTTP/1.1).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,
    /// Time a request has, from headers to answer.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Concurrent connections; more wait in the listen backlog.
    #[arg(long, default_value_t = 1024)]
    pub max_connections: usize,
    /// Requests handled at once across all connections; more get 429 with
    /// Retry-After, which the apiserver retries.
    #[arg(long, default_value_t = 1024)]
    pub max_in_flight_requests: usize,
    /// Request body bytes held at once across all requests; more get 429.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    pub max_in_flight_body_bytes: usize,
    /// On SIGTERM/SIGINT, how long in-flight requests may take to finish.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace_period: Duration,
    /// Re-read the policy directory this often even without file events.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub policy_poll_interval: Duration,
    /// Quiet time after a file event before reloading (bursts become one load).
    #[arg(long, default_value = "200ms", value_parser = parse_duration)]
    pub reload_debounce: Duration,
    /// Re-read the serving certificate files this often.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub cert_poll_interval: Duration,
}

impl ServeArgs {
    /// The server configuration these flags describe.
    pub fn config(&self) -> Result<serve::Config, String> {
        if !self.policy.policy_objects.is_empty() {
            return Err(
                "--policy-objects is for the offline commands; serve reads Policy objects from the cluster (--policy-source crd|both)".into(),
            );
        }
        if self.policy_poll_interval.is_zero() || self.cert_poll_interval.is_zero() {
            return Err("--policy-poll-interval and --cert-poll-interval must be > 0".into());
        }
        Ok(serve::Config {
            cert: match (&self.tls_cert_file, &self.tls_private_key_file) {
                (Some(cert), Some(key)) => Some(serve::CertPaths {
                    cert: cert.clone(),
                    key: key.clone(),
                }),
                _ => None,
            },
            cert_dir: self.cert_dir.clone(),
            client_ca: self.client_ca_file.clone(),
            allowed_client_cns: self.allowed_client_cns.clone(),
            policies: self.policy.policies.clone(),
            shadow_policies: self.shadow_policies.clone(),
            policy_source: self.policy_source,
            kubeconfig: self.kubeconfig.clone(),
            policy_status: self.policy_status,
            schema: self.policy.schema.clone(),
            cache: crate::engine::CacheLimits {
                entries: self.cache_size,
                max_bytes: self.cache_max_bytes,
            },
            max_body_bytes: self.max_body_bytes,
            max_admission_body_bytes: self.max_admission_body_bytes,
            header_read_timeout: self.header_read_timeout,
            request_timeout: self.request_timeout,
            max_connections: self.max_connections,
            max_in_flight_requests: self.max_in_flight_requests,
            max_in_flight_body_bytes: self.max_in_flight_body_bytes,
            shutdown_grace_period: self.shutdown_grace_period,
            policy_poll_interval: self.policy_poll_interval,
            cert_poll_interval: self.cert_poll_interval,
            reload_debounce: self.reload_debounce,
            decision_log: self.decision_log,
            json_logs: self.log_format == "json",
            policy_metrics: self.policy_metrics,
            exemptions: self.exempt.exemptions(),
        })
    }

    /// The webhook and admin addresses.
    pub fn addresses(&self) -> (SocketAddr, SocketAddr) {
        (
            SocketAddr::new(self.bind_address, self.secure_port),
            self.metrics_bind_address,
        )
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

/// Binds a listener; the error names the flag and address.
async fn bind(addr: SocketAddr, flag: &str) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("{flag} {addr}: {e}"))
}

fn report(e: &StartError) {
    match e {
        StartError::Policies {
            source: crate::policy::LoadError::Invalid(diags),
            dir,
        } => {
            eprintln!(
                "error: --policies {}: the policy set does not load",
                dir.display()
            );
            for d in diags {
                eprintln!("{}", d.render());
            }
        }
        other => eprintln!("error: {other}"),
    }
}

/// Entry point of `serve`: returns the process exit code. A first SIGTERM
/// or SIGINT drains; a second one during the drain exits at once with 1.
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
    let (webhook_addr, admin_addr) = args.addresses();
    runtime.block_on(async move {
        let sockets = async {
            Ok::<_, String>((
                bind(webhook_addr, "--bind-address/--secure-port").await?,
                bind(admin_addr, "--metrics-bind-address").await?,
            ))
        };
        let (listener, admin_listener) = match sockets.await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return 1;
            }
        };
        let (first_tx, first_rx) = tokio::sync::oneshot::channel::<()>();
        let mut stop = StopSignals::listen();
        let signals = tokio::spawn(async move {
            stop.next().await;
            let _ = first_tx.send(());
            stop.next().await;
        });
        let server = serve::run(listener, admin_listener, config, async {
            let _ = first_rx.await;
        });
        tokio::pin!(server);
        tokio::select! {
            result = &mut server => match result {
                Ok(()) => {
                    tracing::info!("shut down cleanly");
                    0
                }
                Err(e) => {
                    report(&e);
                    1
                }
            },
            _ = signals => {
                tracing::warn!("second signal: exiting without waiting for the drain");
                1
            }
        }
    })
}

/// SIGTERM and SIGINT (Ctrl-C), listened to from creation on: one that
/// arrives while nothing waits is kept for the next wait. (Listening
/// afresh for each wait would lose a second signal sent just as the
/// drain begins.)
struct StopSignals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            StopSignals {
                term: signal(SignalKind::terminate()).ok(),
                interrupt: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        StopSignals {}
    }

    /// Waits for the next signal.
    async fn next(&mut self) {
        #[cfg(unix)]
        {
            async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                () = recv(&mut self.term) => {}
                () = recv(&mut self.interrupt) => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}
