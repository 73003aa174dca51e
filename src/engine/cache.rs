//! The decision cache of one policy generation, bounded in bytes.
//!
//! Keyed by the whole normalised request, compared exactly (not by hash
//! alone). It lives beside the snapshot it caches in [`super::Engine`]'s
//! live state and is replaced with it, so no answer can outlive the
//! policy set that computed it.
//!
//! Any authenticated user can send SelfSubjectAccessReviews of their own
//! making, so what the cache holds is bounded by weight, not only by
//! count: each entry weighs the approximate bytes of its key and its
//! decision, large keys and large decisions are not cached at all, and
//! the total weight never exceeds `--cache-max-bytes`.

use std::sync::Arc;

use crate::decision::Decision;
use crate::sar::AccessRequest;

/// Requests larger than this (in [`AccessRequest::approximate_size`] bytes)
/// are answered but not cached: a few large keys would otherwise crowd out
/// thousands of ordinary ones.
pub const MAX_CACHED_REQUEST_BYTES: usize = 4 * 1024;

/// Decisions larger than this (thousands of determining policies, long
/// errors) are answered but not cached, for the same reason.
pub const MAX_CACHED_DECISION_BYTES: usize = 8 * 1024;

/// What the cache holds for a key: the decision and its weight, computed
/// once at insertion (the weighter must be cheap and constant).
#[derive(Clone)]
struct Entry {
    decision: Arc<Decision>,
    weight: u64,
}

#[derive(Clone)]
struct ByWeight;

impl quick_cache::Weighter<AccessRequest, Entry> for ByWeight {
    fn weight(&self, _key: &AccessRequest, entry: &Entry) -> u64 {
        entry.weight
    }
}

/// Decisions of one policy generation. Reads of different keys, and of the
/// same key, proceed in parallel.
pub struct DecisionCache {
    inner: quick_cache::sync::Cache<AccessRequest, Entry, ByWeight>,
    /// Every entry weighs at least this much, so the weight bound also
    /// keeps the number of entries at or below the configured count.
    min_weight: u64,
}

impl DecisionCache {
    /// A cache of at most `entries` decisions and `max_bytes` bytes.
    pub fn new(entries: usize, max_bytes: u64) -> Self {
        let entries = entries.max(1);
        DecisionCache {
            inner: quick_cache::sync::Cache::with_weighter(entries, max_bytes.max(1), ByWeight),
            min_weight: (max_bytes / entries as u64).max(1),
        }
    }

    /// The cached decision for a request, if any.
    pub fn get(&self, req: &AccessRequest) -> Option<Arc<Decision>> {
        self.inner.get(req).map(|e| e.decision)
    }

    /// Remembers a decision for a request of `key_bytes` (its
    /// [`AccessRequest::approximate_size`], measured once by the caller),
    /// unless the request or the decision is too large to be worth its room.
    pub fn insert(&self, req: &AccessRequest, key_bytes: usize, decision: &Arc<Decision>) {
        let decision_bytes = decision.approximate_size();
        if key_bytes > MAX_CACHED_REQUEST_BYTES || decision_bytes > MAX_CACHED_DECISION_BYTES {
            return;
        }
        let weight = ((key_bytes + decision_bytes) as u64).max(self.min_weight);
        self.inner.insert(
            req.clone(),
            Entry {
                decision: Arc::clone(decision),
                weight,
            },
        );
    }

    /// Number of cached decisions.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Total weight (approximate bytes) of what is cached.
    pub fn weight(&self) -> u64 {
        self.inner.weight()
    }

    /// The weight bound.
    pub fn capacity(&self) -> u64 {
        self.inner.capacity()
    }
}
