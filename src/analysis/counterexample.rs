//! From a symbolic counterexample (a Cedar request and entity store) to
//! the SubjectAccessReview that produces it, following the entity model
//! backwards.
//!
//! The review is built from attributes, not ids: the solver leaves ids it
//! does not care about empty, and the guard ([`super::guard`]) ties every
//! id a policy can test to the attributes the entity model derives it
//! from. Groups are the principal's `k8s::Group` ancestors (transitively,
//! so groups of groups become plain groups, which answers every `principal
//! in` test the same way). `extra` is read from the principal's tags, and
//! from its `extra` attribute for keys that have no tag.

use std::collections::BTreeMap;

use cedar_policy::{Entities, Entity, EntityUid, EvalResult};
use cedar_policy_symcc::Env;
use serde_json::{json, Map, Value};

/// Why a counterexample has no SubjectAccessReview.
#[derive(Debug, thiserror::Error)]
pub enum NotAReview {
    /// A type or action the entity model does not produce from a review.
    #[error("{0} is not produced by a SubjectAccessReview")]
    Shape(String),
    /// A value no review field can carry.
    #[error("{0}")]
    Value(String),
}

fn string_attr(entity: Option<&Entity>, attr: &str) -> Option<String> {
    match entity?.attr(attr)? {
        Ok(EvalResult::String(s)) => Some(s),
        _ => None,
    }
}

fn strings(value: &EvalResult) -> Vec<String> {
    match value {
        EvalResult::Set(set) => set
            .iter()
            .filter_map(|v| match v {
                EvalResult::String(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn record_string(record: &cedar_policy::Record, key: &str) -> Option<String> {
    match record.get(key)? {
        EvalResult::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// The username a principal entity stands for.
fn username(uid: &EntityUid, entity: Option<&Entity>) -> Result<String, NotAReview> {
    let name = string_attr(entity, "name").unwrap_or_else(|| uid.id().unescaped().to_owned());
    match uid.type_name().to_string().as_str() {
        "k8s::User" => Ok(name),
        "k8s::ServiceAccount" => {
            let namespace = string_attr(entity, "namespace").unwrap_or_default();
            Ok(format!("system:serviceaccount:{namespace}:{name}"))
        }
        "k8s::Node" => Ok(format!("system:node:{name}")),
        other => Err(NotAReview::Shape(format!("principal type {other}"))),
    }
}

fn extra_of(entity: Option<&Entity>) -> BTreeMap<String, Vec<String>> {
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let Some(entity) = entity else {
        return extra;
    };
    for (key, value) in entity.tags() {
        if let Ok(value) = value {
            extra.insert(key.to_owned(), strings(&value));
        }
    }
    if let Some(Ok(EvalResult::Set(records))) = entity.attr("extra") {
        for r in records.iter() {
            if let EvalResult::Record(r) = r {
                let Some(key) = record_string(r, "key") else {
                    continue;
                };
                let values = r.get("values").map(strings).unwrap_or_default();
                extra.entry(key).or_insert(values);
            }
        }
    }
    extra
}

fn insert_non_empty(map: &mut Map<String, Value>, key: &str, value: Option<String>) {
    if let Some(v) = value.filter(|v| !v.is_empty()) {
        map.insert(key.to_owned(), Value::String(v));
    }
}

fn label_operator(op: &str) -> Option<&'static str> {
    match op {
        "in" => Some("In"),
        "notin" => Some("NotIn"),
        "exists" => Some("Exists"),
        "!" => Some("DoesNotExist"),
        _ => None,
    }
}

fn field_operator(op: &str) -> Option<&'static str> {
    match op {
        "=" => Some("In"),
        "!=" => Some("NotIn"),
        _ => None,
    }
}

fn selector(
    entity: Option<&Entity>,
    attr: &str,
    requirement: impl Fn(&cedar_policy::Record) -> Result<Value, NotAReview>,
) -> Result<Option<Value>, NotAReview> {
    let Some(Ok(EvalResult::Set(set))) = entity.and_then(|e| e.attr(attr)) else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for item in set.iter() {
        if let EvalResult::Record(r) = item {
            out.push(requirement(r)?);
        }
    }
    Ok(Some(json!({ "requirements": out })))
}

/// `resourceAttributes` of a `k8s::Resource`.
fn api_resource(verb: &str, entity: Option<&Entity>) -> Result<Value, NotAReview> {
    let mut attrs = Map::new();
    attrs.insert("verb".into(), Value::String(verb.to_owned()));
    for (field, attr) in [
        ("group", "apiGroup"),
        ("version", "version"),
        ("resource", "resource"),
        ("subresource", "subresource"),
        ("namespace", "namespace"),
        ("name", "name"),
    ] {
        insert_non_empty(&mut attrs, field, string_attr(entity, attr));
    }
    let labels = selector(entity, "labelSelector", |r| {
        let op = record_string(r, "operator").unwrap_or_default();
        let operator = label_operator(&op)
            .ok_or_else(|| NotAReview::Value(format!("label selector operator {op:?}")))?;
        Ok(json!({
            "key": record_string(r, "key").unwrap_or_default(),
            "operator": operator,
            "values": r.get("values").map(strings).unwrap_or_default(),
        }))
    })?;
    if let Some(l) = labels {
        attrs.insert("labelSelector".into(), l);
    }
    let fields = selector(entity, "fieldSelector", |r| {
        let op = record_string(r, "operator").unwrap_or_default();
        let operator = field_operator(&op)
            .ok_or_else(|| NotAReview::Value(format!("field selector operator {op:?}")))?;
        Ok(json!({
            "key": record_string(r, "field").unwrap_or_default(),
            "operator": operator,
            "values": [record_string(r, "value").unwrap_or_default()],
        }))
    })?;
    if let Some(f) = fields {
        attrs.insert("fieldSelector".into(), f);
    }
    Ok(Value::Object(attrs))
}

/// `resourceAttributes` of an impersonation check about an identity.
fn identity_target(
    verb: &str,
    constrained: bool,
    uid: &EntityUid,
    entity: Option<&Entity>,
) -> Result<Value, NotAReview> {
    let auth = "authentication.k8s.io";
    let name = || string_attr(entity, "name").unwrap_or_default();
    let (group, resource, namespace, name, subresource) =
        match (uid.type_name().to_string().as_str(), constrained) {
            ("k8s::User", c) => (if c { auth } else { "" }, "users", None, name(), None),
            ("k8s::Node", false) => ("", "users", None, format!("system:node:{}", name()), None),
            ("k8s::Node", true) => (auth, "nodes", None, name(), None),
            ("k8s::ServiceAccount", c) => (
                if c { auth } else { "" },
                "serviceaccounts",
                string_attr(entity, "namespace"),
                name(),
                None,
            ),
            ("k8s::Group", c) => (if c { auth } else { "" }, "groups", None, name(), None),
            ("k8s::PrincipalUID", _) => (auth, "uids", None, uid.id().unescaped().to_owned(), None),
            ("k8s::Extra", _) => (
                auth,
                "userextras",
                None,
                string_attr(entity, "value").unwrap_or_default(),
                string_attr(entity, "key"),
            ),
            (other, _) => return Err(NotAReview::Shape(format!("impersonation target {other}"))),
        };
    let mut attrs = Map::new();
    attrs.insert("verb".into(), Value::String(verb.to_owned()));
    insert_non_empty(&mut attrs, "group", Some(group.to_owned()));
    attrs.insert("resource".into(), Value::String(resource.to_owned()));
    insert_non_empty(&mut attrs, "namespace", namespace);
    insert_non_empty(&mut attrs, "name", Some(name));
    insert_non_empty(&mut attrs, "subresource", subresource);
    Ok(Value::Object(attrs))
}

fn context_string(env: &Env, key: &str) -> Option<String> {
    match env.request.context()?.get(key)? {
        EvalResult::String(s) => Some(s),
        _ => None,
    }
}

fn groups_of(entities: &Entities, principal: &EntityUid) -> Vec<String> {
    let mut groups: Vec<String> = entities
        .ancestors(principal)
        .into_iter()
        .flatten()
        .filter(|g| g.type_name().to_string() == "k8s::Group")
        .map(|g| g.id().unescaped().to_owned())
        .collect();
    groups.sort();
    groups.dedup();
    groups
}

/// The `authorization.k8s.io/v1` SubjectAccessReview for a counterexample.
pub fn review(env: &Env) -> Result<Value, NotAReview> {
    let missing = |what: &str| NotAReview::Shape(format!("a request without {what}"));
    let principal = env
        .request
        .principal()
        .ok_or_else(|| missing("principal"))?;
    let action = env.request.action().ok_or_else(|| missing("action"))?;
    let resource = env.request.resource().ok_or_else(|| missing("resource"))?;
    let principal_entity = env.entities.get(principal);
    let resource_entity = env.entities.get(resource);

    let action_name = action.id().unescaped();
    let mode = context_string(env, "mode");
    let verb = match action_name {
        "impersonate" => match &mode {
            Some(m) => format!("impersonate:{m}"),
            None => "impersonate".to_owned(),
        },
        "impersonate-on" => format!(
            "impersonate-on:{}:{}",
            mode.clone().unwrap_or_default(),
            context_string(env, "verb").unwrap_or_default()
        ),
        other => other.to_owned(),
    };

    let mut spec = Map::new();
    spec.insert(
        "user".into(),
        Value::String(username(principal, principal_entity)?),
    );
    let groups = groups_of(&env.entities, principal);
    if !groups.is_empty() {
        spec.insert("groups".into(), json!(groups));
    }
    insert_non_empty(&mut spec, "uid", string_attr(principal_entity, "uid"));
    let extra = extra_of(principal_entity);
    if !extra.is_empty() {
        spec.insert("extra".into(), json!(extra));
    }
    match resource.type_name().to_string().as_str() {
        "k8s::NonResourceURL" => {
            let path = string_attr(resource_entity, "path")
                .unwrap_or_else(|| resource.id().unescaped().to_owned());
            spec.insert(
                "nonResourceAttributes".into(),
                json!({ "verb": verb, "path": path }),
            );
        }
        "k8s::Resource" => {
            spec.insert(
                "resourceAttributes".into(),
                api_resource(&verb, resource_entity)?,
            );
        }
        _ if action_name == "impersonate" => {
            spec.insert(
                "resourceAttributes".into(),
                identity_target(&verb, mode.is_some(), resource, resource_entity)?,
            );
        }
        other => return Err(NotAReview::Shape(format!("resource type {other}"))),
    }
    Ok(json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": spec,
    }))
}
