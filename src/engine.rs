//! The decision: an [`AccessRequest`] and a [`Snapshot`] in, a
//! SubjectAccessReview status out.
//!
//! Plain synchronous code with no server types in it, so the `check`
//! command, the server, the tests and the benches all call the same
//! function. The rules, in order (docs/policy-model.md):
//!
//! 1. an exempt principal gets no opinion, without evaluation;
//! 2. a satisfied `forbid` denies;
//! 3. a `forbid` whose evaluation errored denies too;
//! 4. a satisfied `permit` allows;
//! 5. otherwise no opinion.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::entities::{self, RequestEntities};
use crate::policy::index::{cedar_request, RawOutcome};
use crate::policy::Snapshot;
use crate::sar::{AccessRequest, Status};

/// Requests larger than this (in [`AccessRequest::approximate_size`] bytes)
/// are answered but not cached, so one client cannot flood the cache with
/// megabyte keys.
const MAX_CACHED_REQUEST_BYTES: usize = 16 * 1024;

/// The three answers an authorizer webhook can give.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    Allowed,
    Denied,
    NoOpinion,
}

impl Verdict {
    /// The `decision` label value of the request metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Denied => "denied",
            Verdict::NoOpinion => "no_opinion",
        }
    }
}

/// An answered request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    /// The determining policies, sorted.
    pub policies: Vec<String>,
    /// (policy id, message) of policies whose evaluation errored.
    pub errors: Vec<(String, String)>,
    /// No evaluation took place: the principal is exempt.
    pub exempt: bool,
    /// The status the apiserver receives.
    pub status: Status,
}

impl Decision {
    fn new(verdict: Verdict, policies: Vec<String>, errors: Vec<(String, String)>) -> Self {
        let list = policies.join(", ");
        let plural = if policies.len() == 1 {
            "policy"
        } else {
            "policies"
        };
        let reason = match verdict {
            Verdict::Allowed => format!("cedar: allowed by {plural} {list}"),
            Verdict::Denied => format!("cedar: denied by {plural} {list}"),
            Verdict::NoOpinion => "cedar: no policy matched".to_owned(),
        };
        let evaluation_error = errors
            .iter()
            .map(|(id, message)| format!("policy {id}: {message}"))
            .collect::<Vec<_>>()
            .join("; ");
        Decision {
            status: Status {
                allowed: verdict == Verdict::Allowed,
                denied: verdict == Verdict::Denied,
                reason,
                evaluation_error,
            },
            verdict,
            policies,
            errors,
            exempt: false,
        }
    }

    fn exempt() -> Self {
        Decision {
            verdict: Verdict::NoOpinion,
            policies: Vec::new(),
            errors: Vec::new(),
            exempt: true,
            status: Status {
                allowed: false,
                denied: false,
                reason: "cedar: exempt principal".to_owned(),
                evaluation_error: String::new(),
            },
        }
    }

    /// Applies the decision rules to Cedar's answer.
    pub fn from_outcome(raw: RawOutcome, forbids: &std::collections::HashSet<String>) -> Self {
        let errors: Vec<(String, String)> = raw.errors.into_iter().collect();
        if !raw.forbids.is_empty() {
            return Decision::new(Verdict::Denied, raw.forbids.into_iter().collect(), errors);
        }
        let mut failed_forbids: Vec<String> = errors
            .iter()
            .filter(|(id, _)| forbids.contains(id))
            .map(|(id, _)| id.clone())
            .collect();
        if !failed_forbids.is_empty() {
            failed_forbids.dedup();
            let mut d = Decision::new(Verdict::Denied, failed_forbids, errors);
            d.status
                .reason
                .push_str(" (the forbid could not be evaluated)");
            return d;
        }
        if !raw.permits.is_empty() {
            return Decision::new(Verdict::Allowed, raw.permits.into_iter().collect(), errors);
        }
        Decision::new(Verdict::NoOpinion, Vec::new(), errors)
    }

    /// A request that could not be evaluated is denied: an unknown answer
    /// must never become an allow, and a forbid might have applied.
    fn unevaluable(message: String) -> Self {
        let mut d = Decision::new(Verdict::Denied, Vec::new(), Vec::new());
        d.status.reason = "cedar: denied: the request could not be evaluated".to_owned();
        d.status.evaluation_error = message;
        d
    }
}

/// Which principals are never evaluated.
#[derive(Clone, Debug)]
pub struct Exemptions {
    /// Apply the built-in rule: `system:` usernames other than service
    /// accounts, nodes and `system:anonymous`.
    pub control_plane: bool,
    /// Further exempt usernames, exactly.
    pub users: Vec<String>,
}

impl Default for Exemptions {
    fn default() -> Self {
        Exemptions {
            control_plane: true,
            users: Vec::new(),
        }
    }
}

impl Exemptions {
    /// True when the username gets no opinion without evaluation.
    pub fn is_exempt(&self, user: &str) -> bool {
        (self.control_plane
            && user.starts_with("system:")
            && user != "system:anonymous"
            && entities::identity(user) == entities::Identity::User)
            || self.users.iter().any(|u| u == user)
    }
}

/// Decisions of one policy generation, keyed by the whole normalised
/// request (compared exactly, not by hash alone). Reads of different keys,
/// and of the same key, proceed in parallel.
pub struct DecisionCache {
    inner: quick_cache::sync::Cache<AccessRequest, Arc<Decision>>,
}

impl DecisionCache {
    /// A cache of at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        DecisionCache {
            inner: quick_cache::sync::Cache::new(capacity),
        }
    }

    /// Number of cached decisions.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}

/// Evaluates a request against a snapshot, without cache or exemptions.
pub fn evaluate(snapshot: &Snapshot, req: &AccessRequest) -> Decision {
    match build(snapshot, req) {
        Ok(built) => match cedar_request(&built) {
            Ok(request) => {
                Decision::from_outcome(snapshot.index.evaluate(&request, &built), &snapshot.forbids)
            }
            Err(e) => Decision::unevaluable(e),
        },
        Err(e) => Decision::unevaluable(e.to_string()),
    }
}

/// The entities of a request under a snapshot's schema.
pub fn build(
    snapshot: &Snapshot,
    req: &AccessRequest,
) -> Result<RequestEntities, entities::EntityError> {
    let action = snapshot.schema.grouped_actions.get(req.attributes.verb());
    entities::build(req, action)
}

/// How a request was answered, for metrics and logs.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub decision: Arc<Decision>,
    /// Answered from the cache.
    pub cache_hit: bool,
    /// Time spent in the engine (cache lookup included).
    pub elapsed: Duration,
    /// Generation of the policy set that answered.
    pub generation: u64,
}

/// The live policy set and the rules around it: what the server holds.
pub struct Engine {
    /// Read on every request without locking; replaced whole on reload.
    current: ArcSwap<Snapshot>,
    exemptions: Exemptions,
}

impl Engine {
    /// An engine serving `snapshot`.
    pub fn new(snapshot: Snapshot, exemptions: Exemptions) -> Self {
        Engine {
            current: ArcSwap::from_pointee(snapshot),
            exemptions,
        }
    }

    /// The policy set in force now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Replaces the policy set; requests already running finish on the old one.
    pub fn install(&self, snapshot: Snapshot) {
        self.current.store(Arc::new(snapshot));
    }

    /// Answers a request.
    pub fn decide(&self, req: &AccessRequest) -> Outcome {
        let start = Instant::now();
        let snapshot = self.current.load();
        let generation = snapshot.generation;
        if self.exemptions.is_exempt(&req.user) {
            return Outcome {
                decision: Arc::new(Decision::exempt()),
                cache_hit: false,
                elapsed: start.elapsed(),
                generation,
            };
        }
        let cache = snapshot
            .cache
            .as_ref()
            .filter(|_| req.approximate_size() <= MAX_CACHED_REQUEST_BYTES);
        if let Some(hit) = cache.and_then(|c| c.inner.get(req)) {
            return Outcome {
                decision: hit,
                cache_hit: true,
                elapsed: start.elapsed(),
                generation,
            };
        }
        let decision = Arc::new(evaluate(&snapshot, req));
        if let Some(c) = cache {
            c.inner.insert(req.clone(), Arc::clone(&decision));
        }
        Outcome {
            decision,
            cache_hit: false,
            elapsed: start.elapsed(),
            generation,
        }
    }
}
