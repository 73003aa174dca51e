//! Command-line definitions for every subcommand (docs/interface in the
//! README). Names follow kube-apiserver's flags where one exists.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// A Kubernetes authorization webhook that decides requests with Cedar policies.
#[derive(Debug, Parser)]
#[command(name = "cedar-authorizer", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the webhook.
    Serve(Box<crate::cli::ServeArgs>),
    /// Parse and strict-validate the policy set.
    Validate(ValidateArgs),
    /// Evaluate one SubjectAccessReview offline, exactly as the server would.
    Check(CheckArgs),
    /// Print the built-in Cedar schema.
    Schema,
    /// Write a CA, a serving certificate and an apiserver client certificate.
    Certs(CertsArgs),
    /// Print the webhook kubeconfig the apiserver reads.
    Kubeconfig(KubeconfigArgs),
    /// Run policy test files (YAML cases: a request and the decision expected).
    Test(TestArgs),
    /// Format .cedar files with Cedar's formatter.
    Fmt(FmtArgs),
    /// Convert Kubernetes RBAC roles and bindings to Cedar policies.
    ConvertRbac(ConvertRbacArgs),
}

#[derive(Debug, Args)]
pub struct TestArgs {
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub exempt: ExemptArgs,
    /// Also write the results as JUnit XML to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Test files, or directories searched recursively for *.yaml and *.yml.
    #[arg(required = true, value_name = "FILES_OR_DIRS")]
    pub tests: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct FmtArgs {
    /// Change nothing; list the files that would change and exit 1 if any.
    #[arg(long)]
    pub check: bool,
    /// .cedar files, or directories searched recursively.
    #[arg(default_value = "./policies")]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ConvertRbacArgs {
    /// Write one .cedar file per binding into this directory instead of
    /// printing everything on stdout.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Cedar schema whose actions the policies may name; the built-in one
    /// when not given.
    #[arg(long)]
    pub schema: Option<PathBuf>,
    /// RBAC YAML files (multi-document or List); `-` for stdin.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Directory to write the PEM files into.
    #[arg(long)]
    pub out: PathBuf,
    /// DNS names and IP addresses of the serving certificate.
    #[arg(long, value_delimiter = ',', default_value = "localhost,127.0.0.1")]
    pub hosts: Vec<String>,
    /// Subject CN of the apiserver's client certificate.
    #[arg(long, default_value = "system:apiserver")]
    pub client_cn: String,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct KubeconfigArgs {
    /// Webhook URL, path included, e.g. https://127.0.0.1:10288/authorize.
    #[arg(long)]
    pub server: String,
    /// CA that signed the webhook's serving certificate.
    #[arg(long)]
    pub ca: PathBuf,
    /// The apiserver's client certificate.
    #[arg(long)]
    pub client_cert: PathBuf,
    /// The apiserver's client key.
    #[arg(long)]
    pub client_key: PathBuf,
}

/// Where the policies and the schema come from.
#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    /// Policy directory, read recursively (`*.cedar`, sorted).
    #[arg(long, default_value = "./policies")]
    pub policies: PathBuf,
    /// Cedar schema file; the built-in `k8s` schema when not given.
    #[arg(long)]
    pub schema: Option<PathBuf>,
}

/// Which principals get no opinion without evaluation.
#[derive(Debug, Clone, Args)]
pub struct ExemptArgs {
    /// Also exempt this username (repeatable).
    #[arg(long = "exempt-user", value_name = "NAME")]
    pub exempt_users: Vec<String>,
    /// Do not exempt `system:` control-plane users (everything is evaluated).
    #[arg(long)]
    pub no_default_exemptions: bool,
}

impl ExemptArgs {
    /// The exemption rules these flags describe.
    pub fn exemptions(&self) -> crate::engine::Exemptions {
        crate::engine::Exemptions {
            control_plane: !self.no_default_exemptions,
            users: self.exempt_users.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// `text` for people, `json` for editors and CI annotations.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub exempt: ExemptArgs,
    /// Also show the principal, action, resource, entities and determining
    /// policies (on stderr, so stdout stays the response JSON).
    #[arg(long)]
    pub explain: bool,
    /// SubjectAccessReview JSON file, or `-` for stdin.
    pub sar: PathBuf,
}

/// Parses `500ms`, `5s`, `2m`, `1h` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 500ms, 5s, 2m"))?;
    let seconds = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("invalid duration unit {unit:?}: use ms, s, m or h")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub exempt: ExemptArgs,
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
    /// Log format: `text` or `json`.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Which decisions are logged.
    #[arg(long, value_enum, default_value = "denied")]
    pub decision_log: crate::server::DecisionLog,
    /// Count decisions per determining policy id
    /// (cedar_authorizer_policy_decisions_total).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub policy_metrics: bool,
    /// Largest accepted request body; larger ones get 413.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Time a client has to send the request headers (HTTP/1.1).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,
    /// Time a request has, from headers to answer.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Concurrent connections; more wait in the listen backlog.
    #[arg(long, default_value_t = 1024)]
    pub max_connections: usize,
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
    pub fn config(&self) -> Result<crate::server::ServeConfig, String> {
        if self.policy_poll_interval.is_zero() || self.cert_poll_interval.is_zero() {
            return Err("--policy-poll-interval and --cert-poll-interval must be > 0".into());
        }
        Ok(crate::server::ServeConfig {
            listen: SocketAddr::new(self.bind_address, self.secure_port),
            admin_listen: self.metrics_bind_address,
            cert: match (&self.tls_cert_file, &self.tls_private_key_file) {
                (Some(cert), Some(key)) => Some(crate::tls::CertPaths {
                    cert: cert.clone(),
                    key: key.clone(),
                }),
                _ => None,
            },
            cert_dir: self.cert_dir.clone(),
            client_ca: self.client_ca_file.clone(),
            allowed_client_cns: self.allowed_client_cns.clone(),
            policies: self.policy.policies.clone(),
            schema: self.policy.schema.clone(),
            cache_size: self.cache_size,
            max_body_bytes: self.max_body_bytes,
            header_read_timeout: self.header_read_timeout,
            request_timeout: self.request_timeout,
            max_connections: self.max_connections,
            shutdown_grace_period: self.shutdown_grace_period,
            policy_poll_interval: self.policy_poll_interval,
            cert_poll_interval: self.cert_poll_interval,
            reload_debounce: self.reload_debounce,
            decision_log: self.decision_log,
            policy_metrics: self.policy_metrics,
            exemptions: self.exempt.exemptions(),
        })
    }
}
