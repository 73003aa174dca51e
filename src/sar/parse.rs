//! Reading a request body into a [`Review`]: the envelope, the spec
//! through k8s-openapi's types, and normalisation into an [`AccessRequest`].
//!
//! Two readers, one answer. The direct one reads a v1 review in a single
//! pass; it gives up on anything unusual (v1beta1, duplicate envelope
//! keys, a wrong apiVersion or kind, a missing spec, any JSON error), and
//! the careful one then reads the body again, naming the field at fault in
//! its error. Both read the spec with k8s-openapi's own deserializer and
//! normalise it with the same code, so a body the direct reader accepts
//! gives exactly what the careful one gives.

use k8s_openapi::api::authorization::v1 as authz;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{
    limits, AccessRequest, ApiVersion, Attributes, FieldRequirement, LabelRequirement,
    NonResourceAttributes, ResourceAttributes, SarError,
};

/// A parsed review: what to answer and in which version.
#[derive(Clone, Debug)]
pub struct Review {
    pub api_version: ApiVersion,
    pub request: AccessRequest,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "apiVersion", default, borrow)]
    api_version: Option<&'a RawValue>,
    #[serde(default, borrow)]
    kind: Option<&'a RawValue>,
    #[serde(default, borrow)]
    spec: Option<&'a RawValue>,
}

/// v1beta1 spells the groups field `group`; everything else is as in v1.
#[derive(Deserialize)]
struct V1Beta1Groups {
    #[serde(default)]
    group: Option<Vec<String>>,
}

fn string_field(raw: Option<&RawValue>) -> Result<String, serde_json::Error> {
    match raw {
        None => Ok(String::new()),
        Some(raw) => Ok(serde_json::from_str::<Option<String>>(raw.get())?.unwrap_or_default()),
    }
}

/// A v1 review read in one pass: what the direct reader sees.
#[derive(Deserialize)]
struct Direct<'a> {
    #[serde(rename = "apiVersion", default, borrow)]
    api_version: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    kind: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    spec: Option<authz::SubjectAccessReviewSpec>,
}

/// The direct reader: `None` sends the body to [`parse_review_careful`].
fn parse_review_direct(body: &[u8]) -> Option<Review> {
    // A derived struct also accepts a JSON array of its fields in order.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    let direct: Direct = serde_json::from_slice(body).ok()?;
    if direct.api_version.as_deref() != Some(ApiVersion::V1.as_str())
        || direct.kind.as_deref() != Some("SubjectAccessReview")
    {
        return None;
    }
    Some(Review {
        api_version: ApiVersion::V1,
        request: normalise(direct.spec?).ok()?,
    })
}

/// Parses a request body into a [`Review`]. The body is JSON whatever the
/// Content-Type said; every error names what is wrong.
pub fn parse_review(body: &[u8]) -> Result<Review, SarError> {
    match parse_review_direct(body) {
        Some(review) => Ok(review),
        None => parse_review_careful(body),
    }
}

/// The careful reader alone: the envelope first, then the spec with the
/// path of any error. [`parse_review`] gives the same answer faster; this
/// is the reference the tests hold it to.
pub fn parse_review_careful(body: &[u8]) -> Result<Review, SarError> {
    let envelope: Envelope = serde_json::from_slice(body)?;
    // A derived struct also accepts a JSON array of its fields in order.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(SarError::NotAnObject);
    }
    let api_version = string_field(envelope.api_version)?;
    let api_version = match api_version.as_str() {
        "authorization.k8s.io/v1" => ApiVersion::V1,
        "authorization.k8s.io/v1beta1" => ApiVersion::V1Beta1,
        _ => return Err(SarError::ApiVersion(api_version)),
    };
    let kind = string_field(envelope.kind)?;
    if kind != "SubjectAccessReview" {
        return Err(SarError::Kind(kind));
    }
    let spec_raw = envelope.spec.ok_or(SarError::MissingSpec)?;
    if spec_raw.get() == "null" {
        return Err(SarError::MissingSpec);
    }
    let mut spec: authz::SubjectAccessReviewSpec = parse_spec(spec_raw)?;
    if api_version == ApiVersion::V1Beta1 {
        let beta: V1Beta1Groups = parse_spec(spec_raw)?;
        spec.groups = beta.group;
    }
    Ok(Review {
        api_version,
        request: normalise(spec)?,
    })
}

/// Parses the spec, naming the field at fault (`spec.resourceAttributes.verb`).
fn parse_spec<T: serde::de::DeserializeOwned>(raw: &RawValue) -> Result<T, SarError> {
    let mut de = serde_json::Deserializer::from_str(raw.get());
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = match e.path().to_string().as_str() {
            "." => "spec".to_owned(),
            p => format!("spec.{p}"),
        };
        // The position serde_json adds is relative to the spec, not the
        // body; the path says more.
        let message = e.inner().to_string();
        let message = match message.rfind(" at line ") {
            Some(i) => message[..i].to_owned(),
            None => message,
        };
        SarError::Spec { path, message }
    })
}

fn sorted_set(mut values: Vec<String>) -> Vec<String> {
    values.sort_unstable();
    values.dedup();
    values
}

fn at_most(field: &'static str, count: usize, limit: usize) -> Result<(), SarError> {
    if count > limit {
        return Err(SarError::TooMany {
            field,
            count,
            limit,
        });
    }
    Ok(())
}

/// One selector: how many requirements, and how many values in all.
fn selector_within_limits(
    field: &'static str,
    value_counts: impl ExactSizeIterator<Item = usize>,
) -> Result<(), SarError> {
    at_most(field, value_counts.len(), limits::SELECTOR_REQUIREMENTS)?;
    at_most(field, value_counts.sum(), limits::SELECTOR_VALUES)
}

/// Refuses reviews whose lists exceed [`limits`], before any of their
/// entries is turned into anything.
fn check_limits(spec: &authz::SubjectAccessReviewSpec) -> Result<(), SarError> {
    at_most(
        "spec.groups",
        spec.groups.as_ref().map_or(0, Vec::len),
        limits::GROUPS,
    )?;
    if let Some(extra) = &spec.extra {
        at_most("spec.extra", extra.len(), limits::EXTRA_KEYS)?;
        at_most(
            "spec.extra values",
            extra.values().map(Vec::len).sum(),
            limits::EXTRA_VALUES,
        )?;
    }
    if let Some(r) = &spec.resource_attributes {
        let values = |q: &Option<Vec<String>>| q.as_ref().map_or(0, Vec::len);
        if let Some(q) = r
            .label_selector
            .as_ref()
            .and_then(|s| s.requirements.as_ref())
        {
            selector_within_limits(
                "spec.resourceAttributes.labelSelector.requirements",
                q.iter().map(|q| values(&q.values)),
            )?;
        }
        if let Some(q) = r
            .field_selector
            .as_ref()
            .and_then(|s| s.requirements.as_ref())
        {
            selector_within_limits(
                "spec.resourceAttributes.fieldSelector.requirements",
                q.iter().map(|q| values(&q.values)),
            )?;
        }
    }
    Ok(())
}

fn normalise(spec: authz::SubjectAccessReviewSpec) -> Result<AccessRequest, SarError> {
    check_limits(&spec)?;
    let attributes = match (spec.resource_attributes, spec.non_resource_attributes) {
        (Some(r), None) => Attributes::Resource(resource_attributes(r)),
        (None, Some(n)) => Attributes::NonResource(NonResourceAttributes {
            verb: n.verb.unwrap_or_default(),
            path: n.path.unwrap_or_default(),
        }),
        (Some(_), Some(_)) => return Err(SarError::Attributes("both are set")),
        (None, None) => return Err(SarError::Attributes("neither is set")),
    };
    Ok(AccessRequest {
        user: spec.user.unwrap_or_default(),
        groups: sorted_set(spec.groups.unwrap_or_default()),
        uid: spec.uid.unwrap_or_default(),
        extra: spec
            .extra
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, sorted_set(v)))
            .collect(),
        attributes,
    })
}

fn resource_attributes(r: authz::ResourceAttributes) -> ResourceAttributes {
    let label_selector = r
        .label_selector
        .and_then(|s| s.requirements)
        .map(|reqs| {
            reqs.into_iter()
                .filter_map(|q| {
                    let operator = label_operator(&q.operator)?;
                    Some(LabelRequirement {
                        key: q.key,
                        operator,
                        values: sorted_set(q.values.unwrap_or_default()),
                    })
                })
                .collect::<Vec<_>>()
        })
        .and_then(non_empty_set);
    let field_selector = r
        .field_selector
        .and_then(|s| s.requirements)
        .map(|reqs| {
            reqs.into_iter()
                .filter_map(|q| {
                    let operator = field_operator(&q.operator)?;
                    // A field requirement carries exactly one value; any other
                    // count is dropped, which only widens the request.
                    let mut values = q.values.unwrap_or_default();
                    if values.len() != 1 {
                        return None;
                    }
                    Some(FieldRequirement {
                        field: q.key,
                        operator,
                        value: values.pop().unwrap_or_default(),
                    })
                })
                .collect::<Vec<_>>()
        })
        .and_then(non_empty_set);
    ResourceAttributes {
        verb: r.verb.unwrap_or_default(),
        group: r.group.unwrap_or_default(),
        version: r.version.unwrap_or_default(),
        resource: r.resource.unwrap_or_default(),
        subresource: r.subresource.unwrap_or_default(),
        namespace: r.namespace.unwrap_or_default(),
        name: r.name.unwrap_or_default(),
        label_selector,
        field_selector,
    }
}

fn non_empty_set<T: Ord>(mut v: Vec<T>) -> Option<Vec<T>> {
    v.sort_unstable();
    v.dedup();
    (!v.is_empty()).then_some(v)
}

/// Kubernetes selector syntax for a label operator; `None` drops it.
fn label_operator(op: &str) -> Option<&'static str> {
    match op {
        "In" => Some("in"),
        "NotIn" => Some("notin"),
        "Exists" => Some("exists"),
        "DoesNotExist" => Some("!"),
        _ => None,
    }
}

/// Kubernetes selector syntax for a field operator; `None` drops it.
fn field_operator(op: &str) -> Option<&'static str> {
    match op {
        "In" => Some("="),
        "NotIn" => Some("!="),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sar::{response_json, Status};

    fn parse(v: serde_json::Value) -> Result<Review, SarError> {
        parse_review(&serde_json::to_vec(&v).unwrap())
    }

    /// Bodies the direct reader must read as the careful one does, or
    /// leave to it.
    #[test]
    fn the_direct_reader_agrees_with_the_careful_one() {
        let ok = r#"{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"a","groups":["b","a","b"],"uid":"u","extra":{"k":["2","1","2"]},"resourceAttributes":{"verb":"get","resource":"pods","namespace":"n","labelSelector":{"requirements":[{"key":"app","operator":"In","values":["y","x"]}]}}}}"#;
        let bodies = [
            ok.to_owned(),
            ok.replace("\"user\":\"a\"", "\"user\":\"a\\u00e9\\\"q\"\n,\"other\":[1,{\"x\":null}]"),
            ok.replace("\"uid\":\"u\"", "\"uid\":null,\"user\":\"later\""),
            ok.replace("\"kind\":\"SubjectAccessReview\"", "\"kind\":\"SubjectAccessReview\",\"kind\":\"SubjectAccessReview\""),
            ok.replace("authorization.k8s.io/v1", "authorization.k8s.io/v1beta1").replace("\"groups\"", "\"group\""),
            ok.replace("\"spec\":{", "\"status\":{},\"spec\":{"),
            ok.replace("\"resource\":\"pods\"", "\"resource\":5"),
            ok.replace("\"resourceAttributes\"", "\"nonResourceAttributes\":{\"path\":\"/\"},\"resourceAttributes\""),
            ok.replace("\"key\":\"app\",", ""),
            r#"{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":null}"#.to_owned(),
            r#"{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":["a"]}"#.to_owned(),
            r#"["authorization.k8s.io/v1","SubjectAccessReview",{"user":"a","nonResourceAttributes":{}}]"#.to_owned(),
            r#"{"kind":"SubjectAccessReview","spec":{"user":"a","nonResourceAttributes":{}},"apiVersion":"authorization.k8s.io/v1"}"#.to_owned(),
            format!("  {ok}  "),
            format!("{ok} x"),
        ];
        let mut direct = 0;
        for body in &bodies {
            let careful = parse_review_careful(body.as_bytes());
            match parse_review_direct(body.as_bytes()) {
                Some(r) => {
                    direct += 1;
                    let c = careful
                        .unwrap_or_else(|e| panic!("{body}: direct read, careful refused: {e}"));
                    assert_eq!(
                        (r.api_version, r.request),
                        (c.api_version, c.request),
                        "{body}"
                    );
                }
                None => assert_eq!(
                    parse_review(body.as_bytes())
                        .map_err(|e| e.to_string())
                        .map(|r| r.request),
                    careful.map_err(|e| e.to_string()).map(|r| r.request),
                    "{body}"
                ),
            }
        }
        assert!(direct >= 5, "the direct reader read only {direct} bodies");
    }

    #[test]
    fn v1beta1_reads_group_not_groups() {
        let r = parse(serde_json::json!({
            "apiVersion": "authorization.k8s.io/v1beta1", "kind": "SubjectAccessReview",
            "spec": {"user": "a", "group": ["b", "a", "b"], "groups": ["ignored"],
                     "nonResourceAttributes": {"verb": "get", "path": "/x"}}
        }))
        .unwrap();
        assert_eq!(r.api_version, ApiVersion::V1Beta1);
        assert_eq!(r.request.groups, vec!["a", "b"]);
    }

    #[test]
    fn v1_ignores_group() {
        let r = parse(serde_json::json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": "a", "group": ["x"], "nonResourceAttributes": {"verb": "get", "path": "/x"}}
        }))
        .unwrap();
        assert!(r.request.groups.is_empty());
    }

    #[test]
    fn both_or_neither_attribute_kinds_are_malformed() {
        let both = parse(serde_json::json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": "a", "resourceAttributes": {"verb": "get"},
                     "nonResourceAttributes": {"verb": "get", "path": "/x"}}
        }));
        assert!(matches!(both, Err(SarError::Attributes("both are set"))));
        let neither = parse(serde_json::json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": "a"}
        }));
        assert!(matches!(
            neither,
            Err(SarError::Attributes("neither is set"))
        ));
    }

    #[test]
    fn wrong_kind_version_and_shape_are_named() {
        let e = parse(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "spec": {}}));
        assert!(e.unwrap_err().to_string().contains("apiVersion"));
        let e = parse(serde_json::json!({"apiVersion": "authorization.k8s.io/v1", "kind": "Pod"}));
        assert!(e.unwrap_err().to_string().contains("kind"));
        let e = parse(serde_json::json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": 5, "nonResourceAttributes": {"verb": "get", "path": "/"}}
        }));
        assert_eq!(
            e.unwrap_err().to_string(),
            "malformed spec.user: invalid type: integer `5`, expected a string"
        );
        let e = parse(serde_json::json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": "a", "resourceAttributes": {"verb": ["get"]}}
        }));
        assert!(e
            .unwrap_err()
            .to_string()
            .starts_with("malformed spec.resourceAttributes.verb: invalid type"));
        let e = parse_review(br#"["authorization.k8s.io/v1", "SubjectAccessReview", {"user": "a", "nonResourceAttributes": {}}]"#);
        assert!(matches!(e, Err(SarError::NotAnObject | SarError::Json(_))));
        assert!(parse_review(b"[1,2").is_err());
        assert!(parse_review(b"\xff\xfe").is_err());
    }

    #[test]
    fn selectors_map_operators_and_drop_the_rest() {
        let r = parse(serde_json::json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": "a", "resourceAttributes": {"verb": "list", "resource": "pods",
              "labelSelector": {"rawSelector": "ignored", "requirements": [
                {"key": "app", "operator": "In", "values": ["b", "a"]},
                {"key": "t", "operator": "NotIn", "values": ["x"]},
                {"key": "e", "operator": "Exists"},
                {"key": "d", "operator": "DoesNotExist", "values": []},
                {"key": "g", "operator": "Gt", "values": ["1"]}]},
              "fieldSelector": {"requirements": [
                {"key": "spec.nodeName", "operator": "In", "values": ["n1"]},
                {"key": "metadata.name", "operator": "NotIn", "values": ["x"]},
                {"key": "two", "operator": "In", "values": ["a", "b"]},
                {"key": "none", "operator": "In", "values": []},
                {"key": "ex", "operator": "Exists", "values": ["v"]}]}}}
        }))
        .unwrap();
        let Attributes::Resource(ra) = r.request.attributes else {
            panic!("resource attributes expected")
        };
        let labels = ra.label_selector.unwrap();
        let ops: Vec<_> = labels
            .iter()
            .map(|l| (l.key.as_str(), l.operator))
            .collect();
        assert_eq!(
            ops,
            vec![("app", "in"), ("d", "!"), ("e", "exists"), ("t", "notin")]
        );
        assert_eq!(labels[0].values, vec!["a", "b"]);
        let fields = ra.field_selector.unwrap();
        assert_eq!(
            fields,
            vec![
                FieldRequirement {
                    field: "metadata.name".into(),
                    operator: "!=",
                    value: "x".into()
                },
                FieldRequirement {
                    field: "spec.nodeName".into(),
                    operator: "=",
                    value: "n1".into()
                },
            ]
        );
    }

    #[test]
    fn only_unsupported_requirements_means_no_selector() {
        let r = parse(serde_json::json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": "a", "resourceAttributes": {"verb": "list", "resource": "pods",
              "labelSelector": {"requirements": [{"key": "g", "operator": "Lt", "values": ["1"]}]},
              "fieldSelector": {"requirements": [{"key": "f", "operator": "In", "values": ["1", "2"]}]}}}
        }))
        .unwrap();
        let Attributes::Resource(ra) = r.request.attributes else {
            panic!("resource attributes expected")
        };
        assert!(ra.label_selector.is_none());
        assert!(ra.field_selector.is_none());
    }

    #[test]
    fn response_keeps_request_version_and_omits_empty_fields() {
        let body = response_json(
            ApiVersion::V1Beta1,
            &Status {
                allowed: false,
                denied: false,
                reason: String::new(),
                evaluation_error: String::new(),
            },
        );
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["apiVersion"], "authorization.k8s.io/v1beta1");
        assert_eq!(v["status"], serde_json::json!({"allowed": false}));
    }

    #[test]
    fn every_list_over_its_bound_is_refused_naming_the_field() {
        let with = |spec_part: serde_json::Value| {
            let mut spec = serde_json::json!({"user": "a", "resourceAttributes": {"verb": "list", "resource": "pods"}});
            for (k, v) in spec_part.as_object().unwrap() {
                if k == "resourceAttributes" {
                    for (k2, v2) in v.as_object().unwrap() {
                        spec["resourceAttributes"][k2] = v2.clone();
                    }
                } else {
                    spec[k] = v.clone();
                }
            }
            parse(
                serde_json::json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}),
            )
        };
        let many = |n: usize| (0..n).map(|i| format!("v{i}")).collect::<Vec<_>>();
        let extra_keys: serde_json::Map<String, serde_json::Value> = many(limits::EXTRA_KEYS + 1)
            .into_iter()
            .map(|k| (k, serde_json::json!(["x"])))
            .collect();
        let label = |n: usize, values: usize| {
            serde_json::json!({"resourceAttributes": {"labelSelector": {"requirements":
                (0..n).map(|i| serde_json::json!({"key": format!("k{i}"), "operator": "In", "values": many(values)})).collect::<Vec<_>>()}}})
        };
        let field = serde_json::json!({"resourceAttributes": {"fieldSelector": {"requirements":
            (0..=limits::SELECTOR_REQUIREMENTS).map(|i| serde_json::json!({"key": format!("f{i}"), "operator": "In", "values": ["x"]})).collect::<Vec<_>>()}}});
        for (part, field_named) in [
            (
                serde_json::json!({"groups": many(limits::GROUPS + 1)}),
                "spec.groups",
            ),
            (serde_json::json!({"extra": extra_keys}), "spec.extra"),
            (
                serde_json::json!({"extra": {"k": many(limits::EXTRA_VALUES + 1)}}),
                "spec.extra values",
            ),
            (label(limits::SELECTOR_REQUIREMENTS + 1, 1), "labelSelector"),
            (label(2, limits::SELECTOR_VALUES / 2 + 1), "labelSelector"),
            (field, "fieldSelector"),
        ] {
            let e = with(part).unwrap_err();
            assert!(matches!(e, SarError::TooMany { .. }), "{e}");
            assert!(e.to_string().contains(field_named), "{e}");
        }
        // At the bounds, everything is accepted.
        assert!(with(serde_json::json!({"groups": many(limits::GROUPS)})).is_ok());
        assert!(with(label(limits::SELECTOR_REQUIREMENTS, 1)).is_ok());
    }
}
