//! Hot reload of the policy directory.
//!
//! Triggers: file-system events (notify, recursive; a ConfigMap's `..data`
//! swap shows up as events in the watched directory), a periodic digest
//! poll as a backstop for missed events, and SIGHUP. Reads are not events:
//! notify reports the reloader's own opens and reads of the directory, and
//! counting them would make an idle server reload itself forever. Bursts
//! of events (an editor's save, a `git pull`) are debounced into one load,
//! and the debounce is trailing: the load waits until the directory has
//! been quiet for the debounce time (at most [`MAX_DEBOUNCE_WAIT`]). After
//! a build the files are read again, and a set whose files moved meanwhile
//! is built again, so a slow change is not left served half-applied.
//!
//! Loads run on the blocking pool, off the request path; a set that fails
//! to load, or whose build panics, is reported with file:line and counted,
//! and the previous one keeps serving. When the directory itself is
//! replaced (deleted and recreated, or a new mount), it is watched again.
//!
//! The same machinery reloads the live set and the shadow set
//! (`--shadow-policies`): each is a [`Target`], which says what is loaded
//! now, installs a new snapshot and counts the results in its own metrics.
//!
//! With Policy objects (`--policy-source crd|both`), a change to the
//! objects is one more trigger, the objects are merged into the sources
//! read (`store::read_sources`), and nothing is built before they have been
//! listed once; every attempt is reported to the store for the objects'
//! status.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};

use super::metrics::Metrics;
use crate::engine::Engine;
use crate::policy::{self, LoadError, SchemaBundle, Snapshot};
use crate::store::{self, ObjectStore};

/// How and what to reload.
#[derive(Clone)]
pub struct ReloadConfig {
    pub dir: PathBuf,
    /// Read `dir` (false with `--policy-source crd`).
    pub read_dir: bool,
    /// Policy objects, with `--policy-source crd|both`.
    pub objects: Option<ObjectStore>,
    /// Set once the set in force holds every source (with objects: once
    /// they were listed and a set with them loaded); shared with the
    /// handlers, which refuse to answer before, and `/readyz`.
    pub serving: Arc<AtomicBool>,
    pub schema: Arc<SchemaBundle>,
    /// Backstop: re-read the directory this often, reload when it changed.
    pub poll_interval: Duration,
    /// Wait this long after an event for the burst to end.
    pub debounce: Duration,
}

/// The longest a burst of events can postpone a load.
pub const MAX_DEBOUNCE_WAIT: Duration = Duration::from_secs(5);

/// Builds attempted in one reload while the files keep moving.
const MAX_BUILDS: usize = 3;

/// A policy set the reloader keeps up to date with its directory.
pub trait Target: Send + Sync + 'static {
    /// What the logs call it (`policy set`, `shadow policy set`).
    fn name(&self) -> &'static str;
    /// The set in force now; `None` while none ever loaded.
    fn current(&self) -> Option<Arc<Snapshot>>;
    /// Swaps in a new set whole and reports it in the metrics.
    fn install(&self, snapshot: Snapshot);
    /// Counts one reload attempt by result (`success`, `failure`, `unchanged`).
    fn count(&self, result: &'static str);
    /// What happens instead when a load fails, for the error log.
    fn on_failure(&self) -> &'static str {
        "the previous set keeps serving"
    }
    /// The generation the next loaded set gets.
    fn next_generation(&self) -> u64 {
        self.current().map_or(1, |c| c.generation + 1)
    }
    /// For a set that may be absent: drops it because its directory holds
    /// no policy file, and says whether one was dropped. `None` (the live
    /// set): a directory without policies is a failed load.
    fn clear(&self) -> Option<bool> {
        None
    }
}

/// The live set: the engine's snapshot and the main metrics.
pub struct Live {
    pub engine: Arc<Engine>,
    pub metrics: Arc<Metrics>,
}

impl Target for Live {
    fn name(&self) -> &'static str {
        "policy set"
    }

    fn current(&self) -> Option<Arc<Snapshot>> {
        Some(self.engine.snapshot())
    }

    fn install(&self, snapshot: Snapshot) {
        self.engine.install(snapshot);
        // Metrics after the swap: whoever sees the new generation there
        // is answered by it.
        self.metrics.policy_set_installed(&self.engine.snapshot());
    }

    fn count(&self, result: &'static str) {
        self.metrics
            .policy_reloads
            .with_label_values(&[result])
            .inc();
    }
}

/// What one reload attempt did.
#[derive(Debug)]
pub enum ReloadResult {
    /// The files are as loaded; nothing to do.
    Unchanged,
    /// A new generation is live.
    Loaded,
    /// The files do not load; the previous set keeps serving.
    Failed,
}

/// Loads the directory if it changed and installs the result. Blocking:
/// call it from the blocking pool.
pub fn reload_now(target: &dyn Target, config: &ReloadConfig, force: bool) -> ReloadResult {
    if config.objects.as_ref().is_some_and(|o| !o.is_synced()) {
        // Half the sources are not known yet: nothing to build.
        return ReloadResult::Unchanged;
    }
    let read = || {
        store::read_sources(
            config.read_dir.then_some(config.dir.as_path()),
            config.objects.as_ref(),
        )
    };
    let current = target.current();
    let generation = current.as_ref().map_or(0, |c| c.generation);
    let digest = current.as_ref().map(|c| c.digest);
    let mut result = Ok(None);
    for _ in 0..MAX_BUILDS {
        result = read().and_then(|files| {
            if !force && Some(policy::digest(&files)) == digest {
                return Ok(None);
            }
            Snapshot::build(&files, &config.schema, target.next_generation())
                .map(|s| Some((s, files)))
        });
        // Built from files that have moved on since: build again from the
        // files as they are now.
        let moved = match &result {
            Ok(Some((built, _))) => read()
                .map(|now| policy::digest(&now) != built.digest)
                .unwrap_or(false),
            _ => false,
        };
        if !moved {
            break;
        }
        tracing::info!(dir = %config.dir.display(), set = target.name(), "policy files changed during the build; building again");
    }
    match result {
        Ok(None) => {
            if let Some(o) = &config.objects {
                o.record(None);
            }
            config.serving.store(true, Ordering::SeqCst);
            target.count("unchanged");
            ReloadResult::Unchanged
        }
        Ok(Some((snapshot, files))) => {
            let generation = snapshot.generation;
            let (permits, forbids) = snapshot.effect_counts();
            for w in &snapshot.warnings {
                tracing::warn!(diagnostic = %w, "policy validation warning");
            }
            target.install(snapshot);
            config.serving.store(true, Ordering::SeqCst);
            if let Some(o) = &config.objects {
                o.record(Some(Ok(&files)));
            }
            target.count("success");
            tracing::info!(generation, permits, forbids, dir = %config.dir.display(), "{} loaded", target.name());
            ReloadResult::Loaded
        }
        Err(e) => {
            // A set that may be absent is dropped by emptying its directory.
            let cleared = matches!(e, LoadError::Empty(_))
                .then(|| target.clear())
                .flatten();
            if let Some(dropped) = cleared {
                target.count(if dropped { "success" } else { "unchanged" });
                if dropped {
                    tracing::info!(dir = %config.dir.display(), "no policy files: {} cleared", target.name());
                    return ReloadResult::Loaded;
                }
                return ReloadResult::Unchanged;
            }
            target.count("failure");
            let diagnostics = match &e {
                LoadError::Invalid(d) => d.iter().map(|d| d.to_string()).collect(),
                other => vec![other.to_string()],
            };
            if let Some(o) = &config.objects {
                let diags = match &e {
                    LoadError::Invalid(d) => d.clone(),
                    other => vec![policy::Diagnostic::at_offset(
                        config.dir.clone(),
                        "",
                        0,
                        other.to_string(),
                        "error",
                    )],
                };
                o.record(Some(Err(&diags)));
            }
            tracing::error!(
                generation,
                errors = ?diagnostics,
                dir = %config.dir.display(),
                "{} not loaded; {}",
                target.name(),
                target.on_failure()
            );
            ReloadResult::Failed
        }
    }
}

/// True for the events that can mean the policy files changed: not reads,
/// opens or closes after reading (the reloader's own, among others).
fn is_change(event: &notify::Event) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind};
    match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// The identity of the directory itself, to notice it was replaced.
fn dir_identity(dir: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir).ok().map(|m| (m.dev(), m.ino()))
}

/// Starts watching the policy directory; the returned task runs until
/// `shutdown` fires. The watch and the SIGHUP handler are in place when this
/// returns, so no change made after start-up is missed (and a SIGHUP cannot
/// hit the default action, which would end the process).
pub fn spawn(
    target: Arc<dyn Target>,
    config: ReloadConfig,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let (tx, events) = mpsc::channel::<()>(1);
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if res.as_ref().is_ok_and(is_change) {
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
    tokio::spawn(run(target, config, shutdown, watcher, events, hangup))
}

fn watch_dir(watcher: &mut Option<notify::RecommendedWatcher>, config: &ReloadConfig) {
    if !config.read_dir {
        return;
    }
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
    target: Arc<dyn Target>,
    config: ReloadConfig,
    mut shutdown: watch::Receiver<bool>,
    mut watcher: Option<notify::RecommendedWatcher>,
    mut events: mpsc::Receiver<()>,
    #[allow(unused_mut)] mut hangup: Option<Hangup>,
) {
    let mut poll = tokio::time::interval(config.poll_interval);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    poll.tick().await;
    let mut watched = dir_identity(&config.dir);
    let mut objects = config.objects.as_ref().map(ObjectStore::subscribe);
    loop {
        let force = tokio::select! {
            _ = shutdown.changed() => return,
            Some(()) = async {
                match objects.as_mut() {
                    Some(rx) => rx.changed().await.ok(),
                    None => std::future::pending().await,
                }
            } => {
                // A burst of object events (kubectl apply -f of many) is
                // one load.
                tokio::time::sleep(config.debounce).await;
                if let Some(rx) = objects.as_mut() {
                    rx.borrow_and_update();
                }
                false
            }
            Some(()) = events.recv() => {
                quiet(&mut events, config.debounce).await;
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
        let (t, c) = (Arc::clone(&target), config.clone());
        let result = tokio::task::spawn_blocking(move || reload_now(&*t, &c, force)).await;
        let replaced = match &result {
            Ok(ReloadResult::Loaded | ReloadResult::Failed) => true,
            Ok(ReloadResult::Unchanged) => false,
            Err(panic) => {
                target.count("failure");
                tracing::error!(
                    error = %panic,
                    dir = %config.dir.display(),
                    set = target.name(),
                    "building the policy set panicked; {}",
                    target.on_failure()
                );
                true
            }
        };
        // The directory may have been replaced (deleted and recreated,
        // moved, or a new mount with the same contents): watch it again.
        // Watching an already watched directory is harmless.
        let now = dir_identity(&config.dir);
        if replaced || now != watched {
            watch_dir(&mut watcher, &config);
            watched = now;
        }
    }
}

/// Waits until no event has arrived for `debounce`, or for at most
/// [`MAX_DEBOUNCE_WAIT`] in all.
async fn quiet(events: &mut mpsc::Receiver<()>, debounce: Duration) {
    let give_up = tokio::time::Instant::now() + MAX_DEBOUNCE_WAIT;
    loop {
        let until = (tokio::time::Instant::now() + debounce).min(give_up);
        match tokio::time::timeout_at(until, events.recv()).await {
            Ok(Some(())) if tokio::time::Instant::now() < give_up => continue,
            _ => return,
        }
    }
}
