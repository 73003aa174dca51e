//! The answer: a SubjectAccessReview status in the request's own version.

use k8s_openapi::api::authorization::v1 as authz;

use super::ApiVersion;

/// The `status` of an answered review.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub allowed: bool,
    pub denied: bool,
    pub reason: String,
    pub evaluation_error: String,
}

/// Serialises the answer in the request's own apiVersion.
pub fn response_json(api_version: ApiVersion, status: &Status) -> Vec<u8> {
    let status = authz::SubjectAccessReviewStatus {
        allowed: status.allowed,
        denied: status.denied.then_some(true),
        reason: (!status.reason.is_empty()).then(|| status.reason.clone()),
        evaluation_error: (!status.evaluation_error.is_empty())
            .then(|| status.evaluation_error.clone()),
    };
    let body = serde_json::json!({
        "apiVersion": api_version.as_str(),
        "kind": "SubjectAccessReview",
        "status": status,
    });
    serde_json::to_vec(&body).unwrap_or_default()
}
