//! The Prometheus registry and every metric handle.
//!
//! A registry of our own (never the global default), so tests can run
//! several servers in one process and nothing else can register into it.
//! No label ever carries a username, namespace or resource name: label
//! values come from fixed sets, or from policy ids, which are bounded by the
//! policy set itself (and can be switched off).

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::decision::Verdict;
use crate::engine::{Evaluator, Outcome};
use crate::policy::Snapshot;

/// Buckets from 10 µs to 1 s: decisions take microseconds, and the
/// interesting tail is far below the apiserver's webhook timeout.
const LATENCY_BUCKETS: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0,
];

/// Every metric the webhook exports.
pub struct Metrics {
    pub registry: Registry,
    pub request_errors: IntCounterVec,
    pub evaluation_duration: Histogram,
    pub admission_requests: IntCounterVec,
    pub admission_duration: HistogramVec,
    pub cache_entries: IntGauge,
    pub cache_bytes: IntGauge,
    pub policies: IntGaugeVec,
    pub policy_reloads: IntCounterVec,
    pub policy_generation: IntGauge,
    pub last_reload_success: IntGauge,
    pub policy_decisions: IntCounterVec,
    pub evaluation_errors: IntCounter,
    pub exempt: IntCounter,
    pub tls_handshake_failures: IntCounter,
    pub certificate_expiry: IntGaugeVec,
    pub build_info: IntGaugeVec,
    /// Count decisions per policy id (`--policy-metrics`).
    per_policy: bool,
    /// The children every answer touches, resolved once: looking a child
    /// up by label values hashes them and takes a read lock, per request.
    hot: HotChildren,
}

/// Children of the labelled request metrics, by verdict and cache result.
struct HotChildren {
    /// `requests_total` and `request_duration_seconds`, indexed by
    /// [`verdict_index`].
    by_verdict: [(IntCounter, Histogram); 3],
    cache_hit: IntCounter,
    cache_miss: IntCounter,
    /// `evaluations_total`, indexed by [`evaluator_index`].
    by_evaluator: [IntCounter; 2],
}

fn evaluator_index(e: Evaluator) -> usize {
    match e {
        Evaluator::Compiled => 0,
        Evaluator::Cedar => 1,
    }
}

fn verdict_index(v: Verdict) -> usize {
    match v {
        Verdict::Allowed => 0,
        Verdict::Denied => 1,
        Verdict::NoOpinion => 2,
    }
}

/// Registers a new metric. The names and label sets are fixed in this file,
/// so a failure is a programming error caught by every test that starts one.
pub(super) fn register<C: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<C>,
) -> C {
    let metric = metric.expect("valid metric definition");
    registry
        .register(Box::new(metric.clone()))
        .expect("metric names are unique");
    metric
}

pub(super) fn name(n: &str) -> String {
    format!("cedar_authorizer_{n}")
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new(per_policy: bool) -> Self {
        let registry = Registry::new();
        let counter_vec = |n: &str, help: &str, labels: &[&str]| {
            register(
                &registry,
                IntCounterVec::new(Opts::new(name(n), help), labels),
            )
        };
        let counter = |n: &str, help: &str| register(&registry, IntCounter::new(name(n), help));
        let gauge = |n: &str, help: &str| register(&registry, IntGauge::new(name(n), help));
        let gauge_vec = |n: &str, help: &str, labels: &[&str]| {
            register(
                &registry,
                IntGaugeVec::new(Opts::new(name(n), help), labels),
            )
        };
        let request_duration = register(
            &registry,
            HistogramVec::new(
                HistogramOpts::new(
                    name("request_duration_seconds"),
                    "Time from a complete request body to the response, by decision.",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
                &["decision"],
            ),
        );
        let evaluation_duration = register(
            &registry,
            Histogram::with_opts(
                HistogramOpts::new(
                    name("evaluation_duration_seconds"),
                    "Time spent in the decision engine (cache lookup included).",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
            ),
        );

        let admission_duration = register(
            &registry,
            HistogramVec::new(
                HistogramOpts::new(
                    name("admission_request_duration_seconds"),
                    "Time from a complete AdmissionReview body to the response, by decision.",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
                &["decision"],
            ),
        );

        let requests = counter_vec(
            "requests_total",
            "SubjectAccessReviews answered, by decision.",
            &["decision"],
        );
        let cache_requests = counter_vec(
            "cache_requests_total",
            "Decision cache lookups, by result.",
            &["result"],
        );
        let evaluations = counter_vec(
            "evaluations_total",
            "SubjectAccessReviews evaluated (not from the cache, not exempt), by evaluator: compiled (the index's compiled RBAC-shaped conditions) or cedar (Cedar's evaluator).",
            &["evaluator"],
        );
        let child = |v: Verdict| {
            (
                requests.with_label_values(&[v.as_str()]),
                request_duration.with_label_values(&[v.as_str()]),
            )
        };
        let hot = HotChildren {
            by_verdict: [
                child(Verdict::Allowed),
                child(Verdict::Denied),
                child(Verdict::NoOpinion),
            ],
            cache_hit: cache_requests.with_label_values(&["hit"]),
            cache_miss: cache_requests.with_label_values(&["miss"]),
            by_evaluator: [Evaluator::Compiled, Evaluator::Cedar]
                .map(|e| evaluations.with_label_values(&[e.as_str()])),
        };
        let m = Metrics {
            admission_requests: counter_vec(
                "admission_requests_total",
                "AdmissionReviews answered, by decision (admitted, denied) and operation.",
                &["decision", "operation"],
            ),
            admission_duration,
            request_errors: counter_vec(
                "request_errors_total",
                "Requests refused before a decision, by reason.",
                &["reason"],
            ),
            evaluation_duration,
            cache_entries: gauge(
                "cache_entries",
                "Decisions in the cache of the live policy set.",
            ),
            cache_bytes: gauge(
                "cache_bytes",
                "Approximate bytes held by the decision cache of the live policy set (bounded by --cache-max-bytes).",
            ),
            policies: gauge_vec(
                "policies",
                "Policies in the live policy set, by effect.",
                &["effect"],
            ),
            policy_reloads: counter_vec(
                "policy_reloads_total",
                "Policy set loads after start-up, by result.",
                &["result"],
            ),
            policy_generation: gauge(
                "policy_generation",
                "Generation of the live policy set; increases with every successful load.",
            ),
            last_reload_success: gauge(
                "last_reload_success_timestamp_seconds",
                "Unix time of the last successful policy load.",
            ),
            policy_decisions: counter_vec(
                "policy_decisions_total",
                "How often each policy determined an answer.",
                &["policy", "effect"],
            ),
            evaluation_errors: counter(
                "evaluation_errors_total",
                "Policy evaluation errors (each erroring policy of each request).",
            ),
            exempt: counter(
                "exempt_total",
                "Requests from exempt principals, answered with no opinion unevaluated.",
            ),
            tls_handshake_failures: counter(
                "tls_handshake_failures_total",
                "Connections closed because the TLS handshake or client check failed.",
            ),
            certificate_expiry: gauge_vec(
                "certificate_expiry_timestamp_seconds",
                "When the serving certificate and the client CA expire (Unix seconds), by certificate.",
                &["certificate"],
            ),
            build_info: gauge_vec(
                "build_info",
                "Always 1; the version label says which build runs.",
                &["version"],
            ),
            registry,
            per_policy,
            hot,
        };
        m.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        for r in ["success", "failure", "unchanged"] {
            m.policy_reloads.with_label_values(&[r]);
        }
        for r in ["malformed", "too_large", "timeout", "too_many_requests"] {
            m.request_errors.with_label_values(&[r]);
        }
        #[cfg(target_os = "linux")]
        {
            let pc = prometheus::process_collector::ProcessCollector::for_self();
            let _ = m.registry.register(Box::new(pc));
        }
        m
    }

    /// Records one answered request.
    pub fn record(&self, outcome: &Outcome, total_seconds: f64) {
        let d = &outcome.decision;
        let (requests, duration) = &self.hot.by_verdict[verdict_index(d.verdict)];
        requests.inc();
        duration.observe(total_seconds);
        if d.exempt {
            self.exempt.inc();
            return;
        }
        self.evaluation_duration
            .observe(outcome.elapsed.as_secs_f64());
        if outcome.cache_hit {
            self.hot.cache_hit.inc();
        } else {
            self.hot.cache_miss.inc();
        }
        if let Some(e) = outcome.evaluator {
            self.hot.by_evaluator[evaluator_index(e)].inc();
        }
        if !d.errors.is_empty() && !outcome.cache_hit {
            self.evaluation_errors.inc_by(d.errors.len() as u64);
        }
        if self.per_policy {
            let effect = match d.verdict {
                Verdict::Allowed => "permit",
                _ => "forbid",
            };
            for id in &d.policies {
                self.policy_decisions
                    .with_label_values(&[id.as_str(), effect])
                    .inc();
            }
        }
    }

    /// Records one answered AdmissionReview.
    pub fn record_admission(&self, outcome: &Outcome, operation: &str, total_seconds: f64) {
        let d = &outcome.decision;
        let decision = admission_label(d.verdict);
        self.admission_requests
            .with_label_values(&[decision, operation])
            .inc();
        self.admission_duration
            .with_label_values(&[decision])
            .observe(total_seconds);
        if d.exempt {
            self.exempt.inc();
            return;
        }
        self.evaluation_duration
            .observe(outcome.elapsed.as_secs_f64());
        if !d.errors.is_empty() {
            self.evaluation_errors.inc_by(d.errors.len() as u64);
        }
        if self.per_policy && d.verdict == Verdict::Denied {
            for id in &d.policies {
                self.policy_decisions
                    .with_label_values(&[id.as_str(), "forbid"])
                    .inc();
            }
        }
    }

    /// Records that a new policy set is live.
    pub fn policy_set_installed(&self, s: &Snapshot) {
        let (permits, forbids) = s.effect_counts();
        self.policies
            .with_label_values(&["permit"])
            .set(permits as i64);
        self.policies
            .with_label_values(&["forbid"])
            .set(forbids as i64);
        self.policy_generation.set(s.generation as i64);
        let now = s
            .loaded_at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.last_reload_success.set(now);
        // Per-policy series of policies that no longer exist would linger
        // forever; start the new generation from a clean slate.
        self.policy_decisions.reset();
        self.cache_entries.set(0);
        self.cache_bytes.set(0);
    }

    /// The text exposition of every metric.
    pub fn render(&self, cache_entries: usize, cache_bytes: u64) -> Vec<u8> {
        self.cache_entries.set(cache_entries as i64);
        self.cache_bytes
            .set(i64::try_from(cache_bytes).unwrap_or(i64::MAX));
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

/// The `decision` label of admission metrics: only a refusal refuses.
pub fn admission_label(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Denied => "denied",
        Verdict::Allowed | Verdict::NoOpinion => "admitted",
    }
}
