//! A real control plane per test: etcd, kube-apiserver and the real
//! `cedar-authorizer serve`, wired together the way `deploy/` describes,
//! every file in one temporary directory, every process killed on drop.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::server::{binary, http_get, Pki};
use crate::e2e::http;
use crate::e2e::kubectl::{self, Out};

/// What a test sees when the assets are missing.
pub const NO_ASSETS: &str = "KUBEBUILDER_ASSETS is not set: it must name a directory holding \
     kube-apiserver and etcd (get them with `setup-envtest use 1.36 -p path`, or \
     `../shared/envtest/setup.sh DIR` and export KUBEBUILDER_ASSETS=DIR)";

/// The directory with `kube-apiserver` and `etcd`.
pub fn assets() -> PathBuf {
    let dir = PathBuf::from(std::env::var_os("KUBEBUILDER_ASSETS").expect(NO_ASSETS));
    for bin in ["kube-apiserver", "etcd"] {
        assert!(
            dir.join(bin).is_file(),
            "{}: no {bin} here ({NO_ASSETS})",
            dir.display()
        );
    }
    dir
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The last `n` lines of a log file, for panic messages.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Polls `f` every 100 ms until it returns `Some`, or panics after `timeout`
/// with `what` and the output of `context`.
pub fn poll<T>(
    timeout: Duration,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
    context: impl Fn() -> String,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!(
                "timed out after {timeout:?} waiting for {what}\n{}",
                context()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child process with its output in a file; killed and reaped on drop.
pub struct Proc {
    pub name: &'static str,
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    fn spawn(name: &'static str, cmd: &mut Command, log: PathBuf) -> Proc {
        let out = File::create(&log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        Proc { name, child, log }
    }

    /// Panics with the log tail if the process has exited.
    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "{} exited early ({status}); last lines of {}:\n{}",
                self.name,
                self.log.display(),
                tail(&self.log, 40)
            );
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `cedar-authorizer serve` with its JSON log lines kept.
pub struct Webhook {
    pub child: Child,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub logs: Arc<Mutex<Vec<String>>>,
}

fn json_field(line: &str, key: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    v.get(key)?.as_str().map(str::to_owned)
}

impl Webhook {
    /// Starts the webhook on `port` (0: any free one) and waits until both
    /// listeners are up. Every log line is also appended to `log`.
    pub fn start(pki: &Pki, policies: &Path, port: u16, extra: &[String], log: &Path) -> Webhook {
        let mut child = Command::new(binary())
            .arg("serve")
            .arg("--policies")
            .arg(policies)
            .args(["--secure-port", &port.to_string()])
            .args(["--metrics-bind-address", "127.0.0.1:0"])
            .args(["--log-format", "json"])
            .args(pki.serve_args())
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let logs = Arc::clone(&logs);
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let _ = writeln!(file, "{line}");
                    let _ = tx.send(line.clone());
                    logs.lock().unwrap().push(line);
                }
            });
        }
        let (mut addr, mut admin) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(30);
        while addr.is_none() || admin.is_none() {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| {
                    panic!(
                        "webhook did not start on port {port}; log:\n{}",
                        logs.lock().unwrap().join("\n")
                    )
                });
            let msg = json_field(&line, "message").unwrap_or_default();
            if msg.starts_with("webhook listening") {
                addr = json_field(&line, "address").map(|a| a.parse().unwrap());
            } else if msg.starts_with("admin listening") {
                admin = json_field(&line, "address").map(|a| a.parse().unwrap());
            }
        }
        Webhook {
            child,
            addr: addr.unwrap(),
            admin: admin.unwrap(),
            logs,
        }
    }

    /// `/metrics` of the admin listener.
    pub fn metrics(&self) -> String {
        let (status, body) = http_get(self.admin, "/metrics");
        assert_eq!(status, 200, "webhook /metrics: {body}");
        body
    }

    /// Sum of the series of `name` whose labels include `labels`.
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        http::metric_sum(&self.metrics(), name, labels)
    }

    /// `cedar_authorizer_requests_total` by decision.
    pub fn decisions(&self) -> Decisions {
        let m = self.metrics();
        let d = |v| http::metric_sum(&m, "cedar_authorizer_requests_total", &[("decision", v)]);
        Decisions {
            allowed: d("allowed"),
            denied: d("denied"),
            no_opinion: d("no_opinion"),
        }
    }

    /// Sends a signal to the process.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} {}", self.child.id());
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        // SIGKILL ends a SIGSTOPped process too.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The webhook's answers so far, by decision.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Decisions {
    pub allowed: f64,
    pub denied: f64,
    pub no_opinion: f64,
}

impl Decisions {
    pub fn total(&self) -> f64 {
        self.allowed + self.denied + self.no_opinion
    }

    pub fn since(&self, before: &Decisions) -> Decisions {
        Decisions {
            allowed: self.allowed - before.allowed,
            denied: self.denied - before.denied,
            no_opinion: self.no_opinion - before.no_opinion,
        }
    }
}

/// A test user from `tokens.csv`: username, bearer token, groups.
pub struct TestUser {
    pub name: &'static str,
    pub token: &'static str,
    pub groups: &'static [&'static str],
}

/// Every user the apiserver knows. `system:authenticated` is added by the
/// apiserver itself.
pub const USERS: &[TestUser] = &[
    TestUser {
        name: "admin",
        token: "admin-token",
        groups: &["system:masters"],
    },
    TestUser {
        name: "alice",
        token: "alice-token",
        groups: &["e2e-users"],
    },
    TestUser {
        name: "bob",
        token: "bob-token",
        groups: &["e2e-users"],
    },
    TestUser {
        name: "carol",
        token: "carol-token",
        groups: &["e2e-users"],
    },
    TestUser {
        name: "test-user",
        token: "test-user-token",
        groups: &["e2e-users"],
    },
    TestUser {
        name: "support",
        token: "support-token",
        groups: &["support"],
    },
    TestUser {
        name: "legacy-imp",
        token: "legacy-imp-token",
        groups: &["impersonators"],
    },
    TestUser {
        name: "constrained-imp",
        token: "constrained-imp-token",
        groups: &["impersonators"],
    },
    TestUser {
        name: "sample-user",
        token: "sample-user-token",
        groups: &["requires-labels"],
    },
    TestUser {
        name: "system:kube-scheduler",
        token: "scheduler-token",
        groups: &[],
    },
    // The identity deploy/policy-rbac.yaml binds: the webhook's own client
    // for Policy objects.
    TestUser {
        name: "system:cedar-authorizer",
        token: "cedar-authorizer-token",
        groups: &[],
    },
];

fn tokens_csv() -> String {
    let mut out = String::new();
    for u in USERS {
        out.push_str(&format!(
            "{},{},uid-{}",
            u.token,
            u.name,
            u.name.replace(':', "-")
        ));
        if !u.groups.is_empty() {
            out.push_str(&format!(",\"{}\"", u.groups.join(",")));
        }
        out.push('\n');
    }
    out
}

/// How a test wants its control plane.
pub struct Options {
    /// Files written into the policy directory: (relative path, text).
    pub policies: Vec<(&'static str, String)>,
    /// Copy this directory's contents into the policy directory first.
    pub policy_library: Option<PathBuf>,
    pub failure_policy: &'static str,
    pub timeout: &'static str,
    pub authorized_ttl: &'static str,
    pub unauthorized_ttl: &'static str,
    /// Extra `serve` flags.
    pub webhook_args: Vec<String>,
    /// Also register the webhook for admission: the apiserver gets
    /// `deploy/admission-config.yaml` and, once ready,
    /// `deploy/validating-webhook.yaml` is applied.
    pub admission: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            policies: Vec::new(),
            policy_library: None,
            failure_policy: "NoOpinion",
            timeout: "1s",
            authorized_ttl: "3s",
            unauthorized_ttl: "2s",
            webhook_args: vec!["--decision-log".into(), "all".into()],
            admission: false,
        }
    }
}

/// Replaces exactly one occurrence of `from`; panics when it is not there
/// exactly once, so a change to the deploy file cannot silently make a
/// test run against something else.
pub fn replace_once(text: &str, from: &str, to: &str) -> String {
    let n = text.matches(from).count();
    assert_eq!(n, 1, "expected `{from}` exactly once, found {n}");
    text.replacen(from, to, 1)
}

/// The project's `deploy/NAME` with each `(from, to)` edit made exactly
/// once (see [`replace_once`]).
fn deploy_file(name: &str, edits: &[(&str, String)]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    edits.iter().fold(text, |text, (from, to)| {
        let n = text.matches(from).count();
        assert_eq!(
            n, 1,
            "expected `{from}` exactly once in deploy/{name}, found {n}"
        );
        text.replacen(from, to, 1)
    })
}

/// The deploy kubeconfigs' client certificate and key, pointed at this
/// test's files.
fn client_cert_edits(pki: &Pki) -> [(&'static str, String); 2] {
    [
        (
            "client-certificate: /etc/kubernetes/cedar/pki/apiserver-client.pem",
            format!("client-certificate: {}", pki.client_cert.display()),
        ),
        (
            "client-key: /etc/kubernetes/cedar/pki/apiserver-client-key.pem",
            format!("client-key: {}", pki.client_key.display()),
        ),
    ]
}

/// The project's `deploy/authorization-config.yaml` with only the
/// kubeconfig path, the timeout, the TTLs and the failure policy changed.
pub fn authorization_config(kubeconfig: &Path, o: &Options) -> String {
    deploy_file(
        "authorization-config.yaml",
        &[
            (
                "kubeConfigFile: /etc/kubernetes/cedar/webhook.kubeconfig",
                format!("kubeConfigFile: {}", kubeconfig.display()),
            ),
            ("timeout: 3s", format!("timeout: {}", o.timeout)),
            (
                "authorizedTTL: 30s",
                format!("authorizedTTL: {}", o.authorized_ttl),
            ),
            (
                "unauthorizedTTL: 10s",
                format!("unauthorizedTTL: {}", o.unauthorized_ttl),
            ),
            (
                "failurePolicy: NoOpinion",
                format!("failurePolicy: {}", o.failure_policy),
            ),
        ],
    )
}

/// The project's `deploy/webhook.kubeconfig` with the server and the
/// certificate paths pointed at this test's files.
pub fn webhook_kubeconfig(port: u16, pki: &Pki) -> String {
    let [cert, key] = client_cert_edits(pki);
    deploy_file(
        "webhook.kubeconfig",
        &[
            (
                "server: https://127.0.0.1:10288/authorize",
                format!("server: https://127.0.0.1:{port}/authorize"),
            ),
            (
                "certificate-authority: /etc/kubernetes/cedar/pki/ca.pem",
                format!("certificate-authority: {}", pki.ca.display()),
            ),
            cert,
            key,
        ],
    )
}

/// The project's `deploy/admission-config.yaml` pointing at `kubeconfig`.
pub fn admission_config(kubeconfig: &Path) -> String {
    deploy_file(
        "admission-config.yaml",
        &[(
            "kubeConfigFile: /etc/kubernetes/cedar/admission.kubeconfig",
            format!("kubeConfigFile: {}", kubeconfig.display()),
        )],
    )
}

/// The project's `deploy/admission.kubeconfig` for a webhook on `port`.
pub fn admission_kubeconfig(port: u16, pki: &Pki) -> String {
    let [cert, key] = client_cert_edits(pki);
    deploy_file(
        "admission.kubeconfig",
        &[
            (
                "name: \"127.0.0.1:10288\"",
                format!("name: \"127.0.0.1:{port}\""),
            ),
            cert,
            key,
        ],
    )
}

/// The project's `deploy/validating-webhook.yaml` for a webhook on `port`.
pub fn validating_webhook(port: u16, pki: &Pki) -> String {
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&pki.ca).unwrap());
    deploy_file(
        "validating-webhook.yaml",
        &[
            (
                "url: https://127.0.0.1:10288/admit",
                format!("url: https://127.0.0.1:{port}/admit"),
            ),
            ("caBundle: CA_BUNDLE", format!("caBundle: {ca}")),
        ],
    )
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Writes `text` to `path` by rename, so a watcher never sees half a file.
pub fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// One test's control plane.
pub struct Cluster {
    pub name: String,
    pub pki: Pki,
    pub policies: PathBuf,
    pub authz_config: PathBuf,
    pub webhook: Option<Webhook>,
    pub webhook_port: u16,
    /// `serve` flags of the next [`Cluster::start_webhook`].
    pub webhook_args: Vec<String>,
    pub webhook_log: PathBuf,
    pub api_port: u16,
    pub api_ca: PathBuf,
    apiserver: Proc,
    _etcd: Proc,
    pub started: Instant,
    /// Declared last, so dropped after every process above is gone.
    pub dir: tempfile::TempDir,
}

impl Cluster {
    pub fn start(name: &str, o: Options) -> Cluster {
        let assets = assets();
        let started = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix(&format!("e2e-{name}-"))
            .tempdir()
            .unwrap();
        let d = dir.path();
        let pki = Pki::new();

        let policies = d.join("policies");
        std::fs::create_dir_all(&policies).unwrap();
        if let Some(lib) = &o.policy_library {
            copy_dir(lib, &policies);
        }
        for (file, text) in &o.policies {
            let p = policies.join(file);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }

        let webhook_log = d.join("webhook.log");
        let webhook = Webhook::start(&pki, &policies, 0, &o.webhook_args, &webhook_log);
        let webhook_port = webhook.addr.port();

        let kubeconfig = d.join("webhook.kubeconfig");
        std::fs::write(&kubeconfig, webhook_kubeconfig(webhook_port, &pki)).unwrap();
        let authz_config = d.join("authorization-config.yaml");
        std::fs::write(&authz_config, authorization_config(&kubeconfig, &o)).unwrap();

        // Service-account signing key: EC P-256, PKCS#8 PEM; the apiserver
        // wants the public half in a file of its own.
        let sa = rcgen::KeyPair::generate().unwrap();
        let sa_key = d.join("sa-key.pem");
        std::fs::write(&sa_key, sa.serialize_pem()).unwrap();
        let sa_pub = d.join("sa-pub.pem");
        std::fs::write(&sa_pub, sa.public_key_pem()).unwrap();
        let admission_config_file = d.join("admission-config.yaml");
        if o.admission {
            let kubeconfig = d.join("admission.kubeconfig");
            std::fs::write(&kubeconfig, admission_kubeconfig(webhook_port, &pki)).unwrap();
            std::fs::write(&admission_config_file, admission_config(&kubeconfig)).unwrap();
        }
        let tokens = d.join("tokens.csv");
        std::fs::write(&tokens, tokens_csv()).unwrap();

        let (etcd_client, etcd_peer, api_port) = (free_port(), free_port(), free_port());
        let etcd = Proc::spawn(
            "etcd",
            Command::new(assets.join("etcd"))
                .arg("--data-dir")
                .arg(d.join("etcd"))
                .arg(format!(
                    "--listen-client-urls=http://127.0.0.1:{etcd_client}"
                ))
                .arg(format!("--listen-peer-urls=http://127.0.0.1:{etcd_peer}")),
            d.join("etcd.log"),
        );
        let cert_dir = d.join("apiserver-certs");
        let path = |p: &Path| p.display().to_string();
        let mut apiserver_cmd = Command::new(assets.join("kube-apiserver"));
        if o.admission {
            apiserver_cmd.arg(format!(
                "--admission-control-config-file={}",
                path(&admission_config_file)
            ));
        }
        let apiserver = Proc::spawn(
            "kube-apiserver",
            apiserver_cmd.args([
                format!("--etcd-servers=http://127.0.0.1:{etcd_client}"),
                "--bind-address=127.0.0.1".into(),
                "--advertise-address=127.0.0.1".into(),
                format!("--secure-port={api_port}"),
                format!("--cert-dir={}", path(&cert_dir)),
                format!("--service-account-key-file={}", path(&sa_pub)),
                format!("--service-account-signing-key-file={}", path(&sa_key)),
                "--service-account-issuer=https://kubernetes.default.svc".into(),
                "--service-cluster-ip-range=10.96.0.0/24".into(),
                format!("--token-auth-file={}", path(&tokens)),
                format!("--authorization-config={}", path(&authz_config)),
                "--endpoint-reconciler-type=none".into(),
            ]),
            d.join("apiserver.log"),
        );

        let mut cluster = Cluster {
            name: name.to_owned(),
            pki,
            policies,
            authz_config,
            webhook: Some(webhook),
            webhook_port,
            webhook_args: o.webhook_args,
            webhook_log,
            api_port,
            api_ca: cert_dir.join("apiserver.crt"),
            apiserver,
            _etcd: etcd,
            started,
            dir,
        };
        cluster.wait_ready();
        for u in USERS {
            kubectl::write_kubeconfig(
                &cluster.kubeconfig(u.name),
                api_port,
                &cluster.api_ca,
                u.token,
            );
        }
        // One discovery for everyone: kubectl caches it per server, so the
        // test users' commands send only the request under test.
        let out = cluster.kubectl("admin", &["api-resources", "-o", "name"]);
        assert!(out.ok(), "discovery as admin: {out}");
        if o.admission {
            cluster.apply(&validating_webhook(webhook_port, &cluster.pki));
        }
        cluster.log(&format!(
            "control plane ready in {:.1}s (apiserver :{api_port}, webhook :{webhook_port})",
            cluster.started.elapsed().as_secs_f64()
        ));
        cluster
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut last = String::new();
        loop {
            self.apiserver.assert_running();
            if self.api_ca.exists() {
                match http::https_get(self.api_port, &self.api_ca, "admin-token", "/readyz") {
                    Ok((200, _)) => return,
                    Ok((code, body)) => last = format!("HTTP {code}: {body}"),
                    Err(e) => last = e.to_string(),
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "kube-apiserver not ready after 90s (last /readyz: {last}); last lines of {}:\n{}",
                    self.apiserver.log.display(),
                    tail(&self.apiserver.log, 40)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `[test] message`, with the time since the cluster started.
    pub fn log(&self, msg: &str) {
        eprintln!(
            "[{} +{:.1}s] {msg}",
            self.name,
            self.started.elapsed().as_secs_f64()
        );
    }

    pub fn kubeconfig(&self, user: &str) -> PathBuf {
        self.dir
            .path()
            .join(format!("kubeconfig-{}", user.replace(':', "-")))
    }

    /// Runs `kubectl` as `user`.
    pub fn kubectl(&self, user: &str, args: &[&str]) -> Out {
        kubectl::run(
            &self.kubeconfig(user),
            &self.dir.path().join("kube-cache"),
            args,
        )
    }

    /// `kubectl apply -f` of this YAML as the system:masters admin.
    pub fn apply(&self, yaml: &str) {
        let file = self.dir.path().join(format!("apply-{}.yaml", free_port()));
        std::fs::write(&file, yaml).unwrap();
        let out = self.kubectl("admin", &["apply", "-f", file.to_str().unwrap()]);
        assert!(out.ok(), "kubectl apply: {out}\n{yaml}");
    }

    pub fn webhook(&self) -> &Webhook {
        self.webhook.as_ref().expect("webhook is running")
    }

    /// Kills the webhook (SIGKILL) and waits for it to be gone.
    pub fn kill_webhook(&mut self) {
        if let Some(mut w) = self.webhook.take() {
            w.child.kill().unwrap();
            w.child.wait().unwrap();
        }
    }

    /// Starts the webhook again, on the same port as before.
    pub fn start_webhook(&mut self) {
        assert!(self.webhook.is_none(), "webhook already running");
        let w = Webhook::start(
            &self.pki,
            &self.policies,
            self.webhook_port,
            &self.webhook_args,
            &self.webhook_log,
        );
        assert_eq!(w.addr.port(), self.webhook_port);
        self.webhook = Some(w);
    }

    /// Writes a policy file (atomically) into the live policy directory.
    pub fn write_policy(&self, file: &str, text: &str) {
        write_atomic(&self.policies.join(file), text);
    }

    /// Replaces the AuthorizationConfiguration file (atomically).
    pub fn write_authz_config(&self, text: &str) {
        write_atomic(&self.authz_config, text);
    }

    pub fn authz_config_text(&self) -> String {
        std::fs::read_to_string(&self.authz_config).unwrap()
    }

    /// Sends a signal to kube-apiserver (`STOP` makes it unreachable while
    /// its connections stay open; `CONT` brings it back).
    pub fn signal_apiserver(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.apiserver.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} kube-apiserver");
    }

    pub fn apiserver_log(&self) -> String {
        std::fs::read_to_string(&self.apiserver.log).unwrap_or_default()
    }

    pub fn apiserver_tail(&self) -> String {
        tail(&self.apiserver.log, 30)
    }

    /// The apiserver's `/metrics`, read as admin.
    pub fn apiserver_metrics(&self) -> String {
        let (code, body) =
            http::https_get(self.api_port, &self.api_ca, "admin-token", "/metrics").unwrap();
        assert_eq!(code, 200, "apiserver /metrics");
        body
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "[{}] failed (files in {}); apiserver log tail:\n{}\nwebhook log tail:\n{}",
                self.name,
                self.dir.path().display(),
                self.apiserver_tail(),
                tail(&self.webhook_log, 15)
            );
        }
        // Webhook first, then the apiserver and etcd (fields drop in order).
        self.kill_webhook();
    }
}
