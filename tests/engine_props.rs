//! The index and the cache change nothing: for random policy sets (shapes of
//! the corpus and RBAC-shaped sets) and random requests, the indexed engine
//! gives exactly what `Authorizer::is_authorized` over the whole set gives
//! (decision, determining policies, errors), and cached answers equal
//! uncached ones. The compiled fast path (src/policy/compiled.rs) answers
//! exactly what Cedar answers whenever it answers, and for sets it can
//! compile it answers every request Cedar evaluates without an error.

use std::collections::HashMap;
use std::sync::Arc;

use cedar_authorizer::decision::Decision;
use cedar_authorizer::engine::{Engine, Evaluator, Exemptions};
use cedar_authorizer::eval::{self, cedar_request, RawOutcome};
use cedar_authorizer::policy::{PolicyIndex, SchemaBundle};
use cedar_authorizer::sar;
use cedar_policy::PolicySet;
use proptest::prelude::*;
use serde_json::json;

const GROUPS: &[&str] = &["g1", "g2", "g3", "system:authenticated"];
const USERS: &[&str] = &[
    "alice",
    "bob",
    "system:serviceaccount:ns:sa",
    "system:node:n1",
    "system:anonymous",
    "g1",
];
const VERBS: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "delete",
    "impersonate",
    "frobnicate",
    "*",
];
const RESOURCES: &[&str] = &[
    "pods",
    "secrets",
    "users",
    "groups",
    "serviceaccounts",
    "nodes",
];
const NAMES: &[&str] = &["", "alice", "g1", "n1", "sa", "system:node:n1"];

fn principal_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("principal".to_owned()),
        prop::sample::select(USERS).prop_map(|u| format!("principal == k8s::User::{u:?}")),
        prop::sample::select(GROUPS).prop_map(|g| format!("principal in k8s::Group::{g:?}")),
        Just("principal is k8s::User".to_owned()),
        Just("principal is k8s::Node".to_owned()),
        prop::sample::select(GROUPS)
            .prop_map(|g| format!("principal is k8s::ServiceAccount in k8s::Group::{g:?}")),
        Just("principal == k8s::ServiceAccount::\"system:serviceaccount:ns:sa\"".to_owned()),
        Just("principal in k8s::Node::\"system:node:n1\"".to_owned()),
    ]
}

fn action_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("action".to_owned()),
        prop::sample::select(VERBS).prop_map(|v| format!("action == k8s::Action::{v:?}")),
        prop::sample::subsequence(VERBS, 1..4).prop_map(|vs| {
            let list: Vec<String> = vs.iter().map(|v| format!("k8s::Action::{v:?}")).collect();
            format!("action in [{}]", list.join(", "))
        }),
    ]
}

/// Action scopes over [`GROUPED`]'s groups and admission actions, beside
/// the plain ones.
fn grouped_action_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        action_scope(),
        Just("action in k8s::Action::\"readOnly\"".to_owned()),
        Just("action == k8s::Action::\"readOnly\"".to_owned()),
        Just("action in [k8s::Action::\"readOnly\", k8s::Action::\"watch\"]".to_owned()),
        Just("action in k8s::admission::Action::\"all\"".to_owned()),
        Just("action == k8s::admission::Action::\"create\"".to_owned()),
        Just("action in [k8s::admission::Action::\"create\", k8s::Action::\"delete\"]".to_owned()),
    ]
}

fn resource_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("resource".to_owned()),
        Just("resource is k8s::Resource".to_owned()),
        Just("resource is k8s::NonResourceURL".to_owned()),
        Just("resource is k8s::Group".to_owned()),
        Just("resource is k8s::User".to_owned()),
        prop::sample::select(GROUPS).prop_map(|g| format!("resource in k8s::Group::{g:?}")),
        prop::sample::select(GROUPS)
            .prop_map(|g| format!("resource is k8s::User in k8s::Group::{g:?}")),
        Just("resource == k8s::Resource::\"/api/v1/namespaces/ns/pods/alice\"".to_owned()),
        Just("resource == k8s::NonResourceURL::\"/healthz\"".to_owned()),
    ]
}

fn condition() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("when { resource is k8s::Resource && resource.resource == \"secrets\" }".to_owned()),
        Just("when { resource is k8s::Resource && resource has namespace && resource.namespace == \"ns\" }".to_owned()),
        Just("unless { resource is k8s::Resource && resource.resource == \"pods\" }".to_owned()),
        Just("when { principal.name == \"alice\" }".to_owned()),
        // Errors at run time for principals without a uid.
        Just("when { principal.uid == \"u1\" }".to_owned()),
        Just("when { 9223372036854775807 + 1 > 0 }".to_owned()),
        Just("when { principal.hasTag(\"k\") && principal.getTag(\"k\").contains(\"v\") }".to_owned()),
        Just("when { resource.name == principal.name }".to_owned()),
        // Shapes the index narrows by resource kind (under a Resource scope),
        // including ones that error after the kind test, or on other types.
        Just("when { resource.resource == \"pods\" }".to_owned()),
        Just("when { resource.apiGroup == \"\" && [\"pods\", \"secrets\"].contains(resource.resource) }".to_owned()),
        Just("when { \"secrets\" == resource.resource && principal.uid == \"u1\" }".to_owned()),
        Just("when { resource.resource == \"pods\" && resource.resource == \"secrets\" }".to_owned()),
        Just("when { !(resource has subresource) && resource.resource == \"pods\" && resource.namespace == \"ns\" }".to_owned()),
        Just("when { resource has name && [\"secrets\", \"users\"].contains(resource.resource) }".to_owned()),
        Just("when { resource.resource == \"users\" } unless { resource.resource == \"pods\" }".to_owned()),
        Just("unless { resource.resource == \"pods\" } when { resource.resource == \"secrets\" }".to_owned()),
    ]
}

fn policy() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        principal_scope(),
        action_scope(),
        resource_scope(),
        condition(),
    )
        .prop_map(|(permit, p, a, r, c)| {
            format!(
                "{}({p}, {a}, {r}) {c};",
                if permit { "permit" } else { "forbid" }
            )
        })
}

/// An RBAC-shaped policy: a group, a verb list, a resource condition.
fn rbac_policy() -> impl Strategy<Value = String> {
    (0..40usize, prop::sample::subsequence(VERBS, 1..4), prop::sample::select(RESOURCES)).prop_map(|(g, vs, r)| {
        let list: Vec<String> = vs.iter().map(|v| format!("k8s::Action::{v:?}")).collect();
        format!(
            "permit(principal in k8s::Group::\"g{}\", action in [{}], resource is k8s::Resource) when {{ resource.resource == {r:?} }};",
            g % 4 + 1,
            list.join(", ")
        )
    })
}

fn policy_set(texts: &[String]) -> PolicySet {
    let mut set = PolicySet::new();
    for (i, t) in texts.iter().enumerate() {
        let p = cedar_policy::Policy::parse(Some(cedar_policy::PolicyId::new(format!("p{i}"))), t)
            .unwrap_or_else(|e| panic!("{t}: {e}"));
        set.add(p).unwrap();
    }
    set
}

fn request() -> impl Strategy<Value = serde_json::Value> {
    (
        prop::sample::select(USERS),
        prop::sample::subsequence(GROUPS, 0..3),
        prop::sample::select(VERBS),
        prop::sample::select(RESOURCES),
        prop::sample::select(NAMES),
        prop::option::of(Just("ns")),
        any::<bool>(),
        prop::option::of(Just("u1")),
        any::<bool>(),
        prop::option::of(Just("status")),
        any::<bool>(),
        prop::option::of(Just("v1")),
    )
        .prop_map(|(user, groups, verb, resource, name, ns, non_resource, uid, tag, sub, labels, version)| {
            let mut spec = json!({"user": user, "groups": groups});
            if let Some(uid) = uid {
                spec["uid"] = json!(uid);
            }
            if tag {
                spec["extra"] = json!({"k": ["v"]});
            }
            if non_resource {
                spec["nonResourceAttributes"] = json!({"verb": verb, "path": "/healthz"});
            } else {
                spec["resourceAttributes"] = json!({"verb": verb, "version": version.unwrap_or(""), "resource": resource,
                    "name": name, "namespace": ns.unwrap_or(""), "subresource": sub.unwrap_or("")});
                if labels {
                    spec["resourceAttributes"]["labelSelector"] =
                        json!({"requirements": [{"key": "app", "operator": "In", "values": ["web"]}]});
                }
            }
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec})
        })
}

/// The built-in schema (with its admission actions and their `"all"`
/// group) plus action groups of our own: `k8s::Action::"readOnly"` holding
/// get and list, and get also in the admission namespace's `"all"`, so
/// action scopes meet groups of both types and a group of another type.
static GROUPED: std::sync::LazyLock<SchemaBundle> = std::sync::LazyLock::new(|| {
    let text = cedar_authorizer::policy::BUILTIN_SCHEMA
        .replacen(
            "  action \"get\" appliesTo",
            "  action \"readOnly\";\n  action \"get\" in [Action::\"readOnly\", k8s::admission::Action::\"all\"] appliesTo",
            1,
        )
        .replacen(
            "  action \"list\" appliesTo",
            "  action \"list\" in [Action::\"readOnly\"] appliesTo",
            1,
        );
    let bundle = SchemaBundle::parse(&text, std::path::Path::new("grouped")).unwrap();
    assert!(
        bundle.grouped_actions.contains_key("get"),
        "the test schema lost its groups"
    );
    bundle
});

/// Which action groups a check runs under.
#[derive(Clone, Copy, Debug)]
enum Groups {
    /// No schema: no action is in a group.
    None,
    /// [`GROUPED`].
    Schema,
}

impl Groups {
    fn members(self) -> HashMap<cedar_policy::EntityUid, Vec<cedar_policy::EntityUid>> {
        match self {
            Groups::None => HashMap::new(),
            Groups::Schema => GROUPED.action_members.clone(),
        }
    }

    fn build(self, req: &sar::AccessRequest) -> cedar_authorizer::entities::RequestEntities {
        let action = match self {
            Groups::None => None,
            Groups::Schema => GROUPED
                .grouped_actions
                .get(cedar_authorizer::entities::action_name(&req.attributes)),
        };
        cedar_authorizer::entities::build(req, action).unwrap()
    }
}

fn check_equivalence(texts: &[String], reqs: &[serde_json::Value]) -> Result<(), TestCaseError> {
    check_equivalence_under(Groups::None, texts, reqs)
}

fn check_equivalence_under(
    groups: Groups,
    texts: &[String],
    reqs: &[serde_json::Value],
) -> Result<(), TestCaseError> {
    let set = policy_set(texts);
    let index = PolicyIndex::build(&set, &groups.members());
    prop_assert_eq!(index.len(), texts.len());
    for r in reqs {
        let review = sar::parse_review(&serde_json::to_vec(r).unwrap()).unwrap();
        let built = groups.build(&review.request);
        let request = cedar_request(&built).unwrap();
        // The reference recomputes the transitive closure with Cedar's own
        // `Entities::from_entities`; ours assumes it is complete by construction.
        let reference =
            cedar_policy::Entities::from_entities(built.entities.iter().cloned(), None).unwrap();
        let linear = RawOutcome::linear(&set, &request, &reference);
        let indexed = eval::indexed(&index, &request, &built);
        prop_assert_eq!(&indexed, &linear, "request {}\npolicies {:#?}", r, texts);
        if let Some(compiled) = eval::compiled(&index, &review.request) {
            prop_assert_eq!(
                &compiled,
                &linear,
                "compiled: request {}\npolicies {:#?}",
                r,
                texts
            );
        }
    }
    Ok(())
}

/// A condition built only from tests the fast path compiles, some of which
/// error on some requests (absent attributes, other entity types).
fn compilable_condition() -> impl Strategy<Value = String> {
    let atom = prop::sample::select(vec![
        "true",
        "false",
        "resource has namespace",
        "resource has name",
        "resource has subresource",
        "resource has labelSelector",
        "resource has fieldSelector",
        "resource has path",
        "principal has uid",
        "principal has extra",
        "principal has namespace",
        "resource.resource == \"pods\"",
        "\"secrets\" == resource.resource",
        "resource.namespace == \"ns\"",
        "resource.subresource != \"status\"",
        "resource.apiGroup == \"\"",
        "resource.version == \"v1\"",
        "resource.path == \"/healthz\"",
        "resource.name == principal.name",
        "principal.uid == \"u1\"",
        "principal.namespace == \"ns\"",
        "principal.name != \"alice\"",
        "[\"pods\", \"secrets\"].contains(resource.resource)",
        "[\"alice\", \"sa\", \"n1\"].contains(principal.name)",
        "resource is k8s::Resource",
        "resource is k8s::NonResourceURL",
        "principal is k8s::ServiceAccount",
        "principal in k8s::Group::\"g1\"",
        "principal in k8s::User::\"bob\"",
        "resource in k8s::NonResourceURL::\"/healthz\"",
    ])
    .prop_map(str::to_owned);
    atom.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} && {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} || {b})")),
            inner.prop_map(|a| format!("!({a})")),
        ]
    })
}

fn compilable_policy() -> impl Strategy<Value = String> {
    compilable_policy_with(action_scope())
}

/// A compilable policy whose action scope comes from `actions`.
fn compilable_policy_with(actions: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        principal_scope(),
        actions,
        resource_scope(),
        prop::collection::vec((any::<bool>(), compilable_condition()), 0..3),
    )
        .prop_map(|(permit, p, a, r, conditions)| {
            let conditions: Vec<String> = conditions
                .into_iter()
                .map(|(when, c)| format!("{} {{ {c} }}", if when { "when" } else { "unless" }))
                .collect();
            format!(
                "{}({p}, {a}, {r}) {};",
                if permit { "permit" } else { "forbid" },
                conditions.join(" ")
            )
        })
}

/// On sets of compilable policies the fast path answers exactly when Cedar
/// reports no error (impersonation checks aside, which it leaves to Cedar),
/// and then answers what Cedar answers.
fn check_compiled(texts: &[String], reqs: &[serde_json::Value]) -> Result<(), TestCaseError> {
    check_compiled_under(Groups::None, texts, reqs)
}

fn check_compiled_under(
    groups: Groups,
    texts: &[String],
    reqs: &[serde_json::Value],
) -> Result<(), TestCaseError> {
    let set = policy_set(texts);
    let index = PolicyIndex::build(&set, &groups.members());
    for r in reqs {
        let review = sar::parse_review(&serde_json::to_vec(r).unwrap()).unwrap();
        let built = groups.build(&review.request);
        let linear = RawOutcome::linear(&set, &cedar_request(&built).unwrap(), &built.entities);
        let verb = review.request.attributes.verb();
        let identity_check =
            matches!(
                cedar_authorizer::entities::impersonation(verb),
                cedar_authorizer::entities::Impersonation::Legacy
                    | cedar_authorizer::entities::Impersonation::Identity { .. }
            ) && !matches!(review.request.attributes, sar::Attributes::NonResource(_));
        let compiled = eval::compiled(&index, &review.request);
        match compiled {
            Some(c) => prop_assert_eq!(&c, &linear, "request {}\npolicies {:#?}", r, texts),
            None => prop_assert!(
                identity_check || !linear.errors.is_empty(),
                "fast path gave up on an error-free request {}\npolicies {:#?}",
                r,
                texts
            ),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn index_equals_linear_evaluation(texts in prop::collection::vec(policy(), 1..25),
                                      reqs in prop::collection::vec(request(), 1..12)) {
        check_equivalence(&texts, &reqs)?;
    }

    #[test]
    fn index_equals_linear_evaluation_on_rbac_shaped_sets(texts in prop::collection::vec(rbac_policy(), 1..80),
                                                          extra in prop::collection::vec(policy(), 0..5),
                                                          reqs in prop::collection::vec(request(), 1..12)) {
        let mut all = texts;
        all.extend(extra);
        check_equivalence(&all, &reqs)?;
    }

    #[test]
    fn compiled_fast_path_equals_linear_evaluation(texts in prop::collection::vec(compilable_policy(), 1..25),
                                                   reqs in prop::collection::vec(request(), 1..12)) {
        check_compiled(&texts, &reqs)?;
        check_equivalence(&texts, &reqs)?;
    }

    #[test]
    fn compiled_fast_path_equals_linear_evaluation_under_action_groups(
        texts in prop::collection::vec(compilable_policy_with(grouped_action_scope()), 1..25),
        reqs in prop::collection::vec(request(), 1..12)) {
        check_compiled_under(Groups::Schema, &texts, &reqs)?;
        check_equivalence_under(Groups::Schema, &texts, &reqs)?;
    }

    #[test]
    fn compiled_fast_path_equals_linear_evaluation_on_rbac_shaped_sets(
        texts in prop::collection::vec(rbac_policy(), 1..80),
        reqs in prop::collection::vec(request(), 1..12)) {
        check_compiled(&texts, &reqs)?;
    }
}

fn corpus_like_policies() -> Vec<String> {
    // The corpus's own policy directories, as shapes that validate.
    let mut out = Vec::new();
    for dir in ["k8s-basics", "go-poc-demo"] {
        let files = cedar_authorizer::policy::read_dir(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../shared/corpus")
                .join(dir)
                .join("policies"),
        )
        .unwrap();
        out.extend(files.into_iter().map(|f| f.text.to_string()));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn cached_answers_equal_uncached_answers(reqs in prop::collection::vec(request(), 1..30)) {
        let dir = tempfile::tempdir().unwrap();
        for (i, text) in corpus_like_policies().iter().enumerate() {
            std::fs::write(dir.path().join(format!("{i}.cedar")), text).unwrap();
        }
        let schema = Arc::new(SchemaBundle::load(None).unwrap());
        let cached = Engine::new(cedar_authorizer::policy::load(dir.path(), &schema, 1).unwrap(), Exemptions::default(), 64);
        let uncached = Engine::new(cedar_authorizer::policy::load(dir.path(), &schema, 1).unwrap(), Exemptions::default(), 0);
        for _ in 0..2 {
            for r in &reqs {
                let body = serde_json::to_vec(r).unwrap();
                let review = sar::parse_review(&body).unwrap();
                let a = cached.decide(&review.request);
                let b = uncached.decide(&review.request);
                prop_assert!(!b.cache_hit);
                prop_assert_eq!(&*a.decision, &*b.decision);
                // The server's path, cached under the body's bytes.
                let served = cached.answer_review(&body).unwrap();
                prop_assert_eq!(&*served.outcome.decision, &*b.decision);
                prop_assert_eq!(
                    &served.response[..],
                    &sar::response_json(review.api_version, &b.decision.status)[..]
                );
                // The engine's answer is the rules applied to the linear answer.
                let snapshot = uncached.snapshot();
                if !b.decision.exempt {
                    let built = eval::build(&snapshot, &review.request).unwrap();
                    let linear = RawOutcome::linear(&snapshot.set, &cedar_request(&built).unwrap(), &built.entities);
                    prop_assert_eq!(&Decision::from_outcome(linear, &snapshot.forbids), &*b.decision);
                }
            }
        }
    }
}

#[test]
fn the_index_skips_policies_whose_scope_cannot_match() {
    // 1,000 group-scoped policies; a request for one group evaluates only
    // that group's leaf, which the decision reflects exactly.
    let texts: Vec<String> = (0..1000)
        .map(|i| format!("permit(principal in k8s::Group::\"g{i}\", action == k8s::Action::\"get\", resource is k8s::Resource);"))
        .collect();
    let set = policy_set(&texts);
    let index = PolicyIndex::build(&set, &HashMap::new());
    assert_eq!(index.leaves(), 1000);
    let r = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": "u", "groups": ["g7"], "resourceAttributes": {"verb": "get", "resource": "pods"}}});
    let review = sar::parse_review(&serde_json::to_vec(&r).unwrap()).unwrap();
    let built = cedar_authorizer::entities::build(&review.request, None).unwrap();
    let out = eval::indexed(&index, &cedar_request(&built).unwrap(), &built);
    assert_eq!(
        out.permits.into_iter().collect::<Vec<_>>(),
        vec!["p7".to_owned()]
    );
}

#[test]
fn the_fast_path_answers_under_the_built_in_schema() {
    // The built-in schema has admission actions and their "all" group
    // beside the authorization verbs; RBAC-shaped policies loaded under it
    // must still be answered without Cedar, and answered as Cedar does.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rbac.cedar"),
        r#"permit (principal in k8s::Group::"team-a", action in [k8s::Action::"get", k8s::Action::"list"], resource is k8s::Resource)
           when { resource has namespace && resource.namespace == "ns-a" && ["pods", "configmaps"].contains(resource.resource) };
           forbid (principal, action in k8s::admission::Action::"all", resource);"#,
    )
    .unwrap();
    let schema = Arc::new(SchemaBundle::load(None).unwrap());
    let snapshot = cedar_authorizer::policy::load(dir.path(), &schema, 1).unwrap();
    for (verb, namespace, allowed) in [
        ("get", "ns-a", true),
        ("list", "ns-b", false),
        ("delete", "ns-a", false),
    ] {
        let r = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": "u", "groups": ["team-a"], "resourceAttributes": {"verb": verb, "resource": "pods", "namespace": namespace}}});
        let review = sar::parse_review(&serde_json::to_vec(&r).unwrap()).unwrap();
        let compiled = eval::compiled(&snapshot.index, &review.request)
            .unwrap_or_else(|| panic!("the fast path gave up on {verb} in {namespace}"));
        let built = eval::build(&snapshot, &review.request).unwrap();
        let linear = RawOutcome::linear(
            &snapshot.set,
            &cedar_request(&built).unwrap(),
            &built.entities,
        );
        assert_eq!(compiled, linear, "{verb} in {namespace}");
        assert_eq!(
            !compiled.permits.is_empty(),
            allowed,
            "{verb} in {namespace}"
        );
    }
}

#[test]
fn a_review_body_is_answered_from_the_cache_until_the_policy_set_changes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.cedar"),
        r#"permit (principal, action, resource is k8s::Resource) when { resource.resource == "pods" };"#,
    )
    .unwrap();
    let schema = Arc::new(SchemaBundle::load(None).unwrap());
    let load =
        |generation| cedar_authorizer::policy::load(dir.path(), &schema, generation).unwrap();
    let exemptions = Exemptions {
        users: vec!["breakglass".to_owned()],
        ..Exemptions::default()
    };
    let engine = Engine::new(load(1), exemptions, 64);
    let body = |user: &str, spacing: &str| {
        format!(
            r#"{{"apiVersion":"authorization.k8s.io/v1beta1","kind":"SubjectAccessReview",{spacing}"spec":{{"user":"{user}","resourceAttributes":{{"verb":"get","resource":"pods"}}}}}}"#
        )
        .into_bytes()
    };
    let alice = body("alice", "");
    let first = engine.answer_review(&alice).unwrap();
    assert!(!first.outcome.cache_hit && first.review.is_some());
    assert!(first.outcome.decision.status.allowed);
    assert_eq!(first.outcome.evaluator, Some(Evaluator::Compiled));
    let again = engine.answer_review(&alice).unwrap();
    assert!(again.outcome.cache_hit && again.review.is_none());
    assert_eq!(again.outcome.evaluator, None, "a hit is not evaluated");
    assert_eq!(again.response, first.response);
    assert!(
        std::str::from_utf8(&again.response)
            .unwrap()
            .contains("authorization.k8s.io/v1beta1"),
        "answered in the review's own version"
    );
    // Other bytes for the same review: decided afresh, the same answer.
    let spaced = engine.answer_review(&body("alice", " ")).unwrap();
    assert!(!spaced.outcome.cache_hit);
    assert_eq!(spaced.response, first.response);
    // Exempt principals are never cached (they are not evaluated at all).
    let exempt = body("breakglass", "");
    for _ in 0..2 {
        let answered = engine.answer_review(&exempt).unwrap();
        assert!(answered.outcome.decision.exempt && !answered.outcome.cache_hit);
        assert_eq!(answered.outcome.evaluator, None);
    }
    // Impersonation targets are entities the compiled policies do not
    // model: Cedar decides, and says so, by either entry point.
    let impersonate = br#"{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"alice","resourceAttributes":{"verb":"impersonate","resource":"users","name":"bob"}}}"#;
    let answered = engine.answer_review(impersonate).unwrap();
    assert_eq!(answered.outcome.evaluator, Some(Evaluator::Cedar));
    let request = sar::parse_review(impersonate).unwrap().request;
    assert_eq!(engine.decide(&request).evaluator, Some(Evaluator::Cedar));
    // A new policy set starts with an empty cache.
    engine.install(load(2));
    let reloaded = engine.answer_review(&alice).unwrap();
    assert!(!reloaded.outcome.cache_hit);
    assert_eq!(reloaded.outcome.generation, 2);
    // A body that is not a review is an error, never a cached answer.
    assert!(engine.answer_review(b"{\"apiVersion\":1}").is_err());
}
