//! From an [`AccessRequest`] to Cedar's principal, action, resource and
//! entities, following the entity model (docs/policy-model.md).
//!
//! Every entity is built with `Entity::new_with_tags` and every id with
//! `EntityUid::from_type_name_and_id`: request strings are never spliced into
//! Cedar or JSON text, so no username, however quoted, can change what a
//! policy means.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;
use std::sync::LazyLock;

use cedar_policy::{
    Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, RestrictedExpression,
};

use crate::sar::{AccessRequest, Attributes, ResourceAttributes};

/// The entity types of the `k8s` namespace, parsed once.
pub(crate) struct Types {
    pub user: EntityTypeName,
    pub service_account: EntityTypeName,
    pub node: EntityTypeName,
    pub group: EntityTypeName,
    pub resource: EntityTypeName,
    pub non_resource_url: EntityTypeName,
    pub principal_uid: EntityTypeName,
    pub extra: EntityTypeName,
    pub action: EntityTypeName,
}

pub(crate) static TYPES: LazyLock<Types> = LazyLock::new(|| {
    let t = |s: &str| EntityTypeName::from_str(s).expect("static entity type names parse");
    Types {
        user: t("k8s::User"),
        service_account: t("k8s::ServiceAccount"),
        node: t("k8s::Node"),
        group: t("k8s::Group"),
        resource: t("k8s::Resource"),
        non_resource_url: t("k8s::NonResourceURL"),
        principal_uid: t("k8s::PrincipalUID"),
        extra: t("k8s::Extra"),
        action: t("k8s::Action"),
    }
});

fn uid(type_name: &EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(type_name.clone(), EntityId::new(id))
}

/// The action entity for a verb, exactly as sent.
pub fn action_uid(verb: &str) -> EntityUid {
    uid(&TYPES.action, verb)
}

/// How a verb asks about impersonation (the entity model's
/// "Impersonation" section).
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Impersonation<'a> {
    /// Not an impersonation verb (custom verbs included).
    None,
    /// `impersonate`: may the requester take on this identity?
    Legacy,
    /// `impersonate:<mode>` (Kubernetes 1.35+): the same question, per mode.
    Identity { mode: &'a str },
    /// `impersonate-on:<mode>:<verb>`: may the requester, impersonating in
    /// that mode, do `verb` on the resource?
    On { mode: &'a str, verb: &'a str },
}

/// Classifies a verb. `impersonate:` or `impersonate-on:` with a part
/// missing is a custom verb ([`Impersonation::None`]).
pub fn impersonation(verb: &str) -> Impersonation<'_> {
    if verb == "impersonate" {
        return Impersonation::Legacy;
    }
    if let Some(rest) = verb.strip_prefix("impersonate-on:") {
        return match rest.split_once(':') {
            Some((mode, verb)) if !mode.is_empty() && !verb.is_empty() => {
                Impersonation::On { mode, verb }
            }
            _ => Impersonation::None,
        };
    }
    match verb.strip_prefix("impersonate:") {
        Some(mode) if !mode.is_empty() => Impersonation::Identity { mode },
        _ => Impersonation::None,
    }
}

/// The Cedar action name (the id of `k8s::Action`) for a request: the verb
/// as sent, except that the constrained-impersonation verbs map onto
/// `impersonate` and `impersonate-on`.
pub fn action_name(attributes: &Attributes) -> &str {
    let verb = attributes.verb();
    match impersonation(verb) {
        Impersonation::Identity { .. } => "impersonate",
        Impersonation::On { .. } => "impersonate-on",
        Impersonation::None | Impersonation::Legacy => verb,
    }
}

/// The request context: `mode` (and `verb`) for constrained impersonation,
/// empty for everything else.
fn context(attributes: &Attributes) -> Result<Context, EntityError> {
    let pairs: Vec<(&str, &str)> = match impersonation(attributes.verb()) {
        Impersonation::Identity { mode } => vec![("mode", mode)],
        Impersonation::On { mode, verb } => vec![("mode", mode), ("verb", verb)],
        Impersonation::None | Impersonation::Legacy => return Ok(Context::empty()),
    };
    Context::from_pairs(pairs.into_iter().map(|(k, v)| (k.to_owned(), string(v))))
        .map_err(|e| EntityError::Cedar(e.to_string()))
}

/// What a username denotes.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Identity<'a> {
    /// `system:serviceaccount:<namespace>:<name>`, both parts non-empty.
    ServiceAccount { namespace: &'a str, name: &'a str },
    /// `system:node:<name>`, name non-empty.
    Node { name: &'a str },
    /// Anything else, malformed service-account and node names included.
    User,
}

/// Classifies a username; malformed service-account or node names fall back
/// to [`Identity::User`].
pub fn identity(username: &str) -> Identity<'_> {
    if let Some(rest) = username.strip_prefix("system:serviceaccount:") {
        let mut parts = rest.split(':');
        if let (Some(namespace), Some(name), None) = (parts.next(), parts.next(), parts.next()) {
            if !namespace.is_empty() && !name.is_empty() {
                return Identity::ServiceAccount { namespace, name };
            }
        }
    } else if let Some(name) = username.strip_prefix("system:node:") {
        if !name.is_empty() && !name.contains(':') {
            return Identity::Node { name };
        }
    }
    Identity::User
}

/// The principal's entity uid and its identity-specific attributes.
fn identity_entity(username: &str) -> (EntityUid, Vec<(&'static str, String)>) {
    match identity(username) {
        Identity::ServiceAccount { namespace, name } => (
            uid(&TYPES.service_account, username),
            vec![
                ("name", name.to_owned()),
                ("namespace", namespace.to_owned()),
            ],
        ),
        Identity::Node { name } => (uid(&TYPES.node, username), vec![("name", name.to_owned())]),
        Identity::User => (
            uid(&TYPES.user, username),
            vec![("name", username.to_owned())],
        ),
    }
}

/// Everything Cedar needs for one request, plus what the policy index
/// selects by.
pub struct RequestEntities {
    pub principal: EntityUid,
    pub action: EntityUid,
    pub resource: EntityUid,
    /// Group uids of the principal (its ancestors).
    pub principal_groups: Vec<EntityUid>,
    /// The `resource` attribute when the resource is a `k8s::Resource`
    /// (`pods`, `deployments`, ...): the index narrows by it.
    pub resource_kind: Option<String>,
    pub entities: Entities,
    /// `mode` and `verb` of constrained impersonation; empty otherwise.
    pub context: Context,
}

/// Why entities could not be built. Not reachable from client input with the
/// value shapes used here; kept as an error rather than a panic all the same.
#[derive(Debug, thiserror::Error)]
pub enum EntityError {
    /// Cedar refused an entity.
    #[error("building entities: {0}")]
    Cedar(String),
}

fn string(s: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(s.to_owned())
}

fn string_set(values: &[String]) -> RestrictedExpression {
    RestrictedExpression::new_set(values.iter().map(|v| string(v)))
}

fn record(
    fields: impl IntoIterator<Item = (&'static str, RestrictedExpression)>,
) -> Result<RestrictedExpression, EntityError> {
    RestrictedExpression::new_record(fields.into_iter().map(|(k, v)| (k.to_owned(), v)))
        .map_err(|e| EntityError::Cedar(e.to_string()))
}

fn entity(
    uid: EntityUid,
    attrs: HashMap<String, RestrictedExpression>,
    parents: HashSet<EntityUid>,
    tags: Vec<(String, RestrictedExpression)>,
) -> Result<Entity, EntityError> {
    Entity::new_with_tags(uid, attrs, parents, tags).map_err(|e| EntityError::Cedar(e.to_string()))
}

fn attrs_of(pairs: Vec<(&'static str, String)>) -> HashMap<String, RestrictedExpression> {
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_owned(), RestrictedExpression::new_string(v)))
        .collect()
}

/// The principal of a request with its groups: what a SubjectAccessReview
/// and an AdmissionReview's `userInfo` both map to.
pub struct Principal {
    pub uid: EntityUid,
    /// Group uids of the principal (its parents).
    pub groups: Vec<EntityUid>,
    /// The groups' entities, then the principal's.
    pub entities: Vec<Entity>,
}

/// Builds the principal entity and its groups' entities from a user's
/// name, groups (sorted, without duplicates), uid (empty when not sent)
/// and extra values.
pub fn principal(
    user: &str,
    groups: &[String],
    user_uid: &str,
    extra: &BTreeMap<String, Vec<String>>,
) -> Result<Principal, EntityError> {
    let (principal, identity_attrs) = identity_entity(user);
    let principal_groups: Vec<EntityUid> = groups.iter().map(|g| uid(&TYPES.group, g)).collect();

    let mut principal_attrs = attrs_of(identity_attrs);
    if !user_uid.is_empty() {
        principal_attrs.insert("uid".into(), string(user_uid));
    }
    let mut tags = Vec::with_capacity(extra.len());
    if !extra.is_empty() {
        let mut records = Vec::with_capacity(extra.len());
        for (key, values) in extra {
            records.push(record([
                ("key", string(key)),
                ("values", string_set(values)),
            ])?);
            tags.push((key.clone(), string_set(values)));
        }
        principal_attrs.insert("extra".into(), RestrictedExpression::new_set(records));
    }

    let mut entities: Vec<Entity> = Vec::with_capacity(groups.len() + 3);
    for (group, group_uid) in groups.iter().zip(&principal_groups) {
        entities.push(entity(
            group_uid.clone(),
            attrs_of(vec![("name", group.clone())]),
            HashSet::new(),
            Vec::new(),
        )?);
    }
    entities.push(entity(
        principal.clone(),
        principal_attrs,
        principal_groups.iter().cloned().collect(),
        tags,
    )?);
    Ok(Principal {
        uid: principal,
        groups: principal_groups,
        entities,
    })
}

/// Builds the principal, action, resource and entities of a request.
/// `action_entity` is the schema's entity for the verb, needed only when
/// the schema puts the action into action groups.
pub fn build(
    req: &AccessRequest,
    action_entity: Option<&Entity>,
) -> Result<RequestEntities, EntityError> {
    let Principal {
        uid: principal,
        groups: principal_groups,
        entities: mut principal_entities,
    } = principal(&req.user, &req.groups, &req.uid, &req.extra)?;

    let (resource, resource_entity) = resource_entity(req)?;
    let resource_is_principal = resource == principal;
    let resource_is_group =
        resource.type_name() == &TYPES.group && principal_groups.contains(&resource);
    let mut entities = Vec::with_capacity(principal_entities.len() + 2);
    if !resource_is_principal && !resource_is_group {
        entities.push(resource_entity);
    }
    entities.append(&mut principal_entities);
    if let Some(action) = action_entity {
        entities.push(action.clone());
    }

    let entities = closed_entities(&entities)?;
    let resource_kind = match &req.attributes {
        Attributes::Resource(r) if resource.type_name() == &TYPES.resource => {
            Some(r.resource.clone())
        }
        _ => None,
    };
    Ok(RequestEntities {
        resource_kind,
        principal,
        action: action_uid(action_name(&req.attributes)),
        resource,
        principal_groups,
        entities,
        context: context(&req.attributes)?,
    })
}

/// Collects request entities into an `Entities` without recomputing the
/// transitive closure, which `Entities::from_entities` always does and
/// which is most of the cost of a small request (8 µs of 9, measured).
/// The closure is already complete by construction: a principal's parents
/// are its groups, groups have no parents, a resource has none (or is the
/// principal itself), and the schema's action entities come closed.
pub(crate) fn closed_entities(entities: &[Entity]) -> Result<Entities, EntityError> {
    use cedar_policy_core::entities as core;
    let core = core::Entities::from_entities(
        entities
            .iter()
            .map(|e| AsRef::<cedar_policy_core::ast::Entity>::as_ref(e).clone()),
        None::<&core::NoEntitiesSchema>,
        core::TCComputation::AssumeAlreadyComputed,
        cedar_policy_core::extensions::Extensions::all_available(),
    )
    .map_err(|e| EntityError::Cedar(e.to_string()))?;
    Ok(Entities::from(core))
}

fn resource_entity(req: &AccessRequest) -> Result<(EntityUid, Entity), EntityError> {
    let plain = |uid: EntityUid, attrs: Vec<(&'static str, String)>| {
        let e = entity(uid.clone(), attrs_of(attrs), HashSet::new(), Vec::new())?;
        Ok((uid, e))
    };
    match &req.attributes {
        Attributes::NonResource(n) => plain(
            uid(&TYPES.non_resource_url, &n.path),
            vec![("path", n.path.clone())],
        ),
        Attributes::Resource(r) => {
            let target = match impersonation(&r.verb) {
                Impersonation::Legacy => legacy_target(r),
                Impersonation::Identity { .. } => constrained_target(r),
                Impersonation::None | Impersonation::On { .. } => None,
            };
            match target {
                Some(Target::User) => match identity(&r.name) {
                    Identity::Node { name } => {
                        plain(uid(&TYPES.node, &r.name), vec![("name", name.to_owned())])
                    }
                    _ => plain(uid(&TYPES.user, &r.name), vec![("name", r.name.clone())]),
                },
                Some(Target::Node) => plain(
                    uid(&TYPES.node, &format!("system:node:{}", r.name)),
                    vec![("name", r.name.clone())],
                ),
                Some(Target::ServiceAccount) => plain(
                    uid(
                        &TYPES.service_account,
                        &format!("system:serviceaccount:{}:{}", r.namespace, r.name),
                    ),
                    vec![("name", r.name.clone()), ("namespace", r.namespace.clone())],
                ),
                Some(Target::Group) => {
                    plain(uid(&TYPES.group, &r.name), vec![("name", r.name.clone())])
                }
                Some(Target::Uid) => plain(uid(&TYPES.principal_uid, &r.name), Vec::new()),
                Some(Target::Extra) => {
                    let mut attrs = vec![("key", r.subresource.clone())];
                    if !r.name.is_empty() {
                        attrs.push(("value", r.name.clone()));
                    }
                    plain(uid(&TYPES.extra, &r.subresource), attrs)
                }
                None => api_resource(r),
            }
        }
    }
}

/// Which identity an impersonation check is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    User,
    Node,
    ServiceAccount,
    Group,
    Uid,
    Extra,
}

/// Legacy `impersonate`: exactly the (apiGroup, resource) pairs the
/// apiserver sends name an identity.
fn legacy_target(r: &ResourceAttributes) -> Option<Target> {
    match (r.group.as_str(), r.resource.as_str()) {
        ("", "users") => Some(Target::User),
        ("", "groups") => Some(Target::Group),
        ("", "serviceaccounts") => Some(Target::ServiceAccount),
        ("authentication.k8s.io", "uids") => Some(Target::Uid),
        ("authentication.k8s.io", "userextras") => Some(Target::Extra),
        _ => None,
    }
}

/// `impersonate:<mode>`: the identity pairs, all in `authentication.k8s.io`.
fn constrained_target(r: &ResourceAttributes) -> Option<Target> {
    if r.group != "authentication.k8s.io" {
        return None;
    }
    match r.resource.as_str() {
        "users" => Some(Target::User),
        "groups" => Some(Target::Group),
        "uids" => Some(Target::Uid),
        "userextras" => Some(Target::Extra),
        "serviceaccounts" => Some(Target::ServiceAccount),
        "nodes" => Some(Target::Node),
        _ => None,
    }
}

/// The request path of a resource request: `/api` or `/apis/<group>`, then
/// version, `namespaces/<ns>`, resource, name and subresource, each only
/// when non-empty.
pub fn resource_path(r: &ResourceAttributes) -> String {
    let mut path = String::with_capacity(
        16 + r.group.len()
            + r.version.len()
            + r.namespace.len()
            + r.resource.len()
            + r.name.len()
            + r.subresource.len(),
    );
    if r.group.is_empty() {
        path.push_str("/api");
    } else {
        path.push_str("/apis/");
        path.push_str(&r.group);
    }
    let mut segment = |s: &str| {
        if !s.is_empty() {
            path.push('/');
            path.push_str(s);
        }
    };
    segment(&r.version);
    if !r.namespace.is_empty() {
        segment("namespaces");
        segment(&r.namespace);
    }
    segment(&r.resource);
    segment(&r.name);
    segment(&r.subresource);
    path
}

fn api_resource(r: &ResourceAttributes) -> Result<(EntityUid, Entity), EntityError> {
    let resource_uid = uid(&TYPES.resource, &resource_path(r));
    let mut attrs: HashMap<String, RestrictedExpression> = HashMap::with_capacity(8);
    attrs.insert("apiGroup".into(), string(&r.group));
    attrs.insert("resource".into(), string(&r.resource));
    for (key, value) in [
        ("version", &r.version),
        ("namespace", &r.namespace),
        ("name", &r.name),
        ("subresource", &r.subresource),
    ] {
        if !value.is_empty() {
            attrs.insert(key.into(), string(value));
        }
    }
    if let Some(labels) = &r.label_selector {
        let mut set = Vec::with_capacity(labels.len());
        for l in labels {
            set.push(record([
                ("key", string(&l.key)),
                ("operator", string(l.operator)),
                ("values", string_set(&l.values)),
            ])?);
        }
        attrs.insert("labelSelector".into(), RestrictedExpression::new_set(set));
    }
    if let Some(fields) = &r.field_selector {
        let mut set = Vec::with_capacity(fields.len());
        for f in fields {
            set.push(record([
                ("field", string(&f.field)),
                ("operator", string(f.operator)),
                ("value", string(&f.value)),
            ])?);
        }
        attrs.insert("fieldSelector".into(), RestrictedExpression::new_set(set));
    }
    let e = entity(resource_uid.clone(), attrs, HashSet::new(), Vec::new())?;
    Ok((resource_uid, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_account_and_node_names_with_wrong_parts_fall_back_to_user() {
        assert_eq!(
            identity("system:serviceaccount:ns:sa"),
            Identity::ServiceAccount {
                namespace: "ns",
                name: "sa"
            }
        );
        for name in [
            "system:serviceaccount:a:b:c",
            "system:serviceaccount::x",
            "system:serviceaccount:x:",
            "system:serviceaccount:bad",
            "system:node:",
            "system:node:a:b",
            "system:anonymous",
            "alice",
        ] {
            assert_eq!(identity(name), Identity::User, "{name}");
        }
        assert_eq!(
            identity("system:node:worker-1"),
            Identity::Node { name: "worker-1" }
        );
    }

    fn resource(group: &str, version: &str, ns: &str, res: &str, name: &str, sub: &str) -> String {
        resource_path(&ResourceAttributes {
            group: group.into(),
            version: version.into(),
            namespace: ns.into(),
            resource: res.into(),
            name: name.into(),
            subresource: sub.into(),
            ..Default::default()
        })
    }

    #[test]
    fn resource_paths_skip_empty_segments() {
        assert_eq!(
            resource("", "v1", "default", "pods", "web-0", ""),
            "/api/v1/namespaces/default/pods/web-0"
        );
        assert_eq!(
            resource("apps", "v1", "prod", "deployments", "api", "scale"),
            "/apis/apps/v1/namespaces/prod/deployments/api/scale"
        );
        assert_eq!(resource("", "v1", "", "nodes", "", ""), "/api/v1/nodes");
        assert_eq!(
            resource("", "", "alpha", "configmaps", "public", ""),
            "/api/namespaces/alpha/configmaps/public"
        );
    }
}
