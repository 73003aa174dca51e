//! The answer: a SubjectAccessReview status in the request's own version.
//!
//! Written directly rather than through `serde_json::Value`: every request
//! pays for it, and the shape is fixed. The bytes are those of
//! k8s-openapi's `SubjectAccessReviewStatus` under the envelope, keys in
//! the same order, strings escaped by serde_json (a test holds the two
//! equal).

use super::ApiVersion;

/// The `status` of an answered review.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub allowed: bool,
    pub denied: bool,
    pub reason: String,
    pub evaluation_error: String,
}

fn push_json_string(out: &mut Vec<u8>, s: &str) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Serialises the answer in the request's own apiVersion.
pub fn response_json(api_version: ApiVersion, status: &Status) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + status.reason.len() + status.evaluation_error.len());
    out.extend_from_slice(b"{\"apiVersion\":\"");
    out.extend_from_slice(api_version.as_str().as_bytes());
    out.extend_from_slice(b"\",\"kind\":\"SubjectAccessReview\",\"status\":{\"allowed\":");
    out.extend_from_slice(if status.allowed { b"true" } else { b"false" });
    if status.denied {
        out.extend_from_slice(b",\"denied\":true");
    }
    if !status.evaluation_error.is_empty() {
        out.extend_from_slice(b",\"evaluationError\":");
        push_json_string(&mut out, &status.evaluation_error);
    }
    if !status.reason.is_empty() {
        out.extend_from_slice(b",\"reason\":");
        push_json_string(&mut out, &status.reason);
    }
    out.extend_from_slice(b"}}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::authorization::v1 as authz;

    /// How the answer was built before: k8s-openapi's status in a JSON value.
    fn through_k8s_openapi(api_version: ApiVersion, status: &Status) -> Vec<u8> {
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
        serde_json::to_vec(&body).unwrap()
    }

    #[test]
    fn bytes_equal_k8s_openapi_serialisation() {
        let texts = [
            "",
            "cedar: allowed by policy p1",
            "q\"uote\\ \n\t\u{1} é \u{202e} </script>",
        ];
        for version in [ApiVersion::V1, ApiVersion::V1Beta1] {
            for allowed in [false, true] {
                for denied in [false, true] {
                    for reason in texts {
                        for evaluation_error in texts {
                            let s = Status {
                                allowed,
                                denied,
                                reason: reason.to_owned(),
                                evaluation_error: evaluation_error.to_owned(),
                            };
                            assert_eq!(
                                String::from_utf8(response_json(version, &s)).unwrap(),
                                String::from_utf8(through_k8s_openapi(version, &s)).unwrap()
                            );
                        }
                    }
                }
            }
        }
    }
}
