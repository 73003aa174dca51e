//! The policy index: for a request, only the policies whose scope can match.
//!
//! Cedar evaluates a policy's scope (principal, action, resource
//! constraints) before its conditions, and a policy whose scope is false
//! neither applies nor errors. So evaluating only the policies whose scope
//! can be true gives the same decision, the same determining policies and
//! the same errors as evaluating the whole set, at a cost that follows the
//! number of candidates instead of the size of the set.
//!
//! Policies are bucketed by principal key (any principal, a type, or an
//! entity that the principal must equal or be in), then by action (any, or
//! one verb per bucket; `in` lists and action groups are expanded), then by
//! resource type (any, or the one type an `is`/`==` constraint requires).
//! Policies that require a `k8s::Resource` are further split by the values
//! of `resource.resource` their first `when` condition requires (see
//! [`required_resource_kinds`]), as RBAC-shaped policies do.
//! Each leaf is a ready `PolicySet`. A request visits the leaves for its
//! principal, its type and each of its groups; a policy sits in exactly one
//! principal bucket and at most one leaf per verb, so no policy is
//! evaluated twice. The leaves' answers are merged exactly as Cedar
//! combines policies (see [`crate::eval::RawOutcome`]).
//!
//! Beside the leaves of Cedar policy sets, the index keeps the same
//! buckets keyed by plain strings and holding compiled policies
//! ([`super::compiled`]): [`PolicyIndex::compiled_outcome`] walks them for
//! a request without building a single Cedar value, and gives up (the
//! caller then uses Cedar) as soon as a leaf holds a policy that did not
//! compile or a policy's evaluation would error.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use cedar_policy::Policy;

use cedar_policy::{
    ActionConstraint, EntityTypeName, EntityUid, PolicySet, PrincipalConstraint, ResourceConstraint,
};

use super::compiled::{CompiledPolicy, Kind, Resource, Unknown, View};
use crate::entities::{RequestEntities, TYPES};
use crate::sar::AccessRequest;

/// Policies of one (principal key, action key) slot, split by the resource
/// type their scope requires, and for `k8s::Resource` by the resource kind
/// their condition requires.
#[derive(Default)]
struct Leaf {
    any_resource: Option<PolicySet>,
    by_resource_type: HashMap<EntityTypeName, PolicySet>,
    by_resource_kind: HashMap<String, PolicySet>,
}

/// Conjuncts of an expression (EST JSON) in evaluation order.
fn conjuncts<'a>(e: &'a serde_json::Value, out: &mut Vec<&'a serde_json::Value>) {
    match e.get("&&") {
        Some(and) => {
            conjuncts(&and["left"], out);
            conjuncts(&and["right"], out);
        }
        None => out.push(e),
    }
}

/// `resource.<attr>`, for a required string attribute of `k8s::Resource`.
fn resource_attr(e: &serde_json::Value) -> Option<&str> {
    let dot = e.get(".")?;
    if dot["left"] != serde_json::json!({"Var": "resource"}) {
        return None;
    }
    dot["attr"]
        .as_str()
        .filter(|a| *a == "resource" || *a == "apiGroup")
}

/// `resource has <attr>`.
fn is_resource_has(e: &serde_json::Value) -> bool {
    e.get("has")
        .is_some_and(|h| h["left"] == serde_json::json!({"Var": "resource"}))
}

fn string_literal(e: &serde_json::Value) -> Option<&str> {
    e.get("Value")?.as_str()
}

/// The values of `resource.resource` a policy can possibly match, when that
/// can be read off its text: its scope requires a `k8s::Resource` (which
/// always has the string attributes `resource` and `apiGroup`), and its
/// first condition is a `when` that starts with comparisons of those
/// attributes to string literals (`==`, either side, or a literal set's
/// `contains`), possibly mixed with `resource has x` tests, as converted
/// RBAC rules do. None of those can error, so when one is false the
/// policy is not satisfied and reports no error: skipping it for requests
/// of other kinds changes nothing. `None` when nothing can be read off.
pub fn required_resource_kinds(policy: &Policy) -> Option<BTreeSet<String>> {
    let requires_resource = match policy.resource_constraint() {
        ResourceConstraint::Is(t) | ResourceConstraint::IsIn(t, _) => t == TYPES.resource,
        ResourceConstraint::Eq(uid) => uid.type_name() == &TYPES.resource,
        ResourceConstraint::Any | ResourceConstraint::In(_) => false,
    };
    if !requires_resource {
        return None;
    }
    let est = policy.to_json().ok()?;
    let first = est["conditions"].get(0)?;
    if first["kind"] != "when" {
        return None;
    }
    let mut run = Vec::new();
    conjuncts(&first["body"], &mut run);
    let mut allowed: Option<BTreeSet<String>> = None;
    let mut restrict = |values: BTreeSet<String>| {
        allowed = Some(match allowed.take() {
            None => values,
            Some(a) => a.intersection(&values).cloned().collect(),
        });
    };
    for c in run {
        if is_resource_has(c) || c.get("!").is_some_and(|not| is_resource_has(&not["arg"])) {
            // `resource has x` cannot error either: keep reading.
            continue;
        }
        if let Some(eq) = c.get("==") {
            let (attr, lit) = match (
                resource_attr(&eq["left"]),
                string_literal(&eq["right"]),
                string_literal(&eq["left"]),
                resource_attr(&eq["right"]),
            ) {
                (Some(a), Some(l), _, _) | (_, _, Some(l), Some(a)) => (a, l),
                _ => break,
            };
            if attr == "resource" {
                restrict(BTreeSet::from([lit.to_owned()]));
            }
        } else if let Some(contains) = c.get("contains") {
            let (Some(attr), Some(set)) = (
                resource_attr(&contains["right"]),
                contains["left"].get("Set").and_then(|s| s.as_array()),
            ) else {
                break;
            };
            let Some(values) = set
                .iter()
                .map(|v| string_literal(v).map(str::to_owned))
                .collect::<Option<BTreeSet<String>>>()
            else {
                break;
            };
            if attr == "resource" {
                restrict(values);
            }
        } else {
            break;
        }
    }
    allowed
}

/// Policies of one principal key, split by action.
#[derive(Default)]
struct ByAction {
    any_action: Leaf,
    by_action: HashMap<EntityUid, Leaf>,
}

/// The index of one policy set. Built once per set; read-only afterwards.
#[derive(Default)]
pub struct PolicyIndex {
    any_principal: ByAction,
    by_principal_type: HashMap<EntityTypeName, ByAction>,
    by_principal_entity: HashMap<EntityUid, ByAction>,
    policies: usize,
    leaves: usize,
    fast: FastIndex,
}

/// The compiled policies of one leaf set; `Opaque` once any policy of the
/// set did not compile.
enum FastSet {
    Compiled(Vec<Arc<CompiledPolicy>>),
    Opaque,
}

impl Default for FastSet {
    fn default() -> Self {
        FastSet::Compiled(Vec::new())
    }
}

impl FastSet {
    fn add(&mut self, policy: &Option<Arc<CompiledPolicy>>) {
        match (&mut *self, policy) {
            (FastSet::Compiled(list), Some(p)) => list.push(Arc::clone(p)),
            (_, None) => *self = FastSet::Opaque,
            (FastSet::Opaque, Some(_)) => {}
        }
    }
}

/// The fast index's maps: probed a dozen times per request (each group,
/// verb and resource kind), so hashed with foldhash rather than SipHash.
type FastMap<K, V> = foldhash::HashMap<K, V>;

/// [`Leaf`], compiled. Only the resource types the fast path answers for
/// are kept.
#[derive(Default)]
struct FastLeaf {
    any_resource: Option<FastSet>,
    by_resource_type: FastMap<Kind, FastSet>,
    by_resource_kind: FastMap<String, FastSet>,
}

/// [`ByAction`], compiled, keyed by `k8s::Action` id.
#[derive(Default)]
struct FastByAction {
    any_action: FastLeaf,
    by_action: FastMap<String, FastLeaf>,
}

/// The buckets of the index, keyed by strings, holding compiled policies.
#[derive(Default)]
struct FastIndex {
    any_principal: FastByAction,
    by_principal_type: FastMap<Kind, FastByAction>,
    by_principal_entity: FastMap<Kind, FastMap<String, FastByAction>>,
}

/// Expands an action constraint to concrete verbs: `None` for any action.
/// `members` maps an action group to every action below it.
fn action_keys(
    policy: &Policy,
    members: &HashMap<EntityUid, Vec<EntityUid>>,
) -> Option<Vec<EntityUid>> {
    let expand = |uid: EntityUid, out: &mut Vec<EntityUid>| {
        if let Some(below) = members.get(&uid) {
            out.extend(below.iter().cloned());
        }
        out.push(uid);
    };
    match policy.action_constraint() {
        ActionConstraint::Any => None,
        ActionConstraint::Eq(uid) => {
            // `==` does not include group members.
            Some(vec![uid])
        }
        ActionConstraint::In(uids) => {
            let mut out = Vec::new();
            for uid in uids {
                expand(uid, &mut out);
            }
            out.sort_by_key(|a| a.to_string());
            out.dedup();
            Some(out)
        }
    }
}

impl PolicyIndex {
    /// Indexes a policy set. `action_members` maps each action group to the
    /// actions in it (transitively), from the schema.
    pub fn build(set: &PolicySet, action_members: &HashMap<EntityUid, Vec<EntityUid>>) -> Self {
        let mut index = PolicyIndex::default();
        let policies: Vec<&Policy> = set.policies().collect();
        // Reading conditions (through the policy's JSON form) is the costly
        // part of indexing; it is done on several threads.
        let read = super::par_chunks(&policies, |chunk| {
            chunk
                .iter()
                .map(|p| {
                    (
                        required_resource_kinds(p),
                        CompiledPolicy::compile(p, action_members).map(Arc::new),
                    )
                })
                .collect::<Vec<_>>()
        });
        for (policy, (kinds, compiled)) in policies.into_iter().zip(read.into_iter().flatten()) {
            index.policies += 1;
            index.fast.insert(policy, &kinds, &compiled, action_members);
            let by_action = match policy.principal_constraint() {
                PrincipalConstraint::Any => &mut index.any_principal,
                PrincipalConstraint::Is(t) => index.by_principal_type.entry(t).or_default(),
                PrincipalConstraint::Eq(uid)
                | PrincipalConstraint::In(uid)
                | PrincipalConstraint::IsIn(_, uid) => {
                    index.by_principal_entity.entry(uid).or_default()
                }
            };
            let resource_type = match policy.resource_constraint() {
                ResourceConstraint::Is(t) | ResourceConstraint::IsIn(t, _) => Some(t),
                ResourceConstraint::Eq(uid) => Some(uid.type_name().clone()),
                // `in` may hold through the resource's ancestors, whatever
                // their type; leave it to Cedar.
                ResourceConstraint::Any | ResourceConstraint::In(_) => None,
            };
            let insert = |leaf: &mut Leaf| {
                // Ids are unique in the source set, so `add` cannot fail.
                match (&kinds, &resource_type) {
                    (Some(kinds), _) => {
                        for kind in kinds {
                            let _ = leaf
                                .by_resource_kind
                                .entry(kind.clone())
                                .or_default()
                                .add(policy.clone());
                        }
                    }
                    (None, None) => {
                        let _ = leaf
                            .any_resource
                            .get_or_insert_with(PolicySet::new)
                            .add(policy.clone());
                    }
                    (None, Some(t)) => {
                        let _ = leaf
                            .by_resource_type
                            .entry(t.clone())
                            .or_default()
                            .add(policy.clone());
                    }
                }
            };
            match action_keys(policy, action_members) {
                None => insert(&mut by_action.any_action),
                Some(keys) => {
                    for key in keys {
                        insert(by_action.by_action.entry(key).or_default());
                    }
                }
            }
        }
        index.leaves = index.count_leaves();
        index
    }

    /// Cedar's outcome for a request from the compiled policies alone: the
    /// satisfied (id, forbid) pairs, or `None` when the fast path cannot
    /// answer (see the module documentation).
    pub(crate) fn compiled_outcome<'a>(
        &'a self,
        req: &AccessRequest,
    ) -> Option<Vec<&'a CompiledPolicy>> {
        let view = View::of(req)?;
        let mut satisfied = Vec::new();
        self.fast
            .candidates(&view, |set| match set {
                FastSet::Opaque => Err(Unknown),
                FastSet::Compiled(list) => {
                    for p in list {
                        if p.satisfied(&view)? {
                            satisfied.push(&**p);
                        }
                    }
                    Ok(())
                }
            })
            .ok()?;
        Some(satisfied)
    }

    fn count_leaves(&self) -> usize {
        let leaf = |l: &Leaf| {
            usize::from(l.any_resource.is_some())
                + l.by_resource_type.len()
                + l.by_resource_kind.len()
        };
        let by_action =
            |b: &ByAction| leaf(&b.any_action) + b.by_action.values().map(leaf).sum::<usize>();
        by_action(&self.any_principal)
            + self
                .by_principal_type
                .values()
                .map(by_action)
                .sum::<usize>()
            + self
                .by_principal_entity
                .values()
                .map(by_action)
                .sum::<usize>()
    }

    /// Number of policies indexed.
    pub fn len(&self) -> usize {
        self.policies
    }

    /// True when no policy is indexed.
    pub fn is_empty(&self) -> bool {
        self.policies == 0
    }

    /// Number of non-empty policy sets the index holds.
    pub fn leaves(&self) -> usize {
        self.leaves
    }

    /// Calls `f` with every policy set that may hold a policy whose scope
    /// matches the request.
    pub(crate) fn candidate_sets<'a>(
        &'a self,
        r: &RequestEntities,
        mut f: impl FnMut(&'a PolicySet),
    ) {
        let resource_type = r.resource.type_name();
        let mut visit = |b: &'a ByAction| {
            for leaf in [Some(&b.any_action), b.by_action.get(&r.action)]
                .into_iter()
                .flatten()
            {
                if let Some(set) = &leaf.any_resource {
                    f(set);
                }
                if let Some(set) = leaf.by_resource_type.get(resource_type) {
                    f(set);
                }
                if let Some(set) = r
                    .resource_kind
                    .as_ref()
                    .and_then(|k| leaf.by_resource_kind.get(k))
                {
                    f(set);
                }
            }
        };
        visit(&self.any_principal);
        if let Some(b) = self.by_principal_type.get(r.principal.type_name()) {
            visit(b);
        }
        if let Some(b) = self.by_principal_entity.get(&r.principal) {
            visit(b);
        }
        for group in &r.principal_groups {
            if let Some(b) = self.by_principal_entity.get(group) {
                visit(b);
            }
        }
    }
}

impl FastIndex {
    /// Files a policy exactly where [`PolicyIndex::build`] files it, under
    /// string keys; buckets no fast-path request can visit are left out.
    fn insert(
        &mut self,
        policy: &Policy,
        kinds: &Option<BTreeSet<String>>,
        compiled: &Option<Arc<CompiledPolicy>>,
        action_members: &HashMap<EntityUid, Vec<EntityUid>>,
    ) {
        let by_action = match policy.principal_constraint() {
            PrincipalConstraint::Any => &mut self.any_principal,
            PrincipalConstraint::Is(t) => self.by_principal_type.entry(Kind::of(&t)).or_default(),
            PrincipalConstraint::Eq(uid)
            | PrincipalConstraint::In(uid)
            | PrincipalConstraint::IsIn(_, uid) => self
                .by_principal_entity
                .entry(Kind::of(uid.type_name()))
                .or_default()
                .entry(uid.id().unescaped().to_owned())
                .or_default(),
        };
        let resource_type = match policy.resource_constraint() {
            ResourceConstraint::Is(t) | ResourceConstraint::IsIn(t, _) => Some(Kind::of(&t)),
            ResourceConstraint::Eq(uid) => Some(Kind::of(uid.type_name())),
            ResourceConstraint::Any | ResourceConstraint::In(_) => None,
        };
        let insert = |leaf: &mut FastLeaf| match (kinds, resource_type) {
            (Some(kinds), _) => {
                for kind in kinds {
                    leaf.by_resource_kind
                        .entry(kind.clone())
                        .or_default()
                        .add(compiled);
                }
            }
            (None, None) => leaf.any_resource.get_or_insert_default().add(compiled),
            (None, Some(t @ (Kind::Resource | Kind::NonResourceUrl))) => {
                leaf.by_resource_type.entry(t).or_default().add(compiled)
            }
            (None, Some(_)) => {}
        };
        match action_keys(policy, action_members) {
            None => insert(&mut by_action.any_action),
            Some(keys) => {
                for key in keys.iter().filter(|k| k.type_name() == &TYPES.action) {
                    insert(
                        by_action
                            .by_action
                            .entry(key.id().unescaped().to_owned())
                            .or_default(),
                    );
                }
            }
        }
    }

    /// Calls `f` with every compiled set that may hold a policy whose
    /// scope matches the request, as [`PolicyIndex::candidate_sets`] does;
    /// stops at the first error.
    fn candidates<'a>(
        &'a self,
        v: &View<'_>,
        mut f: impl FnMut(&'a FastSet) -> Result<(), Unknown>,
    ) -> Result<(), Unknown> {
        let resource_type = v.resource_kind();
        let resource_kind = match v.resource {
            Resource::Api(r) => Some(r.resource.as_str()),
            Resource::Url(_) => None,
        };
        let mut visit = |b: &'a FastByAction| -> Result<(), Unknown> {
            for leaf in [Some(&b.any_action), b.by_action.get(v.action)]
                .into_iter()
                .flatten()
            {
                if let Some(set) = &leaf.any_resource {
                    f(set)?;
                }
                if let Some(set) = leaf.by_resource_type.get(&resource_type) {
                    f(set)?;
                }
                if let Some(set) = resource_kind.and_then(|k| leaf.by_resource_kind.get(k)) {
                    f(set)?;
                }
            }
            Ok(())
        };
        visit(&self.any_principal)?;
        if let Some(b) = self.by_principal_type.get(&v.principal) {
            visit(b)?;
        }
        if let Some(b) = self
            .by_principal_entity
            .get(&v.principal)
            .and_then(|m| m.get(v.user))
        {
            visit(b)?;
        }
        if let Some(groups) = self.by_principal_entity.get(&Kind::Group) {
            for group in v.groups {
                if let Some(b) = groups.get(group.as_str()) {
                    visit(b)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Option<Vec<String>> {
        let p: Policy = text.parse().unwrap();
        required_resource_kinds(&p).map(|k| k.into_iter().collect())
    }

    #[test]
    fn resource_kinds_are_read_off_leading_error_free_tests() {
        let rbac = r#"permit(principal, action, resource is k8s::Resource) when {
            resource.apiGroup == "" && !(resource has subresource) &&
            ["pods", "services"].contains(resource.resource) && resource.namespace == "x" };"#;
        assert_eq!(kinds(rbac), Some(vec!["pods".into(), "services".into()]));
        let eq = r#"permit(principal, action, resource is k8s::Resource) when { "pods" == resource.resource && resource.resource == "pods" };"#;
        assert_eq!(kinds(eq), Some(vec!["pods".into()]));
        let never = r#"permit(principal, action, resource is k8s::Resource) when { resource.resource == "a" && resource.resource == "b" };"#;
        assert_eq!(kinds(never), Some(vec![]));
    }

    #[test]
    fn nothing_is_read_when_a_test_could_error_or_the_scope_is_open() {
        for text in [
            // The scope admits other types, where `resource.resource` errors.
            r#"permit(principal, action, resource) when { resource.resource == "pods" };"#,
            // An earlier conjunct can error (optional attribute).
            r#"permit(principal, action, resource is k8s::Resource) when { resource.namespace == "x" && resource.resource == "pods" };"#,
            // The first condition is an unless.
            r#"permit(principal, action, resource is k8s::Resource) unless { resource.resource == "pods" };"#,
            // Not a comparison with a literal.
            r#"permit(principal, action, resource is k8s::Resource) when { resource.resource == principal.name };"#,
        ] {
            assert_eq!(kinds(text), None, "{text}");
        }
    }
}
