//! The webhook listener: accept within the connection cap, TLS handshake
//! (bounded in time, client certificate checked), HTTP/1.1 or HTTP/2 by
//! ALPN with a first-byte deadline, and a graceful drain on shutdown.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::deadline::FirstByteDeadline;
use super::metrics::Metrics;
use super::tls;

/// A TLS handshake that has not finished in this time is abandoned, so
/// port scanners and stuck clients cannot hold connection slots.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// HTTP/2 streams one connection may have open at once. The apiserver
/// opens another connection when it needs more (client-go does not insist
/// on the limit), so this bounds what one connection can make us hold
/// without limiting throughput.
const MAX_CONCURRENT_STREAMS: u32 = 64;

/// A connection that has read nothing for this long is closed. client-go
/// pings idle HTTP/2 connections every 30 s, so the apiserver's stay up.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// The limits of the listener.
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub shutdown_grace_period: Duration,
    /// With a client CA: the certificate subject CNs served (empty: any).
    pub allowed_client_cns: Vec<String>,
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains
/// open connections for at most the grace period.
pub(crate) async fn serve(
    listener: TcpListener,
    tls_config: Arc<tls::LiveConfig>,
    router: Router,
    metrics: Arc<Metrics>,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let allowed_cns = Arc::new(limits.allowed_client_cns.clone());
    loop {
        // Wait for a free slot before accepting: excess connections queue
        // in the kernel's backlog instead of being dropped.
        let permit = tokio::select! {
            p = Arc::clone(&slots).acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            () = &mut shutdown => break,
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
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let acceptor = tls_config.acceptor();
        let metrics = Arc::clone(&metrics);
        let allowed_cns = Arc::clone(&allowed_cns);
        let service = TowerToHyperService::new(router.clone());
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let header_read_timeout = limits.header_read_timeout;
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
            let session = tls.get_ref().1;
            tracing::debug!(
                %peer,
                alpn = session.alpn_protocol().map(String::from_utf8_lossy).as_deref().unwrap_or("none"),
                http = match session.alpn_protocol() { Some(b"h2") => "HTTP/2", Some(_) => "HTTP/1.1", None => "sniffed from the first bytes" },
                tls = ?session.protocol_version(),
                "connection accepted"
            );
            if !allowed_cns.is_empty() {
                let cn = session
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(|c| tls::common_name(c));
                if !cn.as_ref().is_some_and(|cn| allowed_cns.contains(cn)) {
                    metrics.tls_handshake_failures.inc();
                    tracing::warn!(%peer, client_cn = ?cn, "client certificate subject not in --allowed-client-cn; connection closed");
                    return;
                }
            }
            let io = FirstByteDeadline::new(tls, header_read_timeout, IDLE_TIMEOUT);
            let conn = builder.serve_connection(TokioIo::new(io), service);
            let _ = watcher.watch(conn.into_owned()).await;
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace_period, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("grace period over; closing connections still open");
    }
}
