//! TLS for the webhook listener: the serving certificate (given, or a
//! self-signed default), its rotation without restart, and client
//! certificate authentication.
//!
//! The serving key lives behind an `ArcSwap` read by a `ResolvesServerCert`
//! on every handshake: rotation swaps it whole, connections already open keep
//! the session they have, new handshakes get the new certificate. The client
//! CA is re-read the same way: the whole rustls configuration is rebuilt and
//! swapped, and each new connection takes the one in force. A new file that
//! does not load is reported and the old one keeps serving. The expiry of
//! both is exported as `cedar_authorizer_certificate_expiry_timestamp_seconds`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::crypto::ring as provider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::certs;

/// Why TLS could not be set up. Each names the flag or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate, key or CA file could not be read or parsed.
    #[error("{flag} {}: {message}", path.display())]
    File {
        flag: &'static str,
        path: PathBuf,
        message: String,
    },
    /// The key does not belong to the certificate, or rustls refused it.
    #[error("--tls-cert-file {}: {message}", path.display())]
    Pair { path: PathBuf, message: String },
    /// The self-signed default could not be made.
    #[error("--cert-dir {}: {message}", path.display())]
    CertDir { path: PathBuf, message: String },
    /// rustls refused the configuration.
    #[error("tls configuration: {0}")]
    Config(String),
}

/// Where the serving certificate comes from.
#[derive(Clone, Debug)]
pub struct CertPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn file_error(flag: &'static str, path: &Path, message: impl fmt::Display) -> TlsError {
    TlsError::File {
        flag,
        path: path.to_owned(),
        message: message.to_string(),
    }
}

/// Reads a PEM certificate chain and key and checks that they belong together.
pub fn load_certified_key(paths: &CertPaths) -> Result<CertifiedKey, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&paths.cert)
        .map_err(|e| file_error("--tls-cert-file", &paths.cert, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error("--tls-cert-file", &paths.cert, e))?;
    if chain.is_empty() {
        return Err(file_error(
            "--tls-cert-file",
            &paths.cert,
            "no certificate found",
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&paths.key)
        .map_err(|e| file_error("--tls-private-key-file", &paths.key, e))?;
    let signing_key = provider::sign::any_supported_type(&key)
        .map_err(|e| file_error("--tls-private-key-file", &paths.key, e))?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match().map_err(|e| TlsError::Pair {
        path: paths.cert.clone(),
        message: format!("does not match --tls-private-key-file: {e}"),
    })?;
    Ok(certified)
}

/// Seconds since the epoch at which a DER certificate expires.
pub fn not_after(der: &[u8]) -> Option<i64> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.validity().not_after.timestamp())
}

/// The expiry of the first certificate of a PEM file, if it has one.
pub fn pem_not_after(path: &Path) -> Option<i64> {
    let first = CertificateDer::pem_file_iter(path).ok()?.next()?.ok()?;
    not_after(&first)
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A self-signed default that expires sooner than this is made anew.
const RENEW_BEFORE_SECONDS: i64 = 24 * 3600;

/// Makes (once, and again when it has expired or is about to) and returns
/// the self-signed default: a CA and a serving certificate for localhost
/// and 127.0.0.1 under `dir`. The CA's private key is not kept: the server
/// never signs anything, and a key left on disk could mint certificates
/// that clients trusting this CA would accept.
pub fn default_cert(dir: &Path) -> Result<CertPaths, TlsError> {
    let paths = CertPaths {
        cert: dir.join(certs::SERVING_CERT),
        key: dir.join(certs::SERVING_KEY),
    };
    if paths.cert.exists() && paths.key.exists() {
        match pem_not_after(&paths.cert) {
            Some(t) if t > now_seconds() + RENEW_BEFORE_SECONDS => return Ok(paths),
            expiry => tracing::warn!(
                cert = %paths.cert.display(),
                not_after = ?expiry,
                "the self-signed default certificate has expired (or is about to, or is unreadable); making a new CA and serving pair: update kubeconfigs that trust the old CA"
            ),
        }
    }
    let err = |message: String| TlsError::CertDir {
        path: dir.to_owned(),
        message,
    };
    // Writes the set into a staging directory inside the target (same file
    // system, so the moves are renames even when the directory is a mount),
    // then moves our six files into place: a failure (a full disk) never
    // leaves half a set that the next start would trust, and nothing else in
    // the directory is touched.
    let existed = dir.exists();
    std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    // Staging directories of processes killed mid-write.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let staging = dir.join(format!(".tmp-{}", std::process::id()));
    let result = certs::generate(
        &staging,
        &["localhost".to_owned(), "127.0.0.1".to_owned()],
        "system:apiserver",
        false,
    )
    .map_err(|e| err(e.to_string()))
    .and_then(|()| {
        // The serving pair last: its presence is what marks the set complete.
        // The CA key stays behind in the staging directory, which goes.
        for name in [
            certs::CA_CERT,
            certs::CLIENT_CERT,
            certs::CLIENT_KEY,
            certs::SERVING_KEY,
            certs::SERVING_CERT,
        ] {
            std::fs::rename(staging.join(name), dir.join(name)).map_err(|e| err(e.to_string()))?;
        }
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&staging);
    if result.is_err() && !existed {
        // Only if empty: never more than what this call created.
        let _ = std::fs::remove_dir(dir);
    }
    result.map(|()| paths)
}

/// Hands the current serving key to every handshake.
#[derive(Debug)]
pub struct RotatingResolver {
    /// Swapped whole on rotation; read lock-free on every handshake.
    current: ArcSwap<CertifiedKey>,
}

impl RotatingResolver {
    pub fn new(key: CertifiedKey) -> Self {
        RotatingResolver {
            current: ArcSwap::from_pointee(key),
        }
    }

    /// Serves `key` to new handshakes from now on.
    pub fn rotate(&self, key: CertifiedKey) {
        self.current.store(Arc::new(key));
    }
}

impl ResolvesServerCert for RotatingResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// The rustls configuration of the webhook listener: TLS 1.2 and 1.3 with
/// rustls' safe defaults, ALPN `h2` and `http/1.1`, and, with a client CA,
/// a mandatory client certificate.
pub fn server_config(
    resolver: Arc<RotatingResolver>,
    client_ca: Option<&Path>,
) -> Result<ServerConfig, TlsError> {
    let crypto = Arc::new(provider::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&crypto))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| file_error("--client-ca-file", path, e))?
                .collect::<Result<_, _>>()
                .map_err(|e| file_error("--client-ca-file", path, e))?;
            let (added, _ignored) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(file_error(
                    "--client-ca-file",
                    path,
                    "no usable CA certificate found",
                ));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), crypto)
                .build()
                .map_err(|e| file_error("--client-ca-file", path, e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The subject common name of a DER certificate.
pub fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_owned();
    Some(cn)
}

/// The rustls configuration in force, swapped whole when the serving pair
/// or the client CA changes; each new connection takes the current one.
pub struct LiveConfig {
    current: ArcSwap<ServerConfig>,
    resolver: Arc<RotatingResolver>,
    client_ca: Option<PathBuf>,
}

impl LiveConfig {
    /// Builds the first configuration; errors name the flag at fault.
    pub fn new(
        resolver: Arc<RotatingResolver>,
        client_ca: Option<PathBuf>,
    ) -> Result<Self, TlsError> {
        let config = server_config(Arc::clone(&resolver), client_ca.as_deref())?;
        Ok(LiveConfig {
            current: ArcSwap::from_pointee(config),
            resolver,
            client_ca,
        })
    }

    /// The acceptor for a new connection.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.current.load_full())
    }

    fn reload_client_ca(&self) -> Result<(), TlsError> {
        let config = server_config(Arc::clone(&self.resolver), self.client_ca.as_deref())?;
        self.current.store(Arc::new(config));
        Ok(())
    }
}

/// Reports certificate expiry times (Unix seconds) by certificate name.
pub type ExpiryGauge = dyn Fn(&str, i64) + Send + Sync;

/// Reports the expiry of the serving certificate and of the client CA.
pub fn report_expiry(paths: &CertPaths, client_ca: Option<&Path>, expiry: &ExpiryGauge) {
    if let Some(t) = pem_not_after(&paths.cert) {
        expiry("serving", t);
    }
    if let Some(t) = client_ca.and_then(pem_not_after) {
        expiry("client_ca", t);
    }
}

/// Re-reads the serving certificate files and the client CA every
/// `interval` and swaps in what changed and loads. Returns when `shutdown`
/// fires.
pub async fn watch_cert_files(
    paths: CertPaths,
    live: Arc<LiveConfig>,
    interval: Duration,
    expiry: Arc<ExpiryGauge>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let read = |p: &CertPaths| (std::fs::read(&p.cert).ok(), std::fs::read(&p.key).ok());
    let read_ca = |p: &Option<PathBuf>| p.as_ref().and_then(|p| std::fs::read(p).ok());
    let report = |paths: &CertPaths| report_expiry(paths, live.client_ca.as_deref(), &*expiry);
    let mut last = read(&paths);
    let mut last_ca = read_ca(&live.client_ca);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        let now = read(&paths);
        if now != last {
            last = now;
            match load_certified_key(&paths) {
                Ok(key) => {
                    live.resolver.rotate(key);
                    report(&paths);
                    tracing::info!(cert = %paths.cert.display(), "serving certificate rotated");
                }
                Err(e) => {
                    // A rotation often writes the two files one after the
                    // other; the next tick sees the complete pair.
                    tracing::error!(error = %e, "new serving certificate not loaded; the previous one keeps serving");
                }
            }
        }
        let now_ca = read_ca(&live.client_ca);
        if now_ca != last_ca {
            last_ca = now_ca;
            match live.reload_client_ca() {
                Ok(()) => {
                    report(&paths);
                    tracing::info!("client CA reloaded; new connections are verified against it")
                }
                Err(e) => {
                    tracing::error!(error = %e, "new client CA not loaded; the previous one keeps verifying")
                }
            }
        }
    }
}
