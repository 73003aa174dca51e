//! The engine: the live policy set, its decision cache and the exemptions,
//! around the plain decision path ([`evaluate`]: [`crate::eval`]'s
//! outcome under [`crate::decision`]'s rules).
//!
//! Synchronous code with no server types in it, so the `check` command,
//! the server, the tests and the benches all answer through
//! [`Engine::decide`].

mod cache;
mod exemptions;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;

use crate::admission::{self, AdmissionInput};
use crate::decision::Decision;
use crate::eval;
use crate::policy::Snapshot;
use crate::sar::{self, AccessRequest};

pub use cache::DecisionCache;
pub use exemptions::Exemptions;

/// Which evaluator decided a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evaluator {
    /// The policy index's compiled RBAC-shaped conditions
    /// (src/policy/compiled.rs), without Cedar.
    Compiled,
    /// Cedar's evaluator over the candidate policies: a candidate did not
    /// compile, or the request is one the compiled policies do not model.
    Cedar,
}

impl Evaluator {
    pub fn as_str(self) -> &'static str {
        match self {
            Evaluator::Compiled => "compiled",
            Evaluator::Cedar => "cedar",
        }
    }
}

/// Evaluates a request against a snapshot, without cache or exemptions:
/// through the compiled policies when they can answer, through Cedar
/// otherwise.
pub fn evaluate(snapshot: &Snapshot, req: &AccessRequest) -> Decision {
    evaluate_by(snapshot, req).0
}

/// [`evaluate`], saying which evaluator answered.
pub fn evaluate_by(snapshot: &Snapshot, req: &AccessRequest) -> (Decision, Evaluator) {
    if let Some(raw) = eval::compiled(&snapshot.index, req) {
        return (
            Decision::from_outcome(raw, &snapshot.forbids),
            Evaluator::Compiled,
        );
    }
    let decision = match eval::build(snapshot, req) {
        Ok(built) => match eval::cedar_request(&built) {
            Ok(request) => Decision::from_outcome(
                eval::indexed(&snapshot.index, &request, &built),
                &snapshot.forbids,
            ),
            Err(e) => Decision::unevaluable(e),
        },
        Err(e) => Decision::unevaluable(e.to_string()),
    };
    (decision, Evaluator::Cedar)
}

/// Decides an AdmissionReview against a snapshot, without exemptions.
/// When no policy's scope can match (principal, admission action, object
/// type), the object is not even converted.
pub fn evaluate_admission(snapshot: &Snapshot, input: &AdmissionInput) -> Decision {
    let scope = match admission::scope(input) {
        Ok(s) => s,
        Err(e) => return Decision::unevaluable(e.to_string()),
    };
    let mut candidates = false;
    snapshot.index.candidate_sets(&scope, |_| candidates = true);
    if !candidates {
        return Decision::admitted();
    }
    let action = snapshot
        .schema
        .admission_actions
        .get(admission::operation_name(&input.operation));
    match admission::build(input, &snapshot.schema.shapes, action) {
        Ok(built) => match eval::cedar_request(&built) {
            Ok(request) => Decision::admission(
                eval::indexed(&snapshot.index, &request, &built),
                &snapshot.forbids,
            ),
            Err(e) => Decision::unevaluable(e),
        },
        Err(e) => Decision::unevaluable(e.to_string()),
    }
}

/// How a request was answered, for metrics and logs.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub decision: Arc<Decision>,
    /// Answered from the cache.
    pub cache_hit: bool,
    /// Which evaluator decided a SubjectAccessReview; `None` when it was
    /// answered from the cache or unevaluated (exempt), and for
    /// AdmissionReviews, which Cedar always decides.
    pub evaluator: Option<Evaluator>,
    /// Time spent in the engine (cache lookup included).
    pub elapsed: Duration,
    /// Generation of the policy set that answered.
    pub generation: u64,
}

/// One generation as served: the snapshot and the answers computed under it.
struct Live {
    snapshot: Arc<Snapshot>,
    /// `None` when caching is off.
    cache: Option<DecisionCache>,
}

/// The live policy set and the rules around it: what the server holds.
pub struct Engine {
    /// Read on every request without locking; replaced whole on reload, so
    /// a request sees one snapshot and its own generation's cache.
    live: ArcSwap<Live>,
    exemptions: Exemptions,
    cache: CacheLimits,
}

/// The bounds of each generation's decision cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheLimits {
    /// Most decisions cached; 0 disables the cache.
    pub entries: usize,
    /// Most bytes (approximate) the cached keys and decisions may hold.
    pub max_bytes: u64,
}

impl CacheLimits {
    /// No cache.
    pub const OFF: CacheLimits = CacheLimits {
        entries: 0,
        max_bytes: 0,
    };

    /// `entries` decisions within the default byte bound.
    pub fn entries(entries: usize) -> Self {
        CacheLimits {
            entries,
            max_bytes: DEFAULT_CACHE_MAX_BYTES,
        }
    }
}

/// Default `--cache-max-bytes`: a quarter of the static pod's 256 MiB
/// memory limit, leaving room for the policy set, in-flight requests and
/// the allocator (docs/hardening.md).
pub const DEFAULT_CACHE_MAX_BYTES: u64 = 64 * 1024 * 1024;

impl From<usize> for CacheLimits {
    fn from(entries: usize) -> Self {
        CacheLimits::entries(entries)
    }
}

impl Engine {
    /// An engine serving `snapshot`, caching decisions per generation
    /// within `cache` (a plain number is that many entries within the
    /// default byte bound; 0 means no cache).
    pub fn new(snapshot: Snapshot, exemptions: Exemptions, cache: impl Into<CacheLimits>) -> Self {
        let cache = cache.into();
        Engine {
            live: ArcSwap::from_pointee(Self::live(snapshot, cache)),
            exemptions,
            cache,
        }
    }

    fn live(snapshot: Snapshot, cache: CacheLimits) -> Live {
        Live {
            snapshot: Arc::new(snapshot),
            cache: (cache.entries > 0 && cache.max_bytes > 0)
                .then(|| DecisionCache::new(cache.entries, cache.max_bytes)),
        }
    }

    /// (bytes held, byte bound) of the current generation's cache.
    pub fn cache_weight(&self) -> (u64, u64) {
        self.live
            .load()
            .cache
            .as_ref()
            .map_or((0, 0), |c| (c.weight(), c.capacity()))
    }

    /// The policy set in force now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.live.load().snapshot)
    }

    /// Number of decisions cached for the current generation.
    pub fn cache_entries(&self) -> usize {
        self.live
            .load()
            .cache
            .as_ref()
            .map_or(0, DecisionCache::len)
    }

    /// Replaces the policy set, with an empty cache; requests already
    /// running finish on the old one.
    pub fn install(&self, snapshot: Snapshot) {
        self.live.store(Arc::new(Self::live(snapshot, self.cache)));
    }

    /// Answers an AdmissionReview. Exempt principals are admitted without
    /// evaluation, as they get no opinion on authorization. Not cached:
    /// objects rarely repeat.
    pub fn admit(&self, input: &AdmissionInput) -> Outcome {
        let start = Instant::now();
        let live = self.live.load();
        let decision = if self.exemptions.is_exempt(&input.user) {
            Decision::exempt()
        } else {
            evaluate_admission(&live.snapshot, input)
        };
        Outcome {
            decision: Arc::new(decision),
            cache_hit: false,
            evaluator: None,
            elapsed: start.elapsed(),
            generation: live.snapshot.generation,
        }
    }

    /// Answers a request.
    pub fn decide(&self, req: &AccessRequest) -> Outcome {
        let start = Instant::now();
        let live = self.live.load();
        let (decision, cache_hit, evaluator) =
            self.decide_in(&live.snapshot, req, live.cache.as_ref());
        Outcome {
            decision,
            cache_hit,
            evaluator,
            elapsed: start.elapsed(),
            generation: live.snapshot.generation,
        }
    }

    /// Answers a SubjectAccessReview body: the decision and the answer's
    /// bytes, in the review's own version. These exact bytes answered
    /// before under the live policy set are answered from the cache,
    /// without being parsed again; then [`Answered::review`] is `None`.
    /// `elapsed` leaves the parse out, as [`Engine::decide`]'s does.
    pub fn answer_review(&self, body: &[u8]) -> Result<Answered, sar::SarError> {
        let start = Instant::now();
        let live = self.live.load();
        let generation = live.snapshot.generation;
        let cache = live
            .cache
            .as_ref()
            .filter(|_| body.len() <= cache::MAX_CACHED_REQUEST_BYTES);
        if let Some((decision, response)) = cache.and_then(|c| c.get_body(body)) {
            return Ok(Answered {
                outcome: Outcome {
                    decision,
                    cache_hit: true,
                    evaluator: None,
                    elapsed: start.elapsed(),
                    generation,
                },
                response,
                review: None,
            });
        }
        let review = sar::parse_review(body)?;
        let start = Instant::now();
        // Cached below under the body, not under the request as well.
        let (decision, _, evaluator) = self.decide_in(&live.snapshot, &review.request, None);
        let response = Bytes::from(sar::response_json(review.api_version, &decision.status));
        if let Some(c) = cache.filter(|_| !decision.exempt) {
            c.insert_body(body, &decision, &response);
        }
        Ok(Answered {
            outcome: Outcome {
                decision,
                cache_hit: false,
                evaluator,
                elapsed: start.elapsed(),
                generation,
            },
            response,
            review: Some(review),
        })
    }

    /// The decision for a request, whether it came from `cache` (looked up
    /// and filled under the request as key), and which evaluator decided
    /// it when one did.
    fn decide_in(
        &self,
        snapshot: &Snapshot,
        req: &AccessRequest,
        cache: Option<&DecisionCache>,
    ) -> (Arc<Decision>, bool, Option<Evaluator>) {
        if self.exemptions.is_exempt(&req.user) {
            return (Arc::new(Decision::exempt()), false, None);
        }
        // Measured once: it decides both the lookup and the entry's weight.
        let key_bytes = cache.map_or(0, |_| req.approximate_size());
        let cache = cache.filter(|_| key_bytes <= cache::MAX_CACHED_REQUEST_BYTES);
        if let Some(hit) = cache.and_then(|c| c.get(req)) {
            return (hit, true, None);
        }
        let (decision, evaluator) = evaluate_by(snapshot, req);
        let decision = Arc::new(decision);
        if let Some(c) = cache {
            c.insert(req, key_bytes, &decision);
        }
        (decision, false, Some(evaluator))
    }
}

/// A review body answered by [`Engine::answer_review`].
#[derive(Debug)]
pub struct Answered {
    pub outcome: Outcome,
    /// The answer as sent: a SubjectAccessReview status in the review's
    /// version.
    pub response: Bytes,
    /// The parsed review; `None` when the body was answered from the cache
    /// without being parsed.
    pub review: Option<sar::Review>,
}
