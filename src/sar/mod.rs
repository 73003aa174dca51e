//! SubjectAccessReview in and out.
//!
//! The apiserver sends `authorization.k8s.io/v1` or `v1beta1` reviews; the two
//! differ only in the spelling of the groups field (`groups` / `group`). Both
//! are parsed into one [`AccessRequest`]: the normalised form that the entity
//! builder reads and the decision cache uses as its key, so "what the engine
//! saw" and "what the cache remembers" can never drift apart.
//!
//! Normalisation only drops what cannot change a Cedar decision: group and
//! extra-value order and duplicates (Cedar sees them as sets), and selector
//! requirements the entity model does not map.

mod parse;
mod response;

use std::collections::BTreeMap;

pub use parse::{parse_review, parse_review_careful, Review};
pub use response::{response_json, Status};

/// The two SubjectAccessReview versions the apiserver may send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApiVersion {
    /// `authorization.k8s.io/v1`
    V1,
    /// `authorization.k8s.io/v1beta1`
    V1Beta1,
}

impl ApiVersion {
    /// The apiVersion string, as sent and as answered.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1 => "authorization.k8s.io/v1",
            ApiVersion::V1Beta1 => "authorization.k8s.io/v1beta1",
        }
    }
}

/// Why a request body is not a SubjectAccessReview we can answer.
#[derive(Debug, thiserror::Error)]
pub enum SarError {
    /// The body is not JSON, or not a JSON object of the expected shape.
    #[error("malformed request body: {0}")]
    Json(#[from] serde_json::Error),
    /// The body is JSON but not an object.
    #[error("malformed request body: expected a JSON object (a SubjectAccessReview)")]
    NotAnObject,
    /// A field of `spec` does not have the SubjectAccessReviewSpec shape.
    #[error("malformed {path}: {message}")]
    Spec { path: String, message: String },
    /// `apiVersion` is missing or not one we answer.
    #[error("unsupported apiVersion {0:?}: expected authorization.k8s.io/v1 or authorization.k8s.io/v1beta1")]
    ApiVersion(String),
    /// `kind` is missing or not SubjectAccessReview.
    #[error("unsupported kind {0:?}: expected SubjectAccessReview")]
    Kind(String),
    /// There is no `spec`.
    #[error("spec is missing")]
    MissingSpec,
    /// A list is longer than a review can sensibly hold.
    #[error("malformed {field}: {count} entries, more than the {limit} a review may carry")]
    TooMany {
        field: &'static str,
        count: usize,
        limit: usize,
    },
    /// Both or neither of the attribute kinds are set.
    #[error("spec must set exactly one of resourceAttributes and nonResourceAttributes, {0}")]
    Attributes(&'static str),
}

/// Bounds on the lists a review may carry. Every entry becomes an entity
/// or attribute value, so a client could otherwise make one request cost
/// hundreds of megabytes; beyond these the review is refused with a 400
/// naming the field (real users carry tens of groups, not thousands).
pub mod limits {
    /// `spec.groups` (v1beta1 `spec.group`).
    pub const GROUPS: usize = 4096;
    /// Keys of `spec.extra`.
    pub const EXTRA_KEYS: usize = 256;
    /// Values of all `spec.extra` keys together.
    pub const EXTRA_VALUES: usize = 4096;
    /// Requirements of one selector (label or field).
    pub const SELECTOR_REQUIREMENTS: usize = 256;
    /// Values of all requirements of one selector together.
    pub const SELECTOR_VALUES: usize = 4096;
}

/// A label selector requirement, with the operator already in Kubernetes
/// selector syntax (`in`, `notin`, `exists`, `!`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LabelRequirement {
    /// The label key.
    pub key: String,
    /// `in`, `notin`, `exists` or `!`.
    pub operator: &'static str,
    /// The values, sorted and without duplicates.
    pub values: Vec<String>,
}

/// A field selector requirement: one field, `=` or `!=`, one value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldRequirement {
    /// The field path, e.g. `spec.nodeName`.
    pub field: String,
    /// `=` or `!=`.
    pub operator: &'static str,
    /// The single value.
    pub value: String,
}

/// `spec.resourceAttributes`, empty strings standing for absent fields.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ResourceAttributes {
    pub verb: String,
    pub group: String,
    pub version: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    /// `None` when the SAR carries no label requirement we map.
    pub label_selector: Option<Vec<LabelRequirement>>,
    /// `None` when the SAR carries no field requirement we map.
    pub field_selector: Option<Vec<FieldRequirement>>,
}

/// `spec.nonResourceAttributes`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct NonResourceAttributes {
    pub verb: String,
    pub path: String,
}

/// What is being asked about.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Attributes {
    Resource(ResourceAttributes),
    NonResource(NonResourceAttributes),
}

impl Attributes {
    /// The verb, as sent.
    pub fn verb(&self) -> &str {
        match self {
            Attributes::Resource(r) => &r.verb,
            Attributes::NonResource(n) => &n.verb,
        }
    }
}

/// A SubjectAccessReview spec, normalised. Equal values get equal answers
/// under one policy set, which is what makes it a sound cache key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AccessRequest {
    pub user: String,
    /// Sorted, without duplicates.
    pub groups: Vec<String>,
    /// Empty when not sent.
    pub uid: String,
    /// Keys in order; each key's values sorted, without duplicates.
    pub extra: BTreeMap<String, Vec<String>>,
    pub attributes: Attributes,
}

impl AccessRequest {
    /// A rough size in bytes, used to keep huge requests out of the cache.
    pub fn approximate_size(&self) -> usize {
        let strings = |v: &[String]| v.iter().map(|s| s.len() + 24).sum::<usize>();
        let attrs = match &self.attributes {
            Attributes::Resource(r) => {
                r.verb.len()
                    + r.group.len()
                    + r.version.len()
                    + r.resource.len()
                    + r.subresource.len()
                    + r.namespace.len()
                    + r.name.len()
                    + r.label_selector.as_ref().map_or(0, |l| {
                        l.iter()
                            .map(|q| q.key.len() + strings(&q.values) + 48)
                            .sum()
                    })
                    + r.field_selector.as_ref().map_or(0, |f| {
                        f.iter().map(|q| q.field.len() + q.value.len() + 64).sum()
                    })
            }
            Attributes::NonResource(n) => n.verb.len() + n.path.len(),
        };
        self.user.len()
            + self.uid.len()
            + strings(&self.groups)
            + self
                .extra
                .iter()
                .map(|(k, v)| k.len() + 48 + strings(v))
                .sum::<usize>()
            + attrs
            + 256
    }
}
