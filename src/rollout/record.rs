//! The replayable part of a decision record: the normalised request, as
//! the decision log writes it and `replay` reads it back.
//!
//! Version 1 (`record_version: 1` beside it in the log line). Everything
//! the entity builder reads is kept, except `extra` values: only the keys
//! of an allow-list ([`RECORDED_EXTRA_KEYS`]) keep their values, and never
//! a key that looks like a secret; the others are listed by name in
//! `extra_redacted`, so `replay` can tell when a policy reads a value that
//! was not recorded. A request larger than [`MAX_RECORDED_BYTES`] is not
//! recorded (the log line stays bounded) and does not replay.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::sar::{
    AccessRequest, Attributes, FieldRequirement, LabelRequirement, NonResourceAttributes,
    ResourceAttributes,
};

/// The version of the record schema written now.
pub const RECORD_VERSION: u32 = 1;

/// Largest request (by [`AccessRequest::approximate_size`]) a record holds.
pub const MAX_RECORDED_BYTES: usize = 64 * 1024;

/// `extra` keys whose values are recorded: stable identities that policies
/// match on (EKS role ARNs and session names, the node and pod a
/// service-account token is bound to). `accessKeyId` is not among them.
pub const RECORDED_EXTRA_KEYS: &[&str] = &[
    "arn",
    "canonicalArn",
    "sessionName",
    "principalId",
    "authentication.kubernetes.io/node-name",
    "authentication.kubernetes.io/node-uid",
    "authentication.kubernetes.io/pod-name",
    "authentication.kubernetes.io/pod-uid",
];

/// Keys never recorded whatever the allow-list says.
pub fn secret_like(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "accesskey",
        "secret",
        "token",
        "password",
        "credential",
        "session-key",
    ]
    .iter()
    .any(|s| k.contains(s))
}

fn recorded(key: &str) -> bool {
    RECORDED_EXTRA_KEYS.contains(&key) && !secret_like(key)
}

/// A label requirement as recorded (operator in selector syntax).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedLabel {
    pub key: String,
    pub operator: String,
    pub values: Vec<String>,
}

/// A field requirement as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedField {
    pub field: String,
    pub operator: String,
    pub value: String,
}

/// `resourceAttributes`, normalised; empty strings are left out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedResource {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subresource: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<Vec<RecordedLabel>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_selector: Option<Vec<RecordedField>>,
}

/// The request of one decision, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub user: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// Values of the allow-listed keys.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
    /// Keys that were sent but whose values were not recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_redacted: Vec<String>,
    pub verb: String,
    /// Set for a resource request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<RecordedResource>,
    /// Set for a non-resource request: the URL path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub non_resource_path: Option<String>,
}

/// Selector operators the normalised request can hold.
fn static_operator(op: &str, known: &[&'static str]) -> Option<&'static str> {
    known.iter().copied().find(|k| *k == op)
}

/// Each requirement of an optional selector converted by `f`, or the first
/// error.
fn each<Q, R>(
    list: &Option<Vec<Q>>,
    f: impl Fn(&Q) -> Result<R, String>,
) -> Result<Option<Vec<R>>, String> {
    list.as_ref().map(|l| l.iter().map(f).collect()).transpose()
}

impl RecordedRequest {
    /// The record of a request; `None` when it is too large to record.
    pub fn of(req: &AccessRequest) -> Option<Self> {
        if req.approximate_size() > MAX_RECORDED_BYTES {
            return None;
        }
        let (extra, extra_redacted): (Vec<_>, Vec<_>) =
            req.extra.iter().partition(|(k, _)| recorded(k));
        let (verb, resource, non_resource_path) = match &req.attributes {
            Attributes::Resource(r) => (
                r.verb.clone(),
                Some(RecordedResource {
                    group: r.group.clone(),
                    version: r.version.clone(),
                    resource: r.resource.clone(),
                    subresource: r.subresource.clone(),
                    namespace: r.namespace.clone(),
                    name: r.name.clone(),
                    label_selector: each(&r.label_selector, |q| {
                        Ok::<_, String>(RecordedLabel {
                            key: q.key.clone(),
                            operator: q.operator.to_owned(),
                            values: q.values.clone(),
                        })
                    })
                    .unwrap_or_default(),
                    field_selector: each(&r.field_selector, |q| {
                        Ok::<_, String>(RecordedField {
                            field: q.field.clone(),
                            operator: q.operator.to_owned(),
                            value: q.value.clone(),
                        })
                    })
                    .unwrap_or_default(),
                }),
                None,
            ),
            Attributes::NonResource(n) => (n.verb.clone(), None, Some(n.path.clone())),
        };
        Some(RecordedRequest {
            user: req.user.clone(),
            groups: req.groups.clone(),
            uid: req.uid.clone(),
            extra: extra
                .into_iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            extra_redacted: extra_redacted.into_iter().map(|(k, _)| k.clone()).collect(),
            verb,
            resource,
            non_resource_path,
        })
    }

    /// The request to decide again: the recorded one, less the values of
    /// `extra_redacted` keys (each stays present with no value, so a
    /// `hasTag` test still sees it).
    pub fn to_request(&self) -> Result<AccessRequest, String> {
        let mut extra = self.extra.clone();
        for k in &self.extra_redacted {
            extra.entry(k.clone()).or_default();
        }
        let mut groups = self.groups.clone();
        groups.sort_unstable();
        groups.dedup();
        let attributes = match (&self.resource, &self.non_resource_path) {
            (Some(r), None) => Attributes::Resource(ResourceAttributes {
                verb: self.verb.clone(),
                group: r.group.clone(),
                version: r.version.clone(),
                resource: r.resource.clone(),
                subresource: r.subresource.clone(),
                namespace: r.namespace.clone(),
                name: r.name.clone(),
                label_selector: each(&r.label_selector, |q| {
                    let operator = static_operator(&q.operator, &["in", "notin", "exists", "!"])
                        .ok_or_else(|| format!("label operator {:?}", q.operator))?;
                    Ok(LabelRequirement {
                        key: q.key.clone(),
                        operator,
                        values: q.values.clone(),
                    })
                })?,
                field_selector: each(&r.field_selector, |q| {
                    let operator = static_operator(&q.operator, &["=", "!="])
                        .ok_or_else(|| format!("field operator {:?}", q.operator))?;
                    Ok(FieldRequirement {
                        field: q.field.clone(),
                        operator,
                        value: q.value.clone(),
                    })
                })?,
            }),
            (None, Some(path)) => Attributes::NonResource(NonResourceAttributes {
                verb: self.verb.clone(),
                path: path.clone(),
            }),
            _ => return Err("exactly one of resource and non_resource_path must be set".into()),
        };
        Ok(AccessRequest {
            user: self.user.clone(),
            groups,
            uid: self.uid.clone(),
            extra,
            attributes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_key_ids_are_never_recorded_and_arns_are() {
        let body = br#"{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{
            "user":"u","groups":["b","a"],"extra":{"accessKeyId":["AKIA"],"canonicalArn":["arn:x"]},
            "resourceAttributes":{"verb":"get","resource":"pods","namespace":"n",
              "labelSelector":{"requirements":[{"key":"app","operator":"In","values":["web"]}]}}}}"#;
        let req = crate::sar::parse_review(body).unwrap().request;
        let rec = RecordedRequest::of(&req).unwrap();
        let text = serde_json::to_string(&rec).unwrap();
        assert!(!text.contains("AKIA"), "{text}");
        assert_eq!(rec.extra_redacted, ["accessKeyId"]);
        let back = rec.to_request().unwrap();
        assert_eq!(back.attributes, req.attributes);
        assert_eq!(back.groups, req.groups);
        assert_eq!(back.extra["canonicalArn"], ["arn:x"]);
        assert!(back.extra["accessKeyId"].is_empty());
        assert!(secret_like("my-api-token") && !secret_like("canonicalArn"));
    }
}
