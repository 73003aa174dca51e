//! A connection that must start talking in time and keep talking.
//!
//! hyper's header-read timeout runs only once HTTP/1.1 has the connection,
//! and HTTP/2 has none; before either, hyper-util reads the first bytes to
//! tell the protocols apart, with no limit. A client that completes the TLS
//! handshake and then stays silent would hold a connection slot for good,
//! and so would an HTTP/2 client that goes quiet after its first request.
//! [`FirstByteDeadline`] fails a read with `TimedOut` when no byte has
//! arrived within the first-byte limit of the handshake, or, after that,
//! within the idle limit of the last byte read. The apiserver's client
//! pings its HTTP/2 connections (client-go's health check) well within the
//! idle limit, so only clients that really went away are closed.
//!
//! Reads only note the time; the timer is moved when it fires and the
//! connection turns out to have talked since, so a busy connection does
//! not re-arm a timer on every read.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Wraps an I/O stream whose reads must not stay silent for too long.
pub struct FirstByteDeadline<T> {
    inner: T,
    deadline: Pin<Box<Sleep>>,
    /// Silence allowed between reads once the first byte has arrived.
    idle: Duration,
    /// No byte read yet: the deadline is the first-byte one.
    first: bool,
    /// When the last byte arrived (meaningful once `first` is false).
    last_read: Instant,
}

impl<T> FirstByteDeadline<T> {
    /// The first byte must arrive within `first_byte` from now; after that,
    /// every silence must end within `idle`.
    pub fn new(inner: T, first_byte: Duration, idle: Duration) -> Self {
        FirstByteDeadline {
            inner,
            deadline: Box::pin(tokio::time::sleep(first_byte)),
            idle,
            first: true,
            last_read: Instant::now(),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for FirstByteDeadline<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.last_read = Instant::now();
                    if this.first {
                        // From now on the idle limit applies, whichever
                        // of the two is longer.
                        this.first = false;
                        this.deadline.as_mut().reset(this.last_read + this.idle);
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => loop {
                if this.deadline.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                if !this.first {
                    // Fired, but the connection may have talked since the
                    // timer was set: the silence is measured from the last
                    // byte.
                    let due = this.last_read + this.idle;
                    if due > Instant::now() {
                        this.deadline.as_mut().reset(due);
                        continue;
                    }
                }
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    if this.first {
                        "no request within --header-read-timeout of the handshake"
                    } else {
                        "connection idle for longer than the idle limit"
                    },
                )));
            },
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for FirstByteDeadline<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const FIRST: Duration = Duration::from_secs(5);
    const IDLE: Duration = Duration::from_secs(60);

    #[tokio::test(start_paused = true)]
    async fn silence_after_the_handshake_is_an_error() {
        let (_client, server) = tokio::io::duplex(64);
        let mut silent = FirstByteDeadline::new(server, FIRST, IDLE);
        let started = tokio::time::Instant::now();
        let err = silent.read(&mut [0u8; 8]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("--header-read-timeout"));
        assert_eq!(started.elapsed(), FIRST);
    }

    #[tokio::test(start_paused = true)]
    async fn talk_resets_the_deadline_and_idleness_ends_the_connection() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut talking = FirstByteDeadline::new(server, FIRST, IDLE);
        let mut buf = [0u8; 8];
        client.write_all(b"x").await.unwrap();
        assert_eq!(talking.read(&mut buf).await.unwrap(), 1);
        // Longer than the first-byte limit, shorter than the idle one: fine.
        for _ in 0..3 {
            tokio::time::sleep(IDLE - Duration::from_secs(1)).await;
            client.write_all(b"y").await.unwrap();
            assert_eq!(talking.read(&mut buf).await.unwrap(), 1);
        }
        let quiet_since = tokio::time::Instant::now();
        let err = talking.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("idle"));
        assert_eq!(quiet_since.elapsed(), IDLE);
    }

    #[tokio::test(start_paused = true)]
    async fn the_idle_limit_applies_after_the_first_byte_even_when_shorter() {
        let (mut client, server) = tokio::io::duplex(64);
        let long_first = IDLE * 3;
        let mut talking = FirstByteDeadline::new(server, long_first, IDLE);
        client.write_all(b"x").await.unwrap();
        assert_eq!(talking.read(&mut [0u8; 8]).await.unwrap(), 1);
        let quiet_since = tokio::time::Instant::now();
        let err = talking.read(&mut [0u8; 8]).await.unwrap_err();
        assert!(err.to_string().contains("idle"));
        assert_eq!(quiet_since.elapsed(), IDLE);
    }
}
