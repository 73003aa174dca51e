//! The decision cache of one policy generation, bounded in bytes.
//!
//! Two kinds of key share it, and never match each other:
//!
//! - a normalised [`AccessRequest`] ([`super::Engine::decide`], for the
//!   offline commands), compared exactly (not by hash alone);
//! - the exact bytes of a review body ([`super::Engine::answer_review`],
//!   for the server), beside the answer's bytes. Equal bytes parse to the
//!   same review, so they get the same answer under one policy set; a hit
//!   skips parsing as well as evaluation. The apiserver writes the review
//!   of one set of attributes the same way every time, so this key hits
//!   wherever the normalised one would for its traffic.
//!
//! The cache lives beside the snapshot it caches in [`super::Engine`]'s
//! live state and is replaced with it, so no answer can outlive the policy
//! set that computed it.
//!
//! Any authenticated user can send SelfSubjectAccessReviews of their own
//! making, so what the cache holds is bounded by weight, not only by
//! count: each entry weighs the approximate bytes of its key, its decision
//! and its answer, large keys and large decisions are not cached at all,
//! and the total weight never exceeds `--cache-max-bytes`.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use bytes::Bytes;

use crate::decision::Decision;
use crate::sar::AccessRequest;

/// Requests larger than this (in [`AccessRequest::approximate_size`] bytes,
/// or body bytes) are answered but not cached: a few large keys would
/// otherwise crowd out thousands of ordinary ones.
pub const MAX_CACHED_REQUEST_BYTES: usize = 4 * 1024;

/// Decisions larger than this (thousands of determining policies, long
/// errors) are answered but not cached, for the same reason.
pub const MAX_CACHED_DECISION_BYTES: usize = 8 * 1024;

/// What an entry costs beyond its key's, decision's and answer's bytes:
/// the table slot (key, entry, the cache's own bookkeeping) and the
/// allocations' headers.
const ENTRY_OVERHEAD_BYTES: usize = 128;

/// A key as stored: two words in the table, the rest on the heap.
#[derive(Clone, PartialEq, Eq)]
enum Key {
    Request(Box<AccessRequest>),
    Body(Box<[u8]>),
}

// The entry overhead below counts on it.
const _: () = assert!(std::mem::size_of::<Key>() <= 16);

/// A key as looked up: borrowed, so a lookup copies nothing.
#[derive(PartialEq, Eq)]
enum Lookup<'a> {
    Request(&'a AccessRequest),
    Body(&'a [u8]),
}

impl Key {
    fn as_lookup(&self) -> Lookup<'_> {
        match self {
            Key::Request(r) => Lookup::Request(r),
            Key::Body(b) => Lookup::Body(b),
        }
    }
}

// A key and its lookup hash alike by construction: one is defined by the
// other.
impl Hash for Lookup<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            Lookup::Request(r) => {
                state.write_u8(0);
                r.hash(state);
            }
            Lookup::Body(b) => {
                state.write_u8(1);
                b.hash(state);
            }
        }
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_lookup().hash(state);
    }
}

impl quick_cache::Equivalent<Key> for Lookup<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        *self == key.as_lookup()
    }
}

/// What the cache holds for a key: the decision, the answer's bytes (body
/// keys only; empty otherwise) and the entry's weight, computed once at
/// insertion (the weighter must be cheap and constant).
#[derive(Clone)]
struct Entry {
    decision: Arc<Decision>,
    response: Bytes,
    weight: u64,
}

#[derive(Clone)]
struct ByWeight;

impl quick_cache::Weighter<Key, Entry> for ByWeight {
    fn weight(&self, _key: &Key, entry: &Entry) -> u64 {
        entry.weight
    }
}

/// Decisions of one policy generation. Reads of different keys, and of the
/// same key, proceed in parallel.
pub struct DecisionCache {
    inner: quick_cache::sync::Cache<Key, Entry, ByWeight>,
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
        self.inner.get(&Lookup::Request(req)).map(|e| e.decision)
    }

    /// The cached decision and answer for a review body, if any.
    pub fn get_body(&self, body: &[u8]) -> Option<(Arc<Decision>, Bytes)> {
        self.inner
            .get(&Lookup::Body(body))
            .map(|e| (e.decision, e.response))
    }

    /// Remembers a decision for a request of `key_bytes` (its
    /// [`AccessRequest::approximate_size`], measured once by the caller),
    /// unless the request or the decision is too large to be worth its room.
    pub fn insert(&self, req: &AccessRequest, key_bytes: usize, decision: &Arc<Decision>) {
        self.insert_key(
            || Key::Request(Box::new(req.clone())),
            key_bytes,
            decision,
            Bytes::new(),
        );
    }

    /// Remembers the decision and answer for a review body, on the same
    /// terms as [`DecisionCache::insert`].
    pub fn insert_body(&self, body: &[u8], decision: &Arc<Decision>, response: &Bytes) {
        self.insert_key(
            || Key::Body(body.into()),
            body.len(),
            decision,
            response.clone(),
        );
    }

    fn insert_key(
        &self,
        key: impl FnOnce() -> Key,
        key_bytes: usize,
        decision: &Arc<Decision>,
        response: Bytes,
    ) {
        let decision_bytes = decision.approximate_size();
        if key_bytes > MAX_CACHED_REQUEST_BYTES || decision_bytes > MAX_CACHED_DECISION_BYTES {
            return;
        }
        let bytes = key_bytes + decision_bytes + response.len() + ENTRY_OVERHEAD_BYTES;
        let weight = (bytes as u64).max(self.min_weight);
        self.inner.insert(
            key(),
            Entry {
                decision: Arc::clone(decision),
                response,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> AccessRequest {
        crate::sar::parse_review(
            br#"{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview",
                "spec":{"user":"alice","resourceAttributes":{"verb":"get","resource":"pods"}}}"#,
        )
        .unwrap()
        .request
    }

    #[test]
    fn body_and_request_keys_do_not_meet() {
        let cache = DecisionCache::new(16, 1 << 20);
        let allowed = Arc::new(Decision::exempt());
        let req = request();
        cache.insert(&req, req.approximate_size(), &allowed);
        assert!(cache.get(&req).is_some());
        assert!(cache.get_body(b"{}").is_none());
        cache.insert_body(b"{}", &allowed, &Bytes::from_static(b"answer"));
        let (_, response) = cache.get_body(b"{}").unwrap();
        assert_eq!(&response[..], b"answer");
        assert!(
            cache.get_body(b"{} ").is_none(),
            "bytes are compared exactly"
        );
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn large_bodies_are_not_cached() {
        let cache = DecisionCache::new(16, 1 << 20);
        let body = vec![b' '; MAX_CACHED_REQUEST_BYTES + 1];
        cache.insert_body(&body, &Arc::new(Decision::exempt()), &Bytes::new());
        assert!(cache.is_empty());
    }
}
