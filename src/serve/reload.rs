//! Hot reload of the policy directory.
//!
//! Triggers: file-system events (notify, recursive; a ConfigMap's `..data`
//! swap shows up as events in the watched directory), a periodic digest
//! poll as a backstop for missed events, and SIGHUP. Bursts of events (an
//! editor's save, a `git pull`) are debounced into one load. Loads run on
//! the blocking pool, off the request path; a set that fails to load is
//! reported with file:line and the previous one keeps serving.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};

use super::metrics::Metrics;
use crate::engine::Engine;
use crate::policy::{self, LoadError, SchemaBundle, Snapshot};

/// How and what to reload.
#[derive(Clone)]
pub struct ReloadConfig {
    pub dir: PathBuf,
    pub schema: Arc<SchemaBundle>,
    /// Backstop: re-read the directory this often, reload when it changed.
    pub poll_interval: Duration,
    /// Wait this long after an event for the burst to end.
    pub debounce: Duration,
}

/// What one reload attempt did.
#[derive(Debug)]
pub enum ReloadResult {
    /// The files are as loaded; nothing to do.
    Unchanged,
    /// A new generation is live.
    Loaded { generation: u64 },
    /// The files do not load; the previous set keeps serving.
    Failed(LoadError),
}

/// Loads the directory if it changed and installs the result. Blocking:
/// call it from the blocking pool.
pub fn reload_now(
    engine: &Engine,
    metrics: &Metrics,
    config: &ReloadConfig,
    force: bool,
) -> ReloadResult {
    let current = engine.snapshot();
    let result = policy::read_dir(&config.dir).and_then(|files| {
        if !force && policy::digest(&files) == current.digest {
            return Ok(None);
        }
        Snapshot::build(&files, &config.schema, current.generation + 1).map(Some)
    });
    match result {
        Ok(None) => ReloadResult::Unchanged,
        Ok(Some(snapshot)) => {
            let generation = snapshot.generation;
            let (permits, forbids) = snapshot.effect_counts();
            for w in &snapshot.warnings {
                tracing::warn!(diagnostic = %w, "policy validation warning");
            }
            engine.install(snapshot);
            // Metrics after the swap: whoever sees the new generation there
            // is answered by it.
            metrics.policy_set_installed(&engine.snapshot());
            metrics.policy_reloads.with_label_values(&["success"]).inc();
            tracing::info!(generation, permits, forbids, dir = %config.dir.display(), "policy set loaded");
            ReloadResult::Loaded { generation }
        }
        Err(e) => {
            metrics.policy_reloads.with_label_values(&["failure"]).inc();
            let diagnostics = match &e {
                LoadError::Invalid(d) => d.iter().map(|d| d.to_string()).collect(),
                other => vec![other.to_string()],
            };
            tracing::error!(
                generation = current.generation,
                errors = ?diagnostics,
                dir = %config.dir.display(),
                "policy set not loaded; the previous set keeps serving"
            );
            ReloadResult::Failed(e)
        }
    }
}

/// Starts watching the policy directory; the returned task runs until
/// `shutdown` fires. The watch and the SIGHUP handler are in place when this
/// returns, so no change made after start-up is missed (and a SIGHUP cannot
/// hit the default action, which would end the process).
pub fn spawn(
    engine: Arc<Engine>,
    metrics: Arc<Metrics>,
    config: ReloadConfig,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let (tx, events) = mpsc::channel::<()>(1);
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if res.is_ok() {
            // A full channel already holds a pending reload.
            let _ = tx.try_send(());
        }
    });
    let mut watcher = match watcher {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "file watching unavailable; relying on the poll");
            None
        }
    };
    watch_dir(&mut watcher, &config);
    #[cfg(unix)]
    let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|e| tracing::warn!(error = %e, "cannot handle SIGHUP"))
        .ok();
    #[cfg(not(unix))]
    let hangup: Option<()> = None;
    tokio::spawn(run(
        engine, metrics, config, shutdown, watcher, events, hangup,
    ))
}

fn watch_dir(watcher: &mut Option<notify::RecommendedWatcher>, config: &ReloadConfig) {
    if let Some(w) = watcher {
        if let Err(e) = w.watch(&config.dir, RecursiveMode::Recursive) {
            tracing::warn!(error = %e, dir = %config.dir.display(), "cannot watch the policy directory; relying on the poll");
        }
    }
}

#[cfg(unix)]
type Hangup = tokio::signal::unix::Signal;
#[cfg(not(unix))]
type Hangup = ();

async fn run(
    engine: Arc<Engine>,
    metrics: Arc<Metrics>,
    config: ReloadConfig,
    mut shutdown: watch::Receiver<bool>,
    mut watcher: Option<notify::RecommendedWatcher>,
    mut events: mpsc::Receiver<()>,
    #[allow(unused_mut)] mut hangup: Option<Hangup>,
) {
    let mut poll = tokio::time::interval(config.poll_interval);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    poll.tick().await;
    loop {
        let force = tokio::select! {
            _ = shutdown.changed() => return,
            Some(()) = events.recv() => {
                // Let the burst finish, then take whatever arrived meanwhile.
                tokio::time::sleep(config.debounce).await;
                while events.try_recv().is_ok() {}
                false
            }
            _ = poll.tick() => false,
            Some(()) = async {
                #[cfg(unix)]
                if let Some(h) = hangup.as_mut() {
                    return h.recv().await;
                }
                std::future::pending::<Option<()>>().await
            } => {
                tracing::info!("SIGHUP: reloading policies");
                true
            }
        };
        let (e, m, c) = (Arc::clone(&engine), Arc::clone(&metrics), config.clone());
        let result = tokio::task::spawn_blocking(move || reload_now(&e, &m, &c, force)).await;
        if let Ok(ReloadResult::Loaded { .. } | ReloadResult::Failed(_)) = result {
            // The directory may have been replaced (deleted and recreated,
            // or moved): watch it again. Watching an already watched
            // directory is harmless.
            watch_dir(&mut watcher, &config);
        }
    }
}
