//! Shadow policies (`--shadow-policies DIR`): a second policy set that
//! decides every request again, never enforced, so a change can be watched
//! on live traffic before it is promoted.
//!
//! The shadow set is loaded and hot-reloaded by the same machinery as the
//! live one ([`super::reload`]: built aside, swapped whole, the last good
//! set kept on failure), with its own generation and metrics. It has no
//! part in readiness: a shadow directory that does not load is logged and
//! counted, and serving goes on without a shadow until it loads.
//!
//! Off the critical path: the handler computes the live answer, then hands
//! the request (already parsed, moved, not copied) to a bounded queue with
//! a non-blocking `try_send` and returns the answer. One dedicated thread
//! decides the queued requests under the shadow set, without a cache, and
//! compares. When the queue is full (more than [`QUEUE_ENTRIES`] requests
//! or [`QUEUE_BYTES`] of request bodies waiting) the shadow work is
//! dropped and counted in `cedar_authorizer_shadow_dropped_total`: under
//! overload the shadow falls behind, the live answers never wait for it.
//!
//! Every divergence (the two answers differ) is counted in the
//! `{live, shadow}` matrix and logged with both answers, both sets'
//! determining policies and the replayable request.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts};

use super::decision_log::{DecisionLogger, DivergenceLog};
use super::metrics::{admission_label, name as metric_name, register, Metrics};
use super::reload::{self, ReloadConfig, Target};
use crate::admission::AdmissionInput;
use crate::decision::Verdict;
use crate::engine::{evaluate, evaluate_admission, Outcome};
use crate::policy::Snapshot;
use crate::sar::AccessRequest;
use tokio::sync::watch;

/// Most requests waiting for the shadow decision.
pub const QUEUE_ENTRIES: usize = 1024;

/// Most request-body bytes waiting for the shadow decision (the parsed
/// requests are of the same order as their bodies).
pub const QUEUE_BYTES: usize = 16 * 1024 * 1024;

/// The shadow's metrics, registered beside the others.
pub struct ShadowMetrics {
    /// `{live, shadow}` verdicts of SubjectAccessReviews.
    pub decisions: IntCounterVec,
    /// `{live, shadow}` of AdmissionReviews (`admitted`, `denied`).
    pub admission_decisions: IntCounterVec,
    /// Divergences by review (`authorize`, `admit`): the off-diagonal of
    /// the matrices, which PromQL cannot pick out by comparing two labels.
    pub divergences: IntCounterVec,
    pub dropped: IntCounter,
    pub reloads: IntCounterVec,
    /// 0 while no shadow set is loaded.
    pub generation: IntGauge,
    pub policies: prometheus::IntGaugeVec,
}

impl ShadowMetrics {
    /// Registers the shadow metrics in `metrics`' registry.
    pub fn new(metrics: &Metrics) -> Self {
        let registry = &metrics.registry;
        let counter_vec = |n: &str, help: &str, labels: &[&str]| {
            register(
                registry,
                IntCounterVec::new(Opts::new(metric_name(n), help), labels),
            )
        };
        let m = ShadowMetrics {
            decisions: counter_vec(
                "shadow_decisions_total",
                "SubjectAccessReviews decided again by the shadow policy set, by the live and the shadow decision (allowed, denied, no_opinion).",
                &["live", "shadow"],
            ),
            admission_decisions: counter_vec(
                "shadow_admission_decisions_total",
                "AdmissionReviews decided again by the shadow policy set, by the live and the shadow decision (admitted, denied).",
                &["live", "shadow"],
            ),
            divergences: counter_vec(
                "shadow_divergences_total",
                "Requests the shadow policy set decided differently from the live one, by review (authorize, admit).",
                &["review"],
            ),
            dropped: register(
                registry,
                IntCounter::new(
                    metric_name("shadow_dropped_total"),
                    "Requests not decided by the shadow policy set because its queue was full.",
                ),
            ),
            reloads: counter_vec(
                "shadow_policy_reloads_total",
                "Shadow policy set loads, by result.",
                &["result"],
            ),
            generation: register(
                registry,
                IntGauge::new(
                    metric_name("shadow_policy_generation"),
                    "Generation of the shadow policy set; 0 while none is loaded (an empty directory, or none has loaded yet).",
                ),
            ),
            policies: register(
                registry,
                prometheus::IntGaugeVec::new(
                    Opts::new(
                        metric_name("shadow_policies"),
                        "Policies in the shadow policy set, by effect.",
                    ),
                    &["effect"],
                ),
            ),
        };
        // Every cell of both matrices exists from the start, so a
        // divergence rate is 0 rather than absent before the first one.
        let verdicts = [Verdict::Allowed, Verdict::Denied, Verdict::NoOpinion];
        for live in verdicts {
            for shadow in verdicts {
                m.decisions
                    .with_label_values(&[live.as_str(), shadow.as_str()]);
            }
        }
        for live in ["admitted", "denied"] {
            for shadow in ["admitted", "denied"] {
                m.admission_decisions.with_label_values(&[live, shadow]);
            }
        }
        for r in ["authorize", "admit"] {
            m.divergences.with_label_values(&[r]);
        }
        for r in ["success", "failure", "unchanged"] {
            m.reloads.with_label_values(&[r]);
        }
        m
    }
}

/// The shadow policy set, as the reloader and the worker share it.
pub struct ShadowSet {
    /// Swapped whole by the reloader, read by the worker without locking.
    current: ArcSwapOption<Snapshot>,
    /// The last generation installed: generations keep rising across an
    /// emptied directory, so a log record names one set only.
    generation: AtomicU64,
    metrics: ShadowMetrics,
    log: DecisionLogger,
}

impl ShadowSet {
    pub fn new(metrics: ShadowMetrics, log: DecisionLogger) -> Self {
        ShadowSet {
            current: ArcSwapOption::empty(),
            generation: AtomicU64::new(0),
            metrics,
            log,
        }
    }

    /// The SAR under the shadow set, compared with the live answer.
    /// Exempt principals are exempt in both (the exemptions are shared), so
    /// they are not evaluated again.
    fn decide(&self, job: &SarJob) {
        let Some(snapshot) = self.current.load_full() else {
            return;
        };
        let shadow = if job.live.decision.exempt {
            Arc::clone(&job.live.decision)
        } else {
            Arc::new(evaluate(&snapshot, &job.request))
        };
        let (live, shadowed) = (job.live.decision.verdict, shadow.verdict);
        self.metrics
            .decisions
            .with_label_values(&[live.as_str(), shadowed.as_str()])
            .inc();
        if live != shadowed {
            self.metrics
                .divergences
                .with_label_values(&["authorize"])
                .inc();
            self.log.divergence(&DivergenceLog::Authorize {
                request: &job.request,
                live: &job.live,
                total: job.total,
                shadow: &shadow,
                shadow_generation: snapshot.generation,
            });
        }
    }

    /// The AdmissionReview under the shadow set, compared with the live
    /// answer by what the apiserver sees (admitted or denied).
    fn admit(&self, job: &AdmitJob) {
        let Some(snapshot) = self.current.load_full() else {
            return;
        };
        let shadow = if job.live.decision.exempt {
            Arc::clone(&job.live.decision)
        } else {
            Arc::new(evaluate_admission(&snapshot, &job.input))
        };
        let live = admission_label(job.live.decision.verdict);
        let shadowed = admission_label(shadow.verdict);
        self.metrics
            .admission_decisions
            .with_label_values(&[live, shadowed])
            .inc();
        if live != shadowed {
            self.metrics.divergences.with_label_values(&["admit"]).inc();
            self.log.divergence(&DivergenceLog::Admit {
                input: &job.input,
                live: &job.live,
                total: job.total,
                shadow: &shadow,
                shadow_generation: snapshot.generation,
            });
        }
    }
}

impl Target for ShadowSet {
    fn name(&self) -> &'static str {
        "shadow policy set"
    }

    fn current(&self) -> Option<Arc<Snapshot>> {
        self.current.load_full()
    }

    fn install(&self, snapshot: Snapshot) {
        let (permits, forbids) = snapshot.effect_counts();
        let generation = snapshot.generation;
        self.current.store(Some(Arc::new(snapshot)));
        self.generation.store(generation, Ordering::Release);
        self.metrics.generation.set(generation as i64);
        self.metrics
            .policies
            .with_label_values(&["permit"])
            .set(permits as i64);
        self.metrics
            .policies
            .with_label_values(&["forbid"])
            .set(forbids as i64);
    }

    fn count(&self, result: &'static str) {
        self.metrics.reloads.with_label_values(&[result]).inc();
    }

    fn on_failure(&self) -> &'static str {
        "serving is not affected; the previous shadow set, if any, keeps shadowing"
    }

    fn next_generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire) + 1
    }

    /// An empty shadow directory means no shadow: nothing staged.
    fn clear(&self) -> Option<bool> {
        let dropped = self.current.swap(None).is_some();
        self.metrics.generation.set(0);
        for effect in ["permit", "forbid"] {
            self.metrics.policies.with_label_values(&[effect]).set(0);
        }
        Some(dropped)
    }
}

/// Loads the shadow directory once and starts its reloader and its worker.
/// A directory that does not load is logged and counted, never an error:
/// the reloader picks it up once it loads. `None` only when the worker
/// thread cannot start (logged; the server then runs without a shadow).
pub(super) async fn start(
    metrics: &Metrics,
    log: DecisionLogger,
    config: ReloadConfig,
    shutdown: watch::Receiver<bool>,
) -> Option<(ShadowQueue, tokio::task::JoinHandle<()>)> {
    let set = Arc::new(ShadowSet::new(ShadowMetrics::new(metrics), log));
    let first = {
        let (set, config) = (Arc::clone(&set), config.clone());
        tokio::task::spawn_blocking(move || reload::reload_now(&*set, &config, true)).await
    };
    match first {
        Err(_) => {
            set.count("failure");
            tracing::error!(dir = %config.dir.display(), "building the shadow policy set panicked; serving without a shadow until it loads");
        }
        Ok(reload::ReloadResult::Unchanged) => {
            tracing::info!(dir = %config.dir.display(), "no shadow policy files; nothing is shadowed until some load");
        }
        Ok(_) => {}
    }
    let queue = match ShadowQueue::start(Arc::clone(&set)) {
        Ok(q) => q,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the shadow worker; serving without a shadow");
            return None;
        }
    };
    let reloader = reload::spawn(set, config, shutdown);
    Some((queue, reloader))
}

/// A SubjectAccessReview answered live, waiting for the shadow.
struct SarJob {
    request: AccessRequest,
    live: Outcome,
    total: Duration,
}

/// An AdmissionReview answered live, waiting for the shadow.
struct AdmitJob {
    input: AdmissionInput,
    live: Outcome,
    total: Duration,
}

/// Boxed, so the queue's preallocated slots stay small.
enum Job {
    Authorize(Box<SarJob>),
    Admit(Box<AdmitJob>),
}

/// A queued job with the bytes it holds of the queue's budget.
struct Queued {
    job: Job,
    bytes: usize,
}

/// The request handlers' end of the shadow queue.
pub struct ShadowQueue {
    tx: SyncSender<Queued>,
    /// Request-body bytes queued now, shared with the worker that frees them.
    bytes: Arc<AtomicUsize>,
    set: Arc<ShadowSet>,
}

impl ShadowQueue {
    /// Starts the worker thread deciding under `set`; it ends when the
    /// queue is dropped (the server stopped) and the queue is empty.
    pub fn start(set: Arc<ShadowSet>) -> std::io::Result<ShadowQueue> {
        let (queue, rx) = ShadowQueue::unattended(set);
        let (set, bytes) = (Arc::clone(&queue.set), Arc::clone(&queue.bytes));
        std::thread::Builder::new()
            .name("shadow".into())
            .spawn(move || work(&set, &rx, &bytes))?;
        Ok(queue)
    }

    /// The queue and the receiving end its worker would drain.
    fn unattended(set: Arc<ShadowSet>) -> (ShadowQueue, Receiver<Queued>) {
        let (tx, rx) = sync_channel(QUEUE_ENTRIES);
        let bytes = Arc::new(AtomicUsize::new(0));
        (ShadowQueue { tx, bytes, set }, rx)
    }

    /// Queues an answered SAR for the shadow; `body_bytes` is the size of
    /// its request body. Never waits.
    pub fn authorize(
        &self,
        request: AccessRequest,
        live: &Outcome,
        total: Duration,
        body_bytes: usize,
    ) {
        self.offer(
            Job::Authorize(Box::new(SarJob {
                request,
                live: live.clone(),
                total,
            })),
            body_bytes,
        );
    }

    /// Queues an answered AdmissionReview for the shadow. Never waits.
    pub fn admit(&self, input: AdmissionInput, live: &Outcome, total: Duration, body_bytes: usize) {
        self.offer(
            Job::Admit(Box::new(AdmitJob {
                input,
                live: live.clone(),
                total,
            })),
            body_bytes,
        );
    }

    fn offer(&self, job: Job, bytes: usize) {
        // Nothing to compare with while no shadow set has loaded.
        if self.set.current.load().is_none() {
            return;
        }
        let bytes = bytes.max(1);
        let held = self.bytes.fetch_add(bytes, Ordering::AcqRel);
        if held + bytes > QUEUE_BYTES {
            self.bytes.fetch_sub(bytes, Ordering::AcqRel);
            self.set.metrics.dropped.inc();
            return;
        }
        match self.tx.try_send(Queued { job, bytes }) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.bytes.fetch_sub(bytes, Ordering::AcqRel);
                self.set.metrics.dropped.inc();
            }
        }
    }
}

/// The worker: decides each queued request under the shadow set. A panic
/// in one evaluation is caught, so the shadow never stops for good.
fn work(set: &ShadowSet, rx: &Receiver<Queued>, bytes: &AtomicUsize) {
    while let Ok(queued) = rx.recv() {
        let decided =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &queued.job {
                Job::Authorize(j) => set.decide(j),
                Job::Admit(j) => set.admit(j),
            }));
        if decided.is_err() {
            tracing::error!(
                "the shadow evaluation of a request panicked; the live answer was not affected"
            );
        }
        drop(queued.job);
        bytes.fetch_sub(queued.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::Decision;
    use crate::policy::{PolicyFile, SchemaBundle};

    fn set() -> Arc<ShadowSet> {
        let metrics = Metrics::new(false);
        let log = DecisionLogger {
            level: super::super::DecisionLog::None,
            json: true,
        };
        let set = Arc::new(ShadowSet::new(ShadowMetrics::new(&metrics), log));
        let schema = Arc::new(SchemaBundle::load(None).unwrap());
        let files = [PolicyFile {
            relative: "p.cedar".into(),
            path: "p.cedar".into(),
            text: "permit(principal, action, resource);".into(),
        }];
        set.install(Snapshot::build(&files, &schema, 1).unwrap());
        set
    }

    fn request() -> AccessRequest {
        let body = br#"{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview",
            "spec":{"user":"u","resourceAttributes":{"verb":"get","resource":"pods"}}}"#;
        crate::sar::parse_review(body).unwrap().request
    }

    fn live() -> Outcome {
        Outcome {
            decision: Arc::new(Decision::exempt()),
            cache_hit: false,
            evaluator: None,
            elapsed: Duration::ZERO,
            generation: 1,
        }
    }

    #[test]
    fn shadow_work_beyond_the_queue_bounds_is_dropped_and_counted() {
        let set = set();
        // No worker drains it: the queue fills up.
        let (queue, rx) = ShadowQueue::unattended(Arc::clone(&set));
        for _ in 0..QUEUE_ENTRIES + 5 {
            queue.authorize(request(), &live(), Duration::ZERO, 1);
        }
        assert_eq!(set.metrics.dropped.get(), 5);
        assert_eq!(queue.bytes.load(Ordering::Acquire), QUEUE_ENTRIES);

        // Drained, one request larger than the byte bound is still dropped.
        let drained = rx.try_iter().count();
        assert_eq!(drained, QUEUE_ENTRIES);
        queue.bytes.store(0, Ordering::Release);
        queue.authorize(request(), &live(), Duration::ZERO, QUEUE_BYTES + 1);
        assert_eq!(set.metrics.dropped.get(), 6);
        assert_eq!(queue.bytes.load(Ordering::Acquire), 0);
        queue.authorize(request(), &live(), Duration::ZERO, QUEUE_BYTES);
        assert_eq!(set.metrics.dropped.get(), 6, "exactly the bound fits");
    }

    #[test]
    fn nothing_is_queued_without_a_shadow_set() {
        let set = set();
        assert_eq!(set.clear(), Some(true));
        let (queue, rx) = ShadowQueue::unattended(Arc::clone(&set));
        queue.authorize(request(), &live(), Duration::ZERO, 1);
        assert_eq!(rx.try_iter().count(), 0);
        assert_eq!(set.metrics.dropped.get(), 0);
        assert_eq!(set.next_generation(), 2, "generations keep rising");
    }
}
