//! Compiled policies: the RBAC-shaped scopes and conditions evaluated
//! straight off an [`AccessRequest`], without building Cedar entities.
//!
//! Building a request's entities and running Cedar's evaluator over the
//! candidate policies is most of an uncached decision's cost, yet the
//! policies a converted RBAC produces ask only a few questions: is the
//! principal in a group, is the verb one of these, is `resource.namespace`
//! (when it exists) this string, is `resource.resource` one of these. A
//! policy whose scope and conditions use only such tests is compiled here
//! into a small tree evaluated with Cedar's own semantics (left to right,
//! `&&` and `||` short-circuiting, reading an absent attribute is an error).
//!
//! The fast path never guesses. Evaluation answers satisfied or not
//! satisfied only when Cedar would give that answer without an error; a
//! policy it cannot compile, an attribute it would read while absent, or a
//! request whose entities it does not model (impersonation targets) answers
//! [`Unknown`], and the caller evaluates the whole request through Cedar.
//! tests/engine_props.rs holds the fast path to Cedar's `is_authorized`
//! over whole sets.

use cedar_policy::{
    ActionConstraint, Effect, EntityTypeName, EntityUid, Policy, PrincipalConstraint,
    ResourceConstraint,
};
use serde_json::Value;
use std::collections::HashMap;

use crate::entities::{self, Identity, Impersonation, TYPES};
use crate::sar::{AccessRequest, Attributes, ResourceAttributes};

/// The fast path cannot say what Cedar would: evaluate through Cedar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Unknown;

/// The entity types a request's principal and resource can have, as far
/// as the fast path models them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    User,
    ServiceAccount,
    Node,
    Group,
    Resource,
    NonResourceUrl,
    /// Any other type: no principal or resource the fast path answers for
    /// has it.
    Other,
}

impl Kind {
    pub(crate) fn of(t: &EntityTypeName) -> Kind {
        let types = &*TYPES;
        [
            (&types.user, Kind::User),
            (&types.service_account, Kind::ServiceAccount),
            (&types.node, Kind::Node),
            (&types.group, Kind::Group),
            (&types.resource, Kind::Resource),
            (&types.non_resource_url, Kind::NonResourceUrl),
        ]
        .into_iter()
        .find(|(name, _)| *name == t)
        .map_or(Kind::Other, |(_, k)| k)
    }
}

/// An entity uid of a scope, by kind and id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Uid {
    pub kind: Kind,
    pub id: String,
}

impl Uid {
    pub(crate) fn of(uid: &EntityUid) -> Uid {
        Uid {
            kind: Kind::of(uid.type_name()),
            id: uid.id().unescaped().to_owned(),
        }
    }
}

/// A request as the fast path sees it: the principal, its groups, the
/// action and the resource, with the attributes their entities would have
/// (src/entities.rs is the model this mirrors).
pub(crate) struct View<'a> {
    pub principal: Kind,
    /// The principal's entity id: the username.
    pub user: &'a str,
    principal_name: &'a str,
    principal_namespace: Option<&'a str>,
    principal_uid: &'a str,
    has_extra: bool,
    pub groups: &'a [String],
    /// The `k8s::Action` id.
    pub action: &'a str,
    pub resource: Resource<'a>,
}

/// The resource entity of a request the fast path answers for.
pub(crate) enum Resource<'a> {
    /// A `k8s::Resource`.
    Api(&'a ResourceAttributes),
    /// A `k8s::NonResourceURL` with this path.
    Url(&'a str),
}

impl<'a> View<'a> {
    /// The view of a request, or `None` when its resource is an identity
    /// (impersonation checks), which the fast path does not model.
    pub(crate) fn of(req: &'a AccessRequest) -> Option<View<'a>> {
        let resource = match &req.attributes {
            Attributes::NonResource(n) => Resource::Url(&n.path),
            Attributes::Resource(r) => match entities::impersonation(&r.verb) {
                Impersonation::None | Impersonation::On { .. } => Resource::Api(r),
                Impersonation::Legacy | Impersonation::Identity { .. } => return None,
            },
        };
        let (principal, principal_name, principal_namespace) = match entities::identity(&req.user) {
            Identity::ServiceAccount { namespace, name } => {
                (Kind::ServiceAccount, name, Some(namespace))
            }
            Identity::Node { name } => (Kind::Node, name, None),
            Identity::User => (Kind::User, req.user.as_str(), None),
        };
        Some(View {
            principal,
            user: &req.user,
            principal_name,
            principal_namespace,
            principal_uid: &req.uid,
            has_extra: !req.extra.is_empty(),
            groups: &req.groups,
            action: entities::action_name(&req.attributes),
            resource,
        })
    }

    pub(crate) fn resource_kind(&self) -> Kind {
        match self.resource {
            Resource::Api(_) => Kind::Resource,
            Resource::Url(_) => Kind::NonResourceUrl,
        }
    }

    fn principal_is(&self, uid: &Uid) -> bool {
        uid.kind == self.principal && uid.id == self.user
    }

    /// `principal in uid`: the principal's only ancestors are its groups.
    fn principal_in(&self, uid: &Uid) -> bool {
        self.principal_is(uid) || (uid.kind == Kind::Group && self.groups.contains(&uid.id))
    }

    /// `resource == uid` (resources have no ancestors, so also `in`).
    fn resource_is(&self, uid: &Uid) -> bool {
        match self.resource {
            Resource::Api(r) => uid.kind == Kind::Resource && uid.id == entities::resource_path(r),
            Resource::Url(path) => uid.kind == Kind::NonResourceUrl && uid.id == path,
        }
    }

    /// A string attribute: `None` when the entity does not have it.
    fn string(&self, var: Var, attr: Attr) -> Option<&'a str> {
        let non_empty = |s: &'a str| (!s.is_empty()).then_some(s);
        match (var, attr) {
            (Var::Principal, Attr::Name) => Some(self.principal_name),
            (Var::Principal, Attr::Namespace) => self.principal_namespace,
            (Var::Principal, Attr::Uid) => non_empty(self.principal_uid),
            (Var::Principal, _) => None,
            (Var::Resource, attr) => match self.resource {
                Resource::Url(path) => (attr == Attr::Path).then_some(path),
                Resource::Api(r) => match attr {
                    Attr::ApiGroup => Some(&r.group),
                    Attr::Resource => Some(&r.resource),
                    Attr::Version => non_empty(&r.version),
                    Attr::Namespace => non_empty(&r.namespace),
                    Attr::Name => non_empty(&r.name),
                    Attr::Subresource => non_empty(&r.subresource),
                    _ => None,
                },
            },
        }
    }

    fn has(&self, var: Var, attr: Attr) -> bool {
        match (var, attr, &self.resource) {
            (Var::Principal, Attr::Extra, _) => self.has_extra,
            (Var::Resource, Attr::LabelSelector, Resource::Api(r)) => r.label_selector.is_some(),
            (Var::Resource, Attr::FieldSelector, Resource::Api(r)) => r.field_selector.is_some(),
            _ => self.string(var, attr).is_some(),
        }
    }
}

/// `principal` or `resource`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Var {
    Principal,
    Resource,
}

/// The attributes the entity model gives principals and resources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attr {
    Name,
    Namespace,
    Uid,
    Extra,
    ApiGroup,
    Resource,
    Version,
    Subresource,
    Path,
    LabelSelector,
    FieldSelector,
}

impl Attr {
    fn parse(s: &str) -> Option<Attr> {
        Some(match s {
            "name" => Attr::Name,
            "namespace" => Attr::Namespace,
            "uid" => Attr::Uid,
            "extra" => Attr::Extra,
            "apiGroup" => Attr::ApiGroup,
            "resource" => Attr::Resource,
            "version" => Attr::Version,
            "subresource" => Attr::Subresource,
            "path" => Attr::Path,
            "labelSelector" => Attr::LabelSelector,
            "fieldSelector" => Attr::FieldSelector,
            _ => return None,
        })
    }

    /// Attributes whose value is a string (the others are sets of records,
    /// which the fast path only tests with `has`).
    fn is_string(self) -> bool {
        !matches!(
            self,
            Attr::Extra | Attr::LabelSelector | Attr::FieldSelector
        )
    }
}

/// A string-valued operand.
#[derive(Debug)]
enum Operand {
    Literal(String),
    Attr(Var, Attr),
}

/// A boolean condition.
#[derive(Debug)]
enum Expr {
    Literal(bool),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Has(Var, Attr),
    Is(Var, Kind),
    Eq(Operand, Operand),
    /// A literal set of strings `.contains(operand)`.
    Contains(Vec<String>, Operand),
    /// `principal in` or `resource in` an entity literal.
    In(Var, Uid),
}

impl Operand {
    fn eval<'a>(&'a self, v: &View<'a>) -> Result<&'a str, Unknown> {
        match self {
            Operand::Literal(s) => Ok(s),
            Operand::Attr(var, attr) => v.string(*var, *attr).ok_or(Unknown),
        }
    }
}

impl Expr {
    fn eval(&self, v: &View<'_>) -> Result<bool, Unknown> {
        Ok(match self {
            Expr::Literal(b) => *b,
            Expr::And(a, b) => a.eval(v)? && b.eval(v)?,
            Expr::Or(a, b) => a.eval(v)? || b.eval(v)?,
            Expr::Not(a) => !a.eval(v)?,
            Expr::Has(var, attr) => v.has(*var, *attr),
            Expr::Is(Var::Principal, k) => v.principal == *k,
            Expr::Is(Var::Resource, k) => v.resource_kind() == *k,
            Expr::Eq(a, b) => {
                let a = a.eval(v)?;
                a == b.eval(v)?
            }
            Expr::Contains(set, x) => {
                let x = x.eval(v)?;
                set.iter().any(|s| s == x)
            }
            Expr::In(Var::Principal, uid) => v.principal_in(uid),
            Expr::In(Var::Resource, uid) => v.resource_is(uid),
        })
    }
}

fn var(e: &Value) -> Option<Var> {
    match e.get("Var")?.as_str()? {
        "principal" => Some(Var::Principal),
        "resource" => Some(Var::Resource),
        _ => None,
    }
}

fn binary(e: &Value) -> Option<(&Value, &Value)> {
    Some((e.get("left")?, e.get("right")?))
}

/// The only key of a one-key object: how the EST names an operator.
fn operator(e: &Value) -> Option<(&str, &Value)> {
    let map = e.as_object()?;
    if map.len() != 1 {
        return None;
    }
    map.iter().next().map(|(k, v)| (k.as_str(), v))
}

fn operand(e: &Value) -> Option<Operand> {
    match operator(e)? {
        ("Value", Value::String(s)) => Some(Operand::Literal(s.clone())),
        (".", dot) => {
            let attr = Attr::parse(dot.get("attr")?.as_str()?)?;
            attr.is_string()
                .then_some(Operand::Attr(var(dot.get("left")?)?, attr))
        }
        _ => None,
    }
}

fn entity_literal(e: &Value) -> Option<Uid> {
    let entity = e.get("Value")?.get("__entity")?;
    let t: EntityTypeName = entity.get("type")?.as_str()?.parse().ok()?;
    Some(Uid {
        kind: Kind::of(&t),
        id: entity.get("id")?.as_str()?.to_owned(),
    })
}

/// Compiles an expression (Cedar's JSON form), or `None` when it uses
/// anything beyond the subset.
fn expr(e: &Value) -> Option<Expr> {
    let boxed = |e: &Value| expr(e).map(Box::new);
    Some(match operator(e)? {
        ("Value", Value::Bool(b)) => Expr::Literal(*b),
        ("&&", op) => {
            let (l, r) = binary(op)?;
            Expr::And(boxed(l)?, boxed(r)?)
        }
        ("||", op) => {
            let (l, r) = binary(op)?;
            Expr::Or(boxed(l)?, boxed(r)?)
        }
        ("!", op) => Expr::Not(boxed(op.get("arg")?)?),
        ("has", op) => {
            let attr = op.get("attr")?.as_str()?;
            // Cedar 4's `has a.b` paths are not in the subset.
            if op.as_object()?.len() != 2 {
                return None;
            }
            Expr::Has(var(op.get("left")?)?, Attr::parse(attr)?)
        }
        ("is", op) => {
            if op.as_object()?.len() != 2 {
                return None;
            }
            let t: EntityTypeName = op.get("entity_type")?.as_str()?.parse().ok()?;
            Expr::Is(var(op.get("left")?)?, Kind::of(&t))
        }
        ("==", op) => {
            let (l, r) = binary(op)?;
            Expr::Eq(operand(l)?, operand(r)?)
        }
        ("!=", op) => {
            let (l, r) = binary(op)?;
            Expr::Not(Box::new(Expr::Eq(operand(l)?, operand(r)?)))
        }
        ("contains", op) => {
            let (l, r) = binary(op)?;
            let set = l
                .get("Set")?
                .as_array()?
                .iter()
                .map(|v| match operator(v)? {
                    ("Value", Value::String(s)) => Some(s.clone()),
                    _ => None,
                })
                .collect::<Option<Vec<String>>>()?;
            Expr::Contains(set, operand(r)?)
        }
        ("in", op) => {
            let (l, r) = binary(op)?;
            Expr::In(var(l)?, entity_literal(r)?)
        }
        _ => return None,
    })
}

#[derive(Debug)]
enum PrincipalScope {
    Any,
    Is(Kind),
    Eq(Uid),
    In(Uid),
    IsIn(Kind, Uid),
}

#[derive(Debug)]
enum ResourceScope {
    Any,
    Is(Kind),
    /// `==` and `in` alike: resources have no ancestors.
    Eq(Uid),
    IsIn(Kind, Uid),
}

/// A policy the fast path evaluates.
#[derive(Debug)]
pub(crate) struct CompiledPolicy {
    pub id: String,
    pub forbid: bool,
    principal: PrincipalScope,
    /// `None`: any action. Otherwise the `k8s::Action` ids the action
    /// constraint holds for, action groups expanded.
    actions: Option<Vec<String>>,
    resource: ResourceScope,
    /// `when` bodies, and `unless` bodies negated, in order.
    conditions: Vec<Expr>,
}

impl CompiledPolicy {
    /// Compiles a policy, or `None` when it uses anything the fast path
    /// does not evaluate. `action_members` maps each action group to the
    /// actions in it, transitively. Authorization requests only ever have
    /// a `k8s::Action`, so the scope keeps only those: a policy scoped to
    /// admission actions alone (`k8s::admission::Action`) holds for none,
    /// and a group of another type still holds for its `k8s::Action`
    /// members, exactly as Cedar finds through the action's ancestors.
    pub(crate) fn compile(
        policy: &Policy,
        action_members: &HashMap<EntityUid, Vec<EntityUid>>,
    ) -> Option<CompiledPolicy> {
        let principal = match policy.principal_constraint() {
            PrincipalConstraint::Any => PrincipalScope::Any,
            PrincipalConstraint::Is(t) => PrincipalScope::Is(Kind::of(&t)),
            PrincipalConstraint::Eq(uid) => PrincipalScope::Eq(Uid::of(&uid)),
            PrincipalConstraint::In(uid) => PrincipalScope::In(Uid::of(&uid)),
            PrincipalConstraint::IsIn(t, uid) => PrincipalScope::IsIn(Kind::of(&t), Uid::of(&uid)),
        };
        let resource = match policy.resource_constraint() {
            ResourceConstraint::Any => ResourceScope::Any,
            ResourceConstraint::Is(t) => ResourceScope::Is(Kind::of(&t)),
            ResourceConstraint::Eq(uid) | ResourceConstraint::In(uid) => {
                ResourceScope::Eq(Uid::of(&uid))
            }
            ResourceConstraint::IsIn(t, uid) => ResourceScope::IsIn(Kind::of(&t), Uid::of(&uid)),
        };
        let action_name = |uid: &EntityUid| {
            (uid.type_name() == &TYPES.action).then(|| uid.id().unescaped().to_owned())
        };
        let actions = match policy.action_constraint() {
            ActionConstraint::Any => None,
            ActionConstraint::Eq(uid) => Some(action_name(&uid).into_iter().collect()),
            ActionConstraint::In(uids) => {
                let mut names = Vec::new();
                for uid in &uids {
                    names.extend(action_name(uid));
                    for member in action_members.get(uid).into_iter().flatten() {
                        names.extend(action_name(member));
                    }
                }
                names.sort_unstable();
                names.dedup();
                Some(names)
            }
        };
        let est = policy.to_json().ok()?;
        let mut conditions = Vec::new();
        for c in est.get("conditions")?.as_array()? {
            let body = expr(c.get("body")?)?;
            conditions.push(match c.get("kind")?.as_str()? {
                "when" => body,
                "unless" => Expr::Not(Box::new(body)),
                _ => return None,
            });
        }
        Some(CompiledPolicy {
            id: policy.id().to_string(),
            forbid: policy.effect() == Effect::Forbid,
            principal,
            actions,
            resource,
            conditions,
        })
    }

    fn scope(&self, v: &View<'_>) -> bool {
        let principal = match &self.principal {
            PrincipalScope::Any => true,
            PrincipalScope::Is(k) => v.principal == *k,
            PrincipalScope::Eq(uid) => v.principal_is(uid),
            PrincipalScope::In(uid) => v.principal_in(uid),
            PrincipalScope::IsIn(k, uid) => v.principal == *k && v.principal_in(uid),
        };
        let action = || {
            self.actions
                .as_ref()
                .is_none_or(|names| names.iter().any(|n| n == v.action))
        };
        let resource = || match &self.resource {
            ResourceScope::Any => true,
            ResourceScope::Is(k) => v.resource_kind() == *k,
            ResourceScope::Eq(uid) => v.resource_is(uid),
            ResourceScope::IsIn(k, uid) => v.resource_kind() == *k && v.resource_is(uid),
        };
        principal && action() && resource()
    }

    /// Whether the policy is satisfied, as Cedar would find it; [`Unknown`]
    /// where Cedar's evaluation would error.
    pub(crate) fn satisfied(&self, v: &View<'_>) -> Result<bool, Unknown> {
        if !self.scope(v) {
            return Ok(false);
        }
        for c in &self.conditions {
            if !c.eval(v)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(text: &str) -> Option<CompiledPolicy> {
        CompiledPolicy::compile(&text.parse().unwrap(), &HashMap::new())
    }

    #[test]
    fn rbac_shaped_policies_compile() {
        for text in [
            r#"permit(principal in k8s::Group::"g", action in [k8s::Action::"get", k8s::Action::"list"], resource is k8s::Resource)
               when { resource has namespace && resource.namespace == "ns-1" && ["pods", "jobs"].contains(resource.resource) };"#,
            r#"forbid(principal, action, resource is k8s::Resource) when { resource.resource == "secrets" }
               unless { principal in k8s::Group::"platform" || principal.name == "root" };"#,
            r#"permit(principal is k8s::ServiceAccount, action == k8s::Action::"get", resource == k8s::NonResourceURL::"/healthz")
               when { principal.namespace != "kube-system" && !(resource is k8s::Resource) };"#,
        ] {
            assert!(compile(text).is_some(), "{text}");
        }
    }

    #[test]
    fn anything_outside_the_subset_is_left_to_cedar() {
        for text in [
            r#"permit(principal, action, resource) when { context.mode == "x" };"#,
            r#"permit(principal, action, resource) when { resource.path like "/api*" };"#,
            r#"permit(principal, action, resource) when { principal.hasTag("k") };"#,
            r#"permit(principal, action, resource) when { 1 + 1 == 2 };"#,
            r#"permit(principal, action, resource) when { resource.labelSelector == "x" };"#,
            r#"permit(principal, action, resource) when { resource.name == 3 };"#,
            r#"permit(principal, action, resource) when { resource is k8s::Resource in k8s::Group::"g" };"#,
        ] {
            assert!(compile(text).is_none(), "{text}");
        }
    }
}
