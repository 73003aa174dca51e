//! A real server for black-box tests: certificates made now, the server
//! started in process through `serve::run` on 127.0.0.1:0 ([`InProcess`])
//! or as the real binary where process behaviour is the subject
//! ([`Server`]: signals, exit codes, log lines), and a TLS client that
//! speaks HTTP/1.1 or HTTP/2 over one kept-alive connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a test waits for something that should happen within moments
/// (a reload, a log line, a metric). Generous, because CI machines are shared
/// and debug builds are slow; a passing test never waits it out, and it stays
/// well below the 60 s policy poll the reload tests set, so what happens
/// within it was the file watcher's doing.
pub const PATIENCE: Duration = Duration::from_secs(30);

use axum::body::Bytes;
use cedar_authorizer::certs::Authority;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// Certificates for one test: a CA with a serving pair and an "apiserver"
/// client pair, and a client pair from a foreign CA.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub foreign_cert: PathBuf,
    pub foreign_key: PathBuf,
    authority: Authority,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let authority = Authority::new("test CA").unwrap();
        let serving = authority
            .serving(&["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        let client = authority.client("system:apiserver").unwrap();
        let foreign = Authority::new("foreign CA")
            .unwrap()
            .client("system:apiserver")
            .unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        Pki {
            ca: write("ca.pem", &authority.pem.cert),
            serving_cert: write("serving.pem", &serving.cert),
            serving_key: write("serving-key.pem", &serving.key),
            client_cert: write("client.pem", &client.cert),
            client_key: write("client-key.pem", &client.key),
            foreign_cert: write("foreign.pem", &foreign.cert),
            foreign_key: write("foreign-key.pem", &foreign.key),
            authority,
            dir,
        }
    }

    /// A new serving pair from the same CA (what a rotation writes).
    pub fn new_serving_pair(&self) -> (String, String) {
        let p = self
            .authority
            .serving(&["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        (p.cert, p.key)
    }

    /// A client pair from the same CA with another subject CN.
    pub fn client_with_cn(&self, cn: &str) -> (PathBuf, PathBuf) {
        let p = self.authority.client(cn).unwrap();
        let cert = self.dir.path().join(format!("{cn}.pem"));
        let key = self.dir.path().join(format!("{cn}-key.pem"));
        std::fs::write(&cert, p.cert).unwrap();
        std::fs::write(&key, p.key).unwrap();
        (cert, key)
    }

    /// The usual `serve` TLS flags: serving pair and client CA.
    pub fn serve_args(&self) -> Vec<String> {
        vec![
            "--tls-cert-file".into(),
            self.serving_cert.display().to_string(),
            "--tls-private-key-file".into(),
            self.serving_key.display().to_string(),
            "--client-ca-file".into(),
            self.ca.display().to_string(),
        ]
    }
}

/// The release or debug binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_cedar-authorizer")
}

/// A running `cedar-authorizer serve`.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    /// Every log line so far (JSON).
    pub logs: Arc<Mutex<Vec<String>>>,
}

fn field(line: &str, key: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    v.get(key)?.as_str().map(str::to_owned)
}

impl Server {
    /// Starts `serve` with these extra arguments on free ports and waits
    /// until both listeners are up.
    pub fn start(policies: &Path, extra: &[String]) -> Server {
        let mut child = Command::new(binary())
            .arg("serve")
            .arg("--policies")
            .arg(policies)
            .args([
                "--secure-port",
                "0",
                "--metrics-bind-address",
                "127.0.0.1:0",
            ])
            .args(["--log-format", "json"])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let logs = Arc::clone(&logs);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let _ = tx.send(line.clone());
                    logs.lock().unwrap().push(line);
                }
            });
        }
        let (mut addr, mut admin) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(60);
        while addr.is_none() || admin.is_none() {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| {
                    panic!("server did not start; logs: {:?}", logs.lock().unwrap())
                });
            let msg = field(&line, "message").unwrap_or_default();
            if msg.starts_with("webhook listening") {
                addr = field(&line, "address").map(|a| a.parse().unwrap());
            } else if msg.starts_with("admin listening") {
                admin = field(&line, "address").map(|a| a.parse().unwrap());
            }
        }
        Server {
            child,
            addr: addr.unwrap(),
            admin: admin.unwrap(),
            logs,
        }
    }

    /// Waits until a log line satisfies `pred`; panics after `timeout`.
    pub fn wait_for_log(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.logs.lock().unwrap().iter().find(|l| pred(l)) {
                return l.clone();
            }
            assert!(
                Instant::now() < deadline,
                "log line not seen; logs: {:?}",
                self.logs.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Plain HTTP GET on the admin listener: (status, body).
    pub fn admin_get(&self, path: &str) -> (u16, String) {
        http_get(self.admin, path)
    }

    /// Sends a signal to the server process.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "server did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The value of a metric series (see [`metric`]).
    pub fn metric(&self, series: &str) -> f64 {
        metric(self.admin, series)
    }

    /// Waits (up to [`PATIENCE`]) until a metric series reaches `at_least`.
    pub fn wait_metric(&self, series: &str, at_least: f64) {
        wait_metric(self.admin, series, at_least);
    }
}

/// The value of a metric series in the Prometheus text exposition of the
/// admin listener at `admin` (`name{labels}` exactly as printed), or 0 when
/// absent.
pub fn metric(admin: SocketAddr, series: &str) -> f64 {
    let (_, text) = http_get(admin, "/metrics");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            (k == series).then(|| v.parse().unwrap())
        })
        .unwrap_or(0.0)
}

/// Waits (up to [`PATIENCE`]) until a metric series of the admin listener
/// at `admin` reaches `at_least`.
pub fn wait_metric(admin: SocketAddr, series: &str, at_least: f64) {
    let start = Instant::now();
    while metric(admin, series) < at_least {
        assert!(
            start.elapsed() < PATIENCE,
            "{series} stayed below {at_least}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// `serve` running in this process through `serve::run`, configured by
/// the same flags as the binary, on sockets bound here to 127.0.0.1:0.
pub struct InProcess {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl InProcess {
    /// Starts the server with these `serve` flags and waits until
    /// `/readyz` answers 200; panics with the start-up error otherwise.
    pub fn start(policies: &Path, extra: &[String]) -> InProcess {
        use cedar_authorizer::cmd::{Cli, Command};
        use clap::Parser;
        let policies = policies.display().to_string();
        let argv = ["cedar-authorizer", "serve", "--policies", &policies]
            .into_iter()
            .map(str::to_owned)
            .chain(extra.iter().cloned());
        let Command::Serve(args) = Cli::try_parse_from(argv).unwrap().command else {
            unreachable!("parsed a serve command line")
        };
        let config = args.config().unwrap();
        let bind = || {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.set_nonblocking(true).unwrap();
            l
        };
        let (listener, admin_listener) = (bind(), bind());
        let (addr, admin) = (
            listener.local_addr().unwrap(),
            admin_listener.local_addr().unwrap(),
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                cedar_authorizer::serve::run(
                    tokio::net::TcpListener::from_std(listener).unwrap(),
                    tokio::net::TcpListener::from_std(admin_listener).unwrap(),
                    config,
                    async {
                        let _ = rx.await;
                    },
                )
                .await
                .map_err(|e| e.to_string())
            })
        });
        let mut server = InProcess {
            addr,
            admin,
            shutdown: Some(tx),
            thread: Some(thread),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if server.thread.as_ref().is_some_and(|t| t.is_finished()) {
                let result = server.thread.take().unwrap().join().unwrap();
                panic!("server did not start: {result:?}");
            }
            if try_http_get(admin, "/readyz").is_ok_and(|(status, _)| status == 200) {
                return server;
            }
            assert!(Instant::now() < deadline, "server not ready in 60 s");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Plain HTTP GET on the admin listener: (status, body).
    pub fn admin_get(&self, path: &str) -> (u16, String) {
        http_get(self.admin, path)
    }

    /// The value of a metric series (see [`metric`]).
    pub fn metric(&self, series: &str) -> f64 {
        metric(self.admin, series)
    }

    /// Waits until a metric series reaches `at_least` (see [`wait_metric`]).
    pub fn wait_metric(&self, series: &str, at_least: f64) {
        wait_metric(self.admin, series, at_least);
    }

    /// Starts the shutdown sequence and waits for `serve::run` to return.
    pub fn shutdown(mut self) -> Result<(), String> {
        self.stop()
    }

    /// Starts the shutdown sequence without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    fn stop(&mut self) -> Result<(), String> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.thread.take() {
            Some(t) => t.join().unwrap(),
            None => Ok(()),
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Minimal HTTP/1.0 GET over plain TCP: (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    try_http_get(addr, path).unwrap_or_else(|e| panic!("GET {path} from {addr}: {e}"))
}

/// [`http_get`], with connection errors returned rather than panicking.
pub fn try_http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// TLS client configuration trusting `ca`, presenting a client pair if given.
pub fn client_config(
    ca: &Path,
    client: Option<(&Path, &Path)>,
    alpn: &[&[u8]],
) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let mut config = match client {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(cert)
                    .unwrap()
                    .map(|c| c.unwrap())
                    .collect(),
                PrivateKeyDer::from_pem_file(key).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // Full handshakes only: a resumed session reports the certificate of the
    // session it resumes, which would hide a rotation.
    config.resumption = rustls::client::Resumption::disabled();
    config
}

/// Which HTTP version a [`Conn`] speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    H1,
    H2,
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

/// One kept-alive TLS connection to the webhook.
pub struct Conn {
    sender: Sender,
    /// DER of the certificate the server presented.
    pub server_cert: Vec<u8>,
}

/// Connects over TLS and negotiates `proto` by ALPN.
/// A raw TLS stream to the webhook speaking HTTP/1.1, for tests that write
/// requests byte by byte.
pub async fn tls_stream(
    addr: SocketAddr,
    config: &rustls::ClientConfig,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut config = config.clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

/// An HTTP/1.1 review of alice's that k8s-basics allows, sent with only
/// its first bytes: the request stays in flight until the caller writes
/// the returned rest.
pub async fn half_sent_review(
    addr: SocketAddr,
    config: &rustls::ClientConfig,
) -> (
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    Vec<u8>,
) {
    use tokio::io::AsyncWriteExt;
    let body = serde_json::to_vec(&sar("alice", &["developers"], "get", "pods", "team-a")).unwrap();
    let mut tls = tls_stream(addr, config).await;
    let head = format!(
        "POST /authorize HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(&body[..10]).await.unwrap();
    tls.flush().await.unwrap();
    (tls, body[10..].to_vec())
}

pub async fn connect(
    addr: SocketAddr,
    config: &rustls::ClientConfig,
    proto: Proto,
) -> std::io::Result<Conn> {
    let mut config = config.clone();
    config.alpn_protocols = vec![match proto {
        Proto::H1 => b"http/1.1".to_vec(),
        Proto::H2 => b"h2".to_vec(),
    }];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    // As client-go does; without it Nagle's algorithm stalls HTTP/2 frames.
    tcp.set_nodelay(true)?;
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    let server_cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let negotiated = tls.get_ref().1.alpn_protocol().map(|p| p.to_vec());
    let io = TokioIo::new(tls);
    let sender = match proto {
        Proto::H1 => {
            assert_eq!(negotiated.as_deref(), Some(&b"http/1.1"[..]));
            let (s, c) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(std::io::Error::other)?;
            tokio::spawn(c);
            Sender::H1(s)
        }
        Proto::H2 => {
            assert_eq!(negotiated.as_deref(), Some(&b"h2"[..]));
            let (s, c) =
                hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                    .await
                    .map_err(std::io::Error::other)?;
            tokio::spawn(c);
            Sender::H2(s)
        }
    };
    Ok(Conn {
        sender,
        server_cert,
    })
}

impl Conn {
    /// Sends one request on this connection: (status, body).
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> hyper::Result<(u16, Vec<u8>)> {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let resp = match &mut self.sender {
            Sender::H1(s) => {
                s.ready().await?;
                s.send_request(req).await?
            }
            Sender::H2(s) => {
                s.ready().await?;
                let mut req = req;
                *req.uri_mut() = format!("https://localhost{path}").parse().unwrap();
                s.send_request(req).await?
            }
        };
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes().to_vec();
        Ok((status, body))
    }

    /// POSTs a SAR to /authorize; panics unless the answer is a 200.
    pub async fn authorize(&mut self, sar: &serde_json::Value) -> serde_json::Value {
        let (status, body) = self
            .request("POST", "/authorize", serde_json::to_vec(sar).unwrap())
            .await
            .unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }
}

/// True when the server refuses this client: the handshake fails, or (with
/// TLS 1.3, where the client may finish its side before the server rejects
/// its certificate) the first request on the connection does.
pub async fn refused(addr: SocketAddr, config: &rustls::ClientConfig) -> bool {
    match connect(addr, config, Proto::H1).await {
        Err(_) => true,
        Ok(mut c) => c
            .request("POST", "/authorize", b"{}".to_vec())
            .await
            .is_err(),
    }
}

/// A runtime for tests that mix blocking process control with async I/O.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A SubjectAccessReview for a resource request.
pub fn sar(
    user: &str,
    groups: &[&str],
    verb: &str,
    resource: &str,
    namespace: &str,
) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": user,
            "groups": groups,
            "resourceAttributes": {"verb": verb, "version": "v1", "resource": resource, "namespace": namespace}
        }
    })
}

/// POSTs a SAR with `kubectl --kubeconfig KC create --raw /authorize -f`:
/// client-go's transport, the code the apiserver calls webhooks with.
pub fn kubectl_authorize(kubeconfig: &Path, sar: &serde_json::Value) -> std::process::Output {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(sar).unwrap()).unwrap();
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["create", "--raw", "/authorize", "-f"])
        .arg(file.path())
        .output()
        .expect("kubectl is required (Debian package kubernetes-client); .ci/run installs it")
}

/// Every `step`th case of a scenario through kubectl; the mismatches.
pub fn kubectl_corpus(kubeconfig: &Path, scenario: &super::Scenario, step: usize) -> Vec<String> {
    let mut failures = Vec::new();
    for case in scenario.cases.iter().step_by(step) {
        let out = kubectl_authorize(kubeconfig, &case.sar);
        assert!(
            out.status.success(),
            "{}: {}",
            case.name,
            String::from_utf8_lossy(&out.stderr)
        );
        let resp: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        failures.extend(super::mismatch(&scenario.name, case, &resp["status"]));
    }
    failures
}
