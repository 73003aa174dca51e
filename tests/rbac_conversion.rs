//! `convert-rbac` must decide exactly as Kubernetes RBAC. This file holds an
//! RBAC evaluator written from the Kubernetes rules (`VisitRulesFor`,
//! `appliesTo` and `RuleAllows` in plugin/pkg/auth/authorizer/rbac), and
//! checks the converted policies against it: for random RBAC object sets and
//! random reviews, for every input of the Go proof of concept's golden
//! files, and for hand-picked corner cases. It also shows where the Go
//! proof of concept's own golden outputs disagree with RBAC.
//!
//! Impersonation reviews are generated in both styles (legacy `impersonate`,
//! `impersonate:<mode>`, `impersonate-on:<mode>:<verb>`) and in every API
//! group, since the entity model maps identity targets by exact group. Two
//! things the entity model cannot see are held fixed or accounted for: a
//! review that becomes an identity entity is put into the shape the
//! apiserver sends (no subresource but userextras' key, no namespace but a
//! service account's), and a constrained review of users named
//! `system:node:<n>` is the same Cedar request as one of nodes `<n>`, so
//! it is expected to decide as RBAC decides the latter (the converter
//! reports where that differs from RBAC). Verbs no valid policy can match
//! are reported and expected to grant nothing.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use cedar_authorizer::authoring::rbac::{self, Objects};
use cedar_authorizer::decision::Verdict;
use cedar_authorizer::engine::{Engine, Exemptions};
use cedar_authorizer::policy::{PolicyFile, SchemaBundle, Snapshot};
use cedar_authorizer::sar;
use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use proptest::test_runner::{TestCaseError, TestRunner};
use serde_json::json;

// ---------------------------------------------------------------------------
// The RBAC model and evaluator, from the Kubernetes rules.

#[derive(Clone, Debug, Default)]
struct Rule {
    verbs: Vec<String>,
    api_groups: Vec<String>,
    resources: Vec<String>,
    resource_names: Vec<String>,
    non_resource_urls: Vec<String>,
}

#[derive(Clone, Debug)]
struct Subject {
    kind: String,
    name: String,
    namespace: String,
}

#[derive(Clone, Debug)]
struct Role {
    name: String,
    /// `None` for a ClusterRole.
    namespace: Option<String>,
    rules: Vec<Rule>,
}

#[derive(Clone, Debug)]
struct Binding {
    name: String,
    /// `None` for a ClusterRoleBinding.
    namespace: Option<String>,
    role_kind: String,
    role_name: String,
    subjects: Vec<Subject>,
}

#[derive(Clone, Debug, Default)]
struct World {
    roles: Vec<Role>,
    bindings: Vec<Binding>,
}

#[derive(Clone, Debug)]
enum Attrs {
    Resource {
        group: String,
        version: String,
        resource: String,
        subresource: String,
        namespace: String,
        name: String,
    },
    NonResource {
        path: String,
    },
}

#[derive(Clone, Debug)]
struct Req {
    user: String,
    groups: Vec<String>,
    verb: String,
    attrs: Attrs,
}

fn has(list: &[String], s: &str) -> bool {
    list.iter().any(|x| x == s)
}

/// `VerbMatches`.
fn verb_matches(rule: &Rule, verb: &str) -> bool {
    rule.verbs.iter().any(|v| v == "*" || v == verb)
}

/// `APIGroupMatches`.
fn api_group_matches(rule: &Rule, group: &str) -> bool {
    rule.api_groups.iter().any(|g| g == "*" || g == group)
}

/// `ResourceMatches`: `*`, the combined `resource/subresource` string, or
/// `*/subresource`.
fn resource_matches(rule: &Rule, combined: &str, subresource: &str) -> bool {
    rule.resources.iter().any(|r| {
        r == "*"
            || r == combined
            || (!subresource.is_empty()
                && r.len() == subresource.len() + 2
                && r.starts_with("*/")
                && r.ends_with(subresource))
    })
}

/// `ResourceNameMatches`.
fn resource_name_matches(rule: &Rule, name: &str) -> bool {
    rule.resource_names.is_empty() || has(&rule.resource_names, name)
}

/// `NonResourceURLMatches`.
fn non_resource_url_matches(rule: &Rule, path: &str) -> bool {
    rule.non_resource_urls.iter().any(|u| {
        u == "*" || u == path || (u.ends_with('*') && path.starts_with(u.trim_end_matches('*')))
    })
}

/// `RuleAllows`.
fn rule_allows(req: &Req, rule: &Rule) -> bool {
    match &req.attrs {
        Attrs::Resource {
            group,
            resource,
            subresource,
            name,
            ..
        } => {
            let combined = if subresource.is_empty() {
                resource.clone()
            } else {
                format!("{resource}/{subresource}")
            };
            verb_matches(rule, &req.verb)
                && api_group_matches(rule, group)
                && resource_matches(rule, &combined, subresource)
                && resource_name_matches(rule, name)
        }
        Attrs::NonResource { path } => {
            verb_matches(rule, &req.verb) && non_resource_url_matches(rule, path)
        }
    }
}

/// `appliesToUser`: a ServiceAccount subject's namespace defaults to the
/// binding's.
fn applies_to(req: &Req, s: &Subject, binding_namespace: &str) -> bool {
    match s.kind.as_str() {
        "User" => req.user == s.name,
        "Group" => has(&req.groups, &s.name),
        "ServiceAccount" => {
            let ns = if s.namespace.is_empty() {
                binding_namespace
            } else {
                &s.namespace
            };
            !ns.is_empty() && req.user == format!("system:serviceaccount:{ns}:{}", s.name)
        }
        _ => false,
    }
}

impl World {
    /// `GetRoleReferenceRules`: a Role is looked up in the binding's
    /// namespace (so never for a ClusterRoleBinding).
    fn rules_for(&self, b: &Binding) -> Option<&[Rule]> {
        let ns = match b.role_kind.as_str() {
            "ClusterRole" => None,
            "Role" => Some(b.namespace.as_deref()?),
            _ => return None,
        };
        self.roles
            .iter()
            .find(|r| r.name == b.role_name && r.namespace.as_deref() == ns)
            .map(|r| r.rules.as_slice())
    }

    /// `VisitRulesFor` + `RuleAllows`: ClusterRoleBindings always, then the
    /// RoleBindings of the request's namespace when it has one.
    fn rbac_allows(&self, req: &Req) -> bool {
        let namespace = match &req.attrs {
            Attrs::Resource { namespace, .. } => namespace.as_str(),
            Attrs::NonResource { .. } => "",
        };
        let grants = |b: &Binding, ns: &str| {
            b.subjects.iter().any(|s| applies_to(req, s, ns))
                && self
                    .rules_for(b)
                    .is_some_and(|rules| rules.iter().any(|r| rule_allows(req, r)))
        };
        if self
            .bindings
            .iter()
            .filter(|b| b.namespace.is_none())
            .any(|b| grants(b, ""))
        {
            return true;
        }
        !namespace.is_empty()
            && self
                .bindings
                .iter()
                .filter(|b| b.namespace.as_deref() == Some(namespace))
                .any(|b| grants(b, namespace))
    }

    /// The objects as `kubectl get -o yaml` would print them: multi-document,
    /// or one `List`.
    fn to_yaml(&self, as_list: bool) -> String {
        let mut items = Vec::new();
        for r in &self.roles {
            let mut metadata = json!({ "name": r.name });
            if let Some(ns) = &r.namespace {
                metadata["namespace"] = json!(ns);
            }
            let rules: Vec<_> = r
                .rules
                .iter()
                .map(|rule| {
                    json!({
                        "verbs": rule.verbs,
                        "apiGroups": rule.api_groups,
                        "resources": rule.resources,
                        "resourceNames": rule.resource_names,
                        "nonResourceURLs": rule.non_resource_urls,
                    })
                })
                .collect();
            items.push(json!({
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": if r.namespace.is_some() { "Role" } else { "ClusterRole" },
                "metadata": metadata,
                "rules": rules,
            }));
        }
        for b in &self.bindings {
            let mut metadata = json!({ "name": b.name });
            if let Some(ns) = &b.namespace {
                metadata["namespace"] = json!(ns);
            }
            let subjects: Vec<_> = b
                .subjects
                .iter()
                .map(|s| {
                    let mut v = json!({ "kind": s.kind, "name": s.name });
                    if !s.namespace.is_empty() {
                        v["namespace"] = json!(s.namespace);
                    }
                    v
                })
                .collect();
            items.push(json!({
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": if b.namespace.is_some() { "RoleBinding" } else { "ClusterRoleBinding" },
                "metadata": metadata,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": b.role_kind, "name": b.role_name},
                "subjects": subjects,
            }));
        }
        if as_list {
            serde_saphyr::to_string(&json!({"apiVersion": "v1", "kind": "List", "items": items}))
                .unwrap()
        } else {
            items
                .iter()
                .map(|i| serde_saphyr::to_string(i).unwrap())
                .collect::<Vec<_>>()
                .join("---\n")
        }
    }

    /// Reads the golden inputs: documents without `kind`, a binding told by
    /// its `roleRef`, a role by its `rules`.
    fn from_golden_yaml(text: &str) -> World {
        let strings = |v: &serde_json::Value, key: &str| -> Vec<String> {
            v.get(key)
                .and_then(|l| l.as_array())
                .map(|l| {
                    l.iter()
                        .map(|s| s.as_str().unwrap_or("").to_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        let string = |v: &serde_json::Value, key: &str| -> String {
            v.get(key).and_then(|s| s.as_str()).unwrap_or("").to_owned()
        };
        let mut world = World::default();
        for doc in cedar_authorizer::yaml::documents::<serde_json::Value>(text).unwrap() {
            let v = doc.value;
            let meta = v.get("metadata").cloned().unwrap_or_default();
            let name = string(&meta, "name");
            let namespace = Some(string(&meta, "namespace")).filter(|n| !n.is_empty());
            if let Some(role_ref) = v.get("roleRef") {
                let subjects = v
                    .get("subjects")
                    .and_then(|s| s.as_array())
                    .map(|l| {
                        l.iter()
                            .map(|s| Subject {
                                kind: string(s, "kind"),
                                name: string(s, "name"),
                                namespace: string(s, "namespace"),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                world.bindings.push(Binding {
                    name,
                    namespace,
                    role_kind: string(role_ref, "kind"),
                    role_name: string(role_ref, "name"),
                    subjects,
                });
            } else {
                let rules = v
                    .get("rules")
                    .and_then(|r| r.as_array())
                    .map(|l| {
                        l.iter()
                            .map(|r| Rule {
                                verbs: strings(r, "verbs"),
                                api_groups: strings(r, "apiGroups"),
                                resources: strings(r, "resources"),
                                resource_names: strings(r, "resourceNames"),
                                non_resource_urls: strings(r, "nonResourceURLs"),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                world.roles.push(Role {
                    name,
                    namespace,
                    rules,
                });
            }
        }
        world
    }
}

impl Req {
    fn sar(&self) -> sar::AccessRequest {
        let attrs = match &self.attrs {
            Attrs::Resource {
                group,
                version,
                resource,
                subresource,
                namespace,
                name,
            } => json!({"resourceAttributes": {
                "verb": self.verb, "group": group, "version": version, "resource": resource,
                "subresource": subresource, "namespace": namespace, "name": name}}),
            Attrs::NonResource { path } => {
                json!({"nonResourceAttributes": {"verb": self.verb, "path": path}})
            }
        };
        let mut spec = json!({"user": self.user, "groups": self.groups});
        for (k, v) in attrs.as_object().unwrap() {
            spec[k] = v.clone();
        }
        let body = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec});
        sar::parse_review(&serde_json::to_vec(&body).unwrap())
            .unwrap()
            .request
    }
}

// ---------------------------------------------------------------------------
// Conversion and evaluation through the engine.

fn schema() -> Arc<SchemaBundle> {
    Arc::new(SchemaBundle::load(None).unwrap())
}

/// Compiles policy text as the loader would (strict validation included).
fn snapshot(text: &str, schema: &Arc<SchemaBundle>) -> Snapshot {
    let files = if text.trim().is_empty() {
        Vec::new()
    } else {
        vec![PolicyFile {
            relative: "converted.cedar".into(),
            path: "converted.cedar".into(),
            text: text.into(),
        }]
    };
    Snapshot::build(&files, schema, 1)
        .unwrap_or_else(|e| panic!("converted policies do not load:\n{e}\n{text}"))
}

fn engine(snapshot: Snapshot) -> Engine {
    Engine::new(
        snapshot,
        Exemptions {
            control_plane: false,
            users: vec![],
        },
        0,
    )
}

fn cedar_allows(engine: &Engine, req: &Req) -> bool {
    let decision = engine.decide(&req.sar()).decision;
    assert!(decision.errors.is_empty(), "{:?}", decision.errors);
    decision.verdict == Verdict::Allowed
}

/// Converts RBAC YAML; returns the policy text and the problems reported.
fn convert(yaml: &str, schema: &SchemaBundle) -> (String, Vec<String>) {
    let mut objects = Objects::default();
    let mut problems = Vec::new();
    objects.parse(yaml, "input.yaml", &mut problems).unwrap();
    let conversion = rbac::convert(&objects, &rbac::declared_verbs(schema));
    problems.extend(conversion.problems.iter().cloned());
    (
        conversion.text(),
        problems.iter().map(|p| p.to_string()).collect(),
    )
}

/// Every review on which the converted policies and RBAC disagree.
fn disagreements(world: &World, engine: &Engine, reqs: &[Req]) -> Vec<String> {
    reqs.iter()
        .filter_map(|r| {
            let (want, got) = (world.rbac_allows(r), cedar_allows(engine, r));
            (want != got).then(|| format!("rbac={want} cedar={got}: {r:?}"))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// How a verb reaches Cedar, written out from the entity model ("Action",
// "Impersonation") rather than taken from the crate.

const AUTHENTICATION: &str = "authentication.k8s.io";

/// The actions the schema declares.
const SCHEMA_VERBS: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "approve",
    "attest",
    "bind",
    "escalate",
    "impersonate",
    "impersonate-on",
    "sign",
    "use",
    "head",
    "options",
    "post",
    "put",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum VerbKind {
    /// `impersonate`.
    Legacy,
    /// `impersonate:<mode>`, mode non-empty.
    Constrained,
    /// `impersonate-on:<mode>:<verb>`, both non-empty.
    On,
    /// Anything else, `impersonate:` and `impersonate-on:x` included.
    Other,
}

fn verb_kind(verb: &str) -> VerbKind {
    if verb == "impersonate" {
        VerbKind::Legacy
    } else if let Some(rest) = verb.strip_prefix("impersonate-on:") {
        match rest.split_once(':') {
            Some((mode, v)) if !mode.is_empty() && !v.is_empty() => VerbKind::On,
            _ => VerbKind::Other,
        }
    } else if verb
        .strip_prefix("impersonate:")
        .is_some_and(|m| !m.is_empty())
    {
        VerbKind::Constrained
    } else {
        VerbKind::Other
    }
}

/// Whether a valid policy can match requests with this RBAC verb: `*`, a
/// declared action (but the bare `impersonate-on`, which reaches its
/// action without the context the schema gives it), or a well-formed
/// constrained-impersonation verb.
fn expressible(verb: &str) -> bool {
    match verb_kind(verb) {
        VerbKind::Legacy | VerbKind::Constrained | VerbKind::On => true,
        VerbKind::Other => {
            verb == "*" || (verb != "impersonate-on" && SCHEMA_VERBS.contains(&verb))
        }
    }
}

/// Whether a resource review reaches Cedar as the impersonated identity
/// rather than as a `k8s::Resource`: exactly the entity model's pairs.
fn identity_target(verb: &str, group: &str, resource: &str) -> bool {
    match verb_kind(verb) {
        VerbKind::Legacy => matches!(
            (group, resource),
            ("", "users" | "groups" | "serviceaccounts") | (AUTHENTICATION, "uids" | "userextras")
        ),
        VerbKind::Constrained => {
            group == AUTHENTICATION
                && matches!(
                    resource,
                    "users" | "groups" | "serviceaccounts" | "uids" | "userextras" | "nodes"
                )
        }
        VerbKind::On | VerbKind::Other => false,
    }
}

/// `system:node:<n>` with `<n>` non-empty and without `:`: the username
/// of a node.
fn node_name(username: &str) -> Option<&str> {
    username
        .strip_prefix("system:node:")
        .filter(|n| !n.is_empty() && !n.contains(':'))
}

/// The review as Cedar sees it: a constrained review of
/// `authentication.k8s.io` users named `system:node:<n>` is the same Cedar
/// request as the one of nodes `<n>` (the same `k8s::Node`), and the
/// converter decides both as RBAC decides the nodes review.
fn as_cedar_sees_it(req: &Req) -> Req {
    let mut req = req.clone();
    if verb_kind(&req.verb) == VerbKind::Constrained {
        if let Attrs::Resource {
            group,
            resource,
            name,
            ..
        } = &mut req.attrs
        {
            if group == AUTHENTICATION && resource == "users" {
                if let Some(n) = node_name(name).map(str::to_owned) {
                    *resource = "nodes".into();
                    *name = n;
                }
            }
        }
    }
    req
}

impl World {
    /// The world with the verbs no valid policy can match left out: what
    /// the converter can grant (it reports the rest).
    fn expressible(&self) -> World {
        let mut world = self.clone();
        for role in &mut world.roles {
            for rule in &mut role.rules {
                rule.verbs.retain(|v| expressible(v));
            }
        }
        world
    }
}

// ---------------------------------------------------------------------------
// Random object sets and reviews, from small pools so that matches are common.

const USERS: &[&str] = &[
    "alice",
    "bob",
    "system:serviceaccount:ns1:sa1",
    "system:serviceaccount:ns2:sa2",
    "system:serviceaccount:ns1:a:b",
    "system:node:n1",
    "system:kube-scheduler",
    "q\"uote\\",
];
const GROUPS: &[&str] = &[
    "devs",
    "ops",
    "system:serviceaccounts",
    "system:serviceaccounts:ns1",
    "system:authenticated",
];
/// The constrained-impersonation verbs: the four modes and an unknown one;
/// `impersonate-on` with modes and verbs; malformed ones, which are custom
/// verbs.
const IMPERSONATION_VERBS: &[&str] = &[
    "impersonate",
    "impersonate:user-info",
    "impersonate:serviceaccount",
    "impersonate:arbitrary-node",
    "impersonate:associated-node",
    "impersonate:other",
    "impersonate-on:user-info:get",
    "impersonate-on:user-info:list",
    "impersonate-on:serviceaccount:get",
    "impersonate-on:arbitrary-node:get",
    "impersonate-on:other:delete",
    "impersonate-on:",
    "impersonate-on:user-info",
    "impersonate-on::get",
    "impersonate:",
    "impersonate-on",
];
const REQUEST_VERBS: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "delete",
    "patch",
    "*",
    "frob",
    "post",
    "head",
    "impersonate",
    "impersonate:user-info",
    "impersonate:serviceaccount",
    "impersonate:arbitrary-node",
    "impersonate:associated-node",
    "impersonate:other",
    "impersonate-on:user-info:get",
    "impersonate-on:user-info:list",
    "impersonate-on:serviceaccount:get",
    "impersonate-on:user-info:delete",
    "impersonate-on:",
    "impersonate-on:user-info",
    "impersonate:",
    "impersonate-on",
];
const REQUEST_GROUPS: &[&str] = &["", "apps", AUTHENTICATION, "other"];
const REQUEST_RESOURCES: &[&str] = &[
    "pods",
    "deployments",
    "secrets",
    "users",
    "groups",
    "serviceaccounts",
    "uids",
    "userextras",
    "nodes",
    "pods/log",
    "*",
];
const SUBRESOURCES: &[&str] = &["", "", "log", "status", "*", "k1"];
const NAMESPACES: &[&str] = &["", "ns1", "ns2"];
const NAMES: &[&str] = &["", "n1", "n2", "system:node:n1", "*", "alice", "sa1", "a:b"];
const PATHS: &[&str] = &[
    "/healthz",
    "/healthz/ready",
    "/api",
    "/apis/apps",
    "/metrics",
    "/version",
    "/a*b/c",
    "/ab",
];

const RULE_VERBS: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "delete",
    "impersonate",
    "impersonate",
    "impersonate:user-info",
    "impersonate:serviceaccount",
    "impersonate:arbitrary-node",
    "impersonate:associated-node",
    "impersonate:other",
    "impersonate-on:user-info:get",
    "impersonate-on:user-info:list",
    "impersonate-on:serviceaccount:get",
    // Custom verbs (malformed constrained verbs) and the bare
    // impersonate-on: no valid policy can match them.
    "impersonate-on:",
    "impersonate-on",
    "*",
    "*",
    "post",
    "head",
];
const RULE_GROUPS: &[&str] = &["", "apps", AUTHENTICATION, AUTHENTICATION, "*", "other"];
const RULE_RESOURCES: &[&str] = &[
    "pods",
    "deployments",
    "secrets",
    "nodes",
    "users",
    "groups",
    "serviceaccounts",
    "uids",
    "userextras",
    "userextras/k1",
    "users/k1",
    "*/k1",
    "*",
    "pods/log",
    "pods/*",
    "*/status",
];
const RULE_NAMES: &[&str] = &[
    "",
    "n1",
    "n2",
    "system:node:n1",
    "alice",
    "sa1",
    "u1",
    "v1",
    "devs",
    "*",
    "a:b",
];
const RULE_URLS: &[&str] = &[
    "*",
    "/healthz",
    "/healthz/*",
    "/api*",
    "/metrics",
    "/version",
    "/a*b*",
];

fn strings(
    pool: &'static [&'static str],
    size: std::ops::Range<usize>,
) -> BoxedStrategy<Vec<String>> {
    prop::collection::vec(select(pool), size)
        .prop_map(|v| v.into_iter().map(str::to_owned).collect())
        .boxed()
}

fn rule() -> impl Strategy<Value = Rule> {
    (
        strings(RULE_VERBS, 1..4),
        prop_oneof![6 => strings(RULE_GROUPS, 1..3), 1 => strings(RULE_GROUPS, 0..1)],
        prop_oneof![6 => strings(RULE_RESOURCES, 1..4), 2 => strings(RULE_RESOURCES, 0..1)],
        prop_oneof![3 => strings(RULE_NAMES, 0..1), 1 => strings(RULE_NAMES, 1..3)],
        prop_oneof![4 => strings(RULE_URLS, 0..1), 1 => strings(RULE_URLS, 1..3)],
    )
        .prop_map(
            |(verbs, api_groups, resources, resource_names, non_resource_urls)| Rule {
                verbs,
                api_groups,
                resources,
                resource_names,
                non_resource_urls,
            },
        )
}

/// A rule about impersonation: its verbs, the groups the apiserver uses,
/// the identity resources and names.
fn impersonation_rule() -> impl Strategy<Value = Rule> {
    (
        strings(
            &[
                "impersonate",
                "impersonate:user-info",
                "impersonate:serviceaccount",
                "impersonate:arbitrary-node",
                "impersonate:associated-node",
                "impersonate:other",
                "impersonate-on:user-info:get",
                "*",
            ],
            1..3,
        ),
        strings(&["", AUTHENTICATION, AUTHENTICATION, "*"], 1..3),
        strings(
            &[
                "users",
                "nodes",
                "groups",
                "serviceaccounts",
                "uids",
                "userextras/k1",
                "*",
            ],
            1..3,
        ),
        prop_oneof![
            2 => strings(RULE_NAMES, 0..1),
            1 => strings(&["n1", "system:node:n1", "*", "alice", "sa1"], 1..3)
        ],
    )
        .prop_map(|(verbs, api_groups, resources, resource_names)| Rule {
            verbs,
            api_groups,
            resources,
            resource_names,
            non_resource_urls: Vec::new(),
        })
}

fn rules(size: std::ops::Range<usize>) -> impl Strategy<Value = Vec<Rule>> {
    prop::collection::vec(prop_oneof![3 => rule(), 1 => impersonation_rule()], size)
}

fn subject() -> impl Strategy<Value = Subject> {
    prop_oneof![
        select(
            &[
                "alice",
                "bob",
                "system:node:n1",
                "system:serviceaccount:ns1:sa1",
                "q\"uote\\"
            ][..]
        )
        .prop_map(|n| Subject {
            kind: "User".into(),
            name: n.into(),
            namespace: String::new()
        }),
        select(GROUPS).prop_map(|n| Subject {
            kind: "Group".into(),
            name: n.into(),
            namespace: String::new()
        }),
        (
            select(&["sa1", "sa2", "a:b"][..]),
            select(&["", "ns1", "ns2"][..])
        )
            .prop_map(|(n, ns)| Subject {
                kind: "ServiceAccount".into(),
                name: n.into(),
                namespace: ns.into()
            }),
    ]
}

fn world() -> impl Strategy<Value = World> {
    let cluster_roles = prop::collection::vec(rules(1..4), 1..3);
    let roles = prop::collection::vec((select(&["ns1", "ns2"][..]), rules(1..3)), 0..3);
    let bindings = prop::collection::vec(
        (
            select(&[None, Some("ns1"), Some("ns2")][..]),
            // cr0 always exists, cr1 often, cr9 never; r0 and r1 only when
            // generated in the binding's namespace.
            select(
                &[
                    ("ClusterRole", "cr0"),
                    ("ClusterRole", "cr0"),
                    ("ClusterRole", "cr1"),
                    ("ClusterRole", "cr9"),
                    ("Role", "r0"),
                    ("Role", "r0"),
                    ("Role", "r1"),
                ][..],
            ),
            prop::collection::vec(subject(), 1..4),
        ),
        1..5,
    );
    (cluster_roles, roles, bindings).prop_map(|(cluster_roles, roles, bindings)| {
        let mut world = World::default();
        for (i, rules) in cluster_roles.into_iter().enumerate() {
            world.roles.push(Role {
                name: format!("cr{i}"),
                namespace: None,
                rules,
            });
        }
        for (i, (ns, rules)) in roles.into_iter().enumerate() {
            world.roles.push(Role {
                name: format!("r{i}"),
                namespace: Some(ns.into()),
                rules,
            });
        }
        for (i, (ns, (kind, name), subjects)) in bindings.into_iter().enumerate() {
            world.bindings.push(Binding {
                name: format!("b{i}"),
                namespace: ns.map(str::to_owned),
                role_kind: kind.into(),
                role_name: name.into(),
                subjects,
            });
        }
        world
    })
}

fn principal() -> impl Strategy<Value = (String, Vec<String>)> {
    (select(USERS), subsequence(GROUPS.to_vec(), 0..=3))
        .prop_map(|(u, g)| (u.to_owned(), g.into_iter().map(str::to_owned).collect()))
}

/// Impersonation reviews, legacy and constrained, for the identity
/// resources in the groups the apiserver uses, another group, and the
/// core group, with names the identities take (`system:node:n1`, `*` for
/// associated nodes, service-account usernames).
fn impersonation() -> impl Strategy<Value = (String, Attrs)> {
    (
        select(IMPERSONATION_VERBS),
        prop_oneof![3 => Just(""), 4 => Just(AUTHENTICATION), 1 => Just("other")],
        select(
            &[
                "users",
                "groups",
                "serviceaccounts",
                "uids",
                "userextras",
                "nodes",
                "pods",
            ][..],
        ),
        select(&["", "", "k1", "k2"][..]),
        select(&["", "ns1", "ns2"][..]),
        select(
            &[
                "alice",
                "n1",
                "system:node:n1",
                "system:serviceaccount:ns1:sa1",
                "sa1",
                "u1",
                "v1",
                "devs",
                "system:masters",
                "*",
                "",
            ][..],
        ),
    )
        .prop_map(|(verb, group, resource, sub, ns, name)| {
            (
                verb.to_owned(),
                Attrs::Resource {
                    group: group.into(),
                    version: "v1".into(),
                    resource: resource.into(),
                    subresource: sub.into(),
                    namespace: ns.into(),
                    name: name.into(),
                },
            )
        })
}

fn request() -> impl Strategy<Value = Req> {
    let resource = (
        select(REQUEST_VERBS),
        select(REQUEST_GROUPS),
        select(&["", "v1"][..]),
        select(REQUEST_RESOURCES),
        select(SUBRESOURCES),
        select(NAMESPACES),
        select(NAMES),
    )
        .prop_map(|(verb, group, version, resource, sub, ns, name)| {
            (
                verb.to_owned(),
                Attrs::Resource {
                    group: group.into(),
                    version: version.into(),
                    resource: resource.into(),
                    subresource: sub.into(),
                    namespace: ns.into(),
                    name: name.into(),
                },
            )
        });
    let non_resource = (select(REQUEST_VERBS), select(PATHS))
        .prop_map(|(verb, path)| (verb.to_owned(), Attrs::NonResource { path: path.into() }));
    (
        principal(),
        prop_oneof![6 => resource, 2 => non_resource, 4 => impersonation()],
    )
        .prop_map(|((user, groups), (verb, attrs))| Req {
            user,
            groups,
            verb,
            attrs,
        })
}

/// Puts a review that reaches Cedar as an impersonated identity into the
/// shape the apiserver sends: no subresource but the extra key of
/// userextras, no namespace but a service account's. The identity entities
/// carry neither, so other shapes cannot be told apart.
fn canonical(mut req: Req) -> Req {
    if let Attrs::Resource {
        group,
        resource,
        subresource,
        namespace,
        ..
    } = &mut req.attrs
    {
        if identity_target(&req.verb, group, resource) {
            if resource != "serviceaccounts" {
                namespace.clear();
            }
            if resource != "userextras" {
                subresource.clear();
            }
        }
    }
    req
}

fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> Option<&'a T> {
    (!items.is_empty()).then(|| &items[(rng.next() % items.len() as u64) as usize])
}

fn pick_str(rng: &mut Rng, pool: &[&str]) -> String {
    pool[(rng.next() % pool.len() as u64) as usize].to_owned()
}

/// A review aimed at one rule of one binding (its subject, a verb, group,
/// resource and name the rule lists), then perhaps knocked off target in
/// one field: random reviews alone rarely hit a rule.
fn aimed(world: &World, seed: u64) -> Option<Req> {
    let mut rng = Rng(seed | 1);
    let b = pick(&mut rng, &world.bindings)?;
    // A binding whose role is missing is aimed at some other role's rules.
    let rules: Vec<&Rule> = match world.rules_for(b) {
        Some(rules) => rules.iter().collect(),
        None => world.roles.iter().flat_map(|r| &r.rules).collect(),
    };
    let rule = *pick(&mut rng, &rules)?;
    let subject = pick(&mut rng, &b.subjects)?;
    let mut groups: Vec<String> = Vec::new();
    let user = match subject.kind.as_str() {
        "User" => subject.name.clone(),
        "Group" => {
            groups.push(subject.name.clone());
            pick_str(&mut rng, USERS)
        }
        _ => {
            let ns = if subject.namespace.is_empty() {
                b.namespace.clone().unwrap_or_else(|| "ns1".into())
            } else {
                subject.namespace.clone()
            };
            format!("system:serviceaccount:{ns}:{}", subject.name)
        }
    };
    if rng.next().is_multiple_of(2) {
        groups.push(pick_str(&mut rng, GROUPS));
    }
    let mut verb = pick(&mut rng, &rule.verbs)?.clone();
    if verb == "*" {
        verb = pick_str(&mut rng, REQUEST_VERBS);
    }
    let attrs = if !rule.non_resource_urls.is_empty()
        && (rule.resources.is_empty() || rng.next().is_multiple_of(2))
    {
        let url = pick(&mut rng, &rule.non_resource_urls)?;
        let path = if url == "*" {
            pick_str(&mut rng, PATHS)
        } else {
            url.replacen(
                '*',
                if rng.next().is_multiple_of(2) {
                    ""
                } else {
                    "x/y"
                },
                1,
            )
            .replace('*', "")
        };
        Attrs::NonResource { path }
    } else {
        let group = match pick(&mut rng, &rule.api_groups).map(String::as_str) {
            None | Some("*") => pick_str(&mut rng, REQUEST_GROUPS),
            Some(g) => g.to_owned(),
        };
        let entry = pick(&mut rng, &rule.resources)
            .cloned()
            .unwrap_or_else(|| "pods".into());
        let (resource, subresource) = match entry.split_once('/') {
            _ if entry == "*" => (
                pick_str(&mut rng, REQUEST_RESOURCES),
                pick_str(&mut rng, SUBRESOURCES),
            ),
            Some(("*", sub)) => (pick_str(&mut rng, REQUEST_RESOURCES), sub.to_owned()),
            Some((res, sub)) => (res.to_owned(), sub.to_owned()),
            None => (entry.clone(), String::new()),
        };
        let name = match pick(&mut rng, &rule.resource_names) {
            Some(n) => n.clone(),
            None => pick_str(&mut rng, NAMES),
        };
        let namespace = b
            .namespace
            .clone()
            .unwrap_or_else(|| pick_str(&mut rng, NAMESPACES));
        Attrs::Resource {
            group,
            version: "v1".into(),
            resource,
            subresource,
            namespace,
            name,
        }
    };
    let mut req = Req {
        user,
        groups,
        verb,
        attrs,
    };
    // Knock one field off target, a third of the time.
    match rng.next() % 9 {
        0 => req.user = pick_str(&mut rng, USERS),
        1 => req.verb = pick_str(&mut rng, REQUEST_VERBS),
        2 => req.groups = vec![pick_str(&mut rng, GROUPS)],
        _ => {}
    }
    if let Attrs::Resource {
        group,
        resource,
        subresource,
        namespace,
        name,
        ..
    } = &mut req.attrs
    {
        match rng.next() % 14 {
            0 => *group = pick_str(&mut rng, REQUEST_GROUPS),
            1 => *subresource = pick_str(&mut rng, SUBRESOURCES),
            2 => *namespace = pick_str(&mut rng, NAMESPACES),
            3 => *name = pick_str(&mut rng, NAMES),
            _ => {}
        }
        // Half the time, a node as a user named like it, or a user as a
        // node: the one pair the entity model cannot tell apart.
        if verb_kind(&req.verb) == VerbKind::Constrained && rng.next().is_multiple_of(2) {
            match (resource.as_str(), node_name(name).map(str::to_owned)) {
                ("users", Some(n)) => {
                    *resource = "nodes".into();
                    *name = n;
                }
                ("users", None) | ("nodes", _) => {
                    *resource = "users".into();
                    *name = format!("system:node:{name}");
                }
                _ => {}
            }
        }
    }
    Some(canonical(req))
}

/// Totals over every world of the property test.
#[derive(Default)]
struct Tally {
    worlds: AtomicUsize,
    reviews: AtomicUsize,
    /// Reviews RBAC allows.
    rbac_allowed: AtomicUsize,
    /// Reviews the converted policies allow, by verb kind.
    allowed_by_kind: [AtomicUsize; 4],
    /// Reviews where RBAC and the converted policies differ for a reason
    /// the converter reported: a verb no policy can match...
    unmatchable_verb: AtomicUsize,
    /// ... or a constrained users review named like a node.
    node_named_user: AtomicUsize,
}

/// Checks one world: every review decides as RBAC would, but for what the
/// converter reports it cannot express, and each of those is reported.
fn check_world(
    tally: &Tally,
    world: &World,
    as_list: bool,
    reqs: &[Req],
) -> Result<(), TestCaseError> {
    let schema = schema();
    let yaml = world.to_yaml(as_list);
    let (text, problems) = convert(&yaml, &schema);
    let engine = engine(snapshot(&text, &schema));
    let exact = world.expressible();
    let all_problems = problems.join("\n");
    let mut wrong = Vec::new();
    for r in reqs {
        let rbac = world.rbac_allows(r);
        let want = exact.rbac_allows(&as_cedar_sees_it(r));
        let got = cedar_allows(&engine, r);
        if got != want {
            wrong.push(format!("rbac={rbac} expected={want} cedar={got}: {r:?}"));
        }
        if rbac != exact.rbac_allows(r) {
            let needle = format!("verb {:?}", r.verb);
            prop_assert!(
                all_problems.contains(&needle),
                "RBAC allows {r:?} through a verb no policy can match, unreported:\n{all_problems}"
            );
            tally.unmatchable_verb.fetch_add(1, Ordering::Relaxed);
        }
        if exact.rbac_allows(r) != want {
            prop_assert!(
                all_problems.contains("users named system:node:<n>"),
                "a constrained review of a user named like a node differs, unreported: {r:?}\n{all_problems}"
            );
            tally.node_named_user.fetch_add(1, Ordering::Relaxed);
        }
        if rbac {
            tally.rbac_allowed.fetch_add(1, Ordering::Relaxed);
        }
        if got {
            tally.allowed_by_kind[verb_kind(&r.verb) as usize].fetch_add(1, Ordering::Relaxed);
        }
    }
    tally.worlds.fetch_add(1, Ordering::Relaxed);
    tally.reviews.fetch_add(reqs.len(), Ordering::Relaxed);
    prop_assert!(
        wrong.is_empty(),
        "{} disagreements:\n{}\nRBAC:\n{yaml}\nCedar:\n{text}\nProblems:\n{all_problems}",
        wrong.len(),
        wrong.join("\n")
    );
    Ok(())
}

/// Object sets, with reviews, where RBAC and the converted policies differ
/// for a reason the converter reports: a verb no valid policy can match,
/// and a constrained review of a user named like a node granted through
/// `users` but not `nodes`, and the other way round.
fn reported_difference_worlds() -> Vec<(String, Vec<Req>)> {
    let node_as_user = imp(
        "impersonate:user-info",
        [AUTHN, "users", "", "", "system:node:n1"],
    );
    let node = imp("impersonate:user-info", [AUTHN, "nodes", "", "", "n1"]);
    let grant = |resources: &str| {
        cluster_role(&format!(
            "[{{verbs: ['impersonate:user-info'], apiGroups: [authentication.k8s.io], resources: [{resources}]}}]"
        ))
    };
    vec![
        (
            cluster_role("[{verbs: [impersonate-on, get], apiGroups: [''], resources: [pods]}]"),
            vec![
                resource_req("u", &[], "impersonate-on", ["", "pods", "", "ns1", "p"]),
                resource_req("u", &[], "get", ["", "pods", "", "ns1", "p"]),
            ],
        ),
        (grant("users"), vec![node_as_user.clone(), node.clone()]),
        (grant("nodes"), vec![node_as_user, node]),
    ]
}

#[test]
fn converted_policies_decide_as_rbac() {
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let tally = Tally::default();
    // The worlds known to reach each difference the converter reports go
    // through the same check first: its checks of reported differences then
    // run every time, not only when the random worlds happen upon them (a
    // constrained users review named like a node is rare among them).
    for (yaml, reqs) in reported_difference_worlds() {
        let world = world_of(&yaml);
        let reqs: Vec<Req> = reqs
            .into_iter()
            .map(canonical)
            // Spread over the seed space: `aimed` sets the lowest bit, so
            // consecutive small seeds would repeat in pairs, and xorshift
            // starts out correlated from small ones.
            .chain((1..=40u64).filter_map(|s| aimed(&world, s.wrapping_mul(0x9e37_79b9_7f4a_7c15))))
            .collect();
        for as_list in [false, true] {
            if let Err(e) = check_world(&tally, &world, as_list, &reqs) {
                panic!("{yaml}: {e}");
            }
        }
    }
    let strategy = (
        world(),
        any::<bool>(),
        prop::collection::vec(request(), 40),
        prop::collection::vec(any::<u64>(), 60),
    );
    let result = runner.run(&strategy, |(world, as_list, random, seeds)| {
        let reqs: Vec<Req> = random
            .into_iter()
            .map(canonical)
            .chain(seeds.into_iter().filter_map(|s| aimed(&world, s)))
            .collect();
        check_world(&tally, &world, as_list, &reqs)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let n = |a: &AtomicUsize| a.load(Ordering::Relaxed);
    let by_kind = tally.allowed_by_kind.each_ref().map(n);
    println!(
        "{} worlds x {} reviews: {} allowed by RBAC; allowed by Cedar: {} legacy impersonate, \
         {} impersonate:<mode>, {} impersonate-on, {} other verbs; differing from RBAC as \
         reported: {} for verbs no policy can match, {} for users named like nodes",
        n(&tally.worlds),
        n(&tally.reviews),
        n(&tally.rbac_allowed),
        by_kind[VerbKind::Legacy as usize],
        by_kind[VerbKind::Constrained as usize],
        by_kind[VerbKind::On as usize],
        by_kind[VerbKind::Other as usize],
        n(&tally.unmatchable_verb),
        n(&tally.node_named_user),
    );
    // Every kind of verb must be reached, or agreement means little; and
    // so must the reported differences, or their checks mean nothing.
    for (kind, count) in by_kind.iter().enumerate() {
        assert!(
            *count > 50,
            "only {count} allowed reviews of verb kind {kind}"
        );
    }
    assert!(n(&tally.unmatchable_verb) > 0 && n(&tally.node_named_user) > 0);
}

// ---------------------------------------------------------------------------
// The Go proof of concept's golden inputs.

fn goldens() -> Vec<(String, String, String)> {
    let dir = common::shared_dir().join("anchors/cedar-access-control-for-k8s/rbac-goldens");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let yaml = std::fs::read_to_string(&path).unwrap();
            let cedar = std::fs::read_to_string(path.with_extension("cedar")).unwrap_or_default();
            out.push((name, yaml, cedar));
        }
    }
    out.sort();
    assert!(
        out.len() >= 10,
        "expected the golden files in {}",
        dir.display()
    );
    out
}

/// A small deterministic generator (xorshift), so the golden checks are
/// reproducible without proptest's machinery.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, pool: &'a [String]) -> &'a str {
        &pool[(self.next() % pool.len() as u64) as usize]
    }
}

/// Reviews built from what a world's objects mention, plus strangers, so
/// every rule is exercised on both sides of each of its conditions.
fn reviews_for(world: &World, n: usize) -> Vec<Req> {
    let set = |extra: &[&str], more: Vec<String>| -> Vec<String> {
        let mut s: BTreeSet<String> = extra.iter().map(|x| x.to_string()).collect();
        s.extend(more);
        s.into_iter().collect()
    };
    let rules: Vec<&Rule> = world.roles.iter().flat_map(|r| &r.rules).collect();
    let subjects: Vec<&Subject> = world.bindings.iter().flat_map(|b| &b.subjects).collect();
    let mut users: Vec<String> = vec!["stranger".into()];
    let mut groups: Vec<String> = vec!["strangers".into()];
    for s in &subjects {
        match s.kind.as_str() {
            "User" => users.push(s.name.clone()),
            "Group" => groups.push(s.name.clone()),
            _ => {
                for ns in [s.namespace.as_str(), "default"] {
                    users.push(format!("system:serviceaccount:{ns}:{}", s.name));
                }
            }
        }
    }
    let verbs = set(
        &[
            "get",
            "list",
            "*",
            "frob",
            "impersonate",
            "impersonate:user-info",
            "impersonate-on:user-info:get",
        ],
        rules.iter().flat_map(|r| r.verbs.clone()).collect(),
    );
    let api_groups = set(
        &["", "apps", "other"],
        rules.iter().flat_map(|r| r.api_groups.clone()).collect(),
    );
    let mut resources = vec!["pods".to_string(), "nodes".into()];
    let mut subresources = vec![String::new(), String::new(), "status".into()];
    for r in rules.iter().flat_map(|r| &r.resources) {
        match r.split_once('/') {
            Some((res, sub)) => {
                resources.push(res.into());
                subresources.push(sub.into());
            }
            None => resources.push(r.clone()),
        }
    }
    let resources = set(&[], resources);
    let subresources = set(&[], subresources);
    let names = set(
        &["", "other"],
        rules
            .iter()
            .flat_map(|r| r.resource_names.clone())
            .collect(),
    );
    let namespaces = set(
        &["", "default", "kube-system"],
        world
            .bindings
            .iter()
            .filter_map(|b| b.namespace.clone())
            .collect(),
    );
    let paths = set(
        &["/", "/other", "/healthz"],
        rules
            .iter()
            .flat_map(|r| &r.non_resource_urls)
            .flat_map(|u| [u.replace('*', ""), u.replace('*', "x/y")])
            .collect(),
    );
    let users = set(&[], users);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let user = rng.pick(&users).to_owned();
        let groups = vec![rng.pick(&groups).to_owned(), rng.pick(&groups).to_owned()];
        let verb = rng.pick(&verbs).to_owned();
        let attrs = match i % 8 {
            0 => Attrs::NonResource {
                path: rng.pick(&paths).to_owned(),
            },
            1 => {
                // Impersonation, legacy and constrained, mostly as the
                // apiserver sends it, sometimes in another group.
                let name = rng.pick(&names).to_owned();
                let verb = rng
                    .pick(
                        &[
                            "impersonate",
                            "impersonate",
                            "impersonate:user-info",
                            "impersonate:serviceaccount",
                            "impersonate:arbitrary-node",
                            "impersonate-on:user-info:get",
                        ]
                        .map(String::from),
                    )
                    .to_owned();
                let resource = rng
                    .pick(
                        &[
                            "users",
                            "groups",
                            "serviceaccounts",
                            "uids",
                            "userextras",
                            "nodes",
                        ]
                        .map(String::from),
                    )
                    .to_owned();
                let group = match rng.next() % 4 {
                    0 => "other",
                    _ if verb_kind(&verb) != VerbKind::Legacy => AUTHENTICATION,
                    _ if matches!(resource.as_str(), "uids" | "userextras") => AUTHENTICATION,
                    _ => "",
                };
                let sub = match resource.as_str() {
                    "userextras" => match rng.pick(&subresources) {
                        "" => "k".to_owned(),
                        s => s.to_owned(),
                    },
                    _ => String::new(),
                };
                let ns = match resource.as_str() {
                    "serviceaccounts" => match rng.pick(&namespaces) {
                        "" => "default".to_owned(),
                        s => s.to_owned(),
                    },
                    _ => String::new(),
                };
                out.push(Req {
                    user,
                    groups,
                    verb,
                    attrs: Attrs::Resource {
                        group: group.into(),
                        version: "v1".into(),
                        resource,
                        subresource: sub,
                        namespace: ns,
                        name,
                    },
                });
                continue;
            }
            _ => {
                let resource = rng.pick(&resources).to_owned();
                let group = rng.pick(&api_groups).to_owned();
                // Those would be impersonation targets: generated above.
                if identity_target(&verb, &group, &resource) {
                    continue;
                }
                Attrs::Resource {
                    group,
                    version: "v1".into(),
                    resource,
                    subresource: rng.pick(&subresources).to_owned(),
                    namespace: rng.pick(&namespaces).to_owned(),
                    name: rng.pick(&names).to_owned(),
                }
            }
        };
        out.push(Req {
            user,
            groups,
            verb,
            attrs,
        });
    }
    out
}

#[test]
fn every_golden_input_converts_and_decides_as_rbac() {
    let schema = schema();
    let mut allowed = 0;
    for (name, yaml, _) in goldens() {
        let world = World::from_golden_yaml(&yaml);
        let (text, _problems) = convert(&yaml, &schema);
        let snap = snapshot(&text, &schema);
        assert!(
            snap.warnings.is_empty(),
            "{name}: validation warnings: {:?}",
            snap.warnings
        );
        let engine = engine(snap);
        let reqs = reviews_for(&world, 3000);
        allowed += reqs.iter().filter(|r| world.rbac_allows(r)).count();
        let wrong = disagreements(&world, &engine, &reqs);
        assert!(
            wrong.is_empty(),
            "{name}: {} disagreements, e.g.\n{}\nCedar:\n{text}",
            wrong.len(),
            wrong
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    // The reviews must reach the rules, or agreement means little.
    assert!(
        allowed > 1000,
        "only {allowed} reviews were allowed by RBAC"
    );
}

#[test]
fn golden_binding_without_its_role_is_reported_not_dropped() {
    let (_, yaml, _) = goldens()
        .into_iter()
        .find(|(n, _, _)| n == "kubeadm:get-nodes")
        .unwrap();
    let (text, problems) = convert(&yaml, &schema());
    assert!(text.trim().is_empty(), "{text}");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("ClusterRoleBinding \"kubeadm:get-nodes\"")
                && p.contains("not in the input")),
        "{problems:?}"
    );
}

/// A resource review; `at` is [group, resource, subresource, namespace, name].
fn resource_req(user: &str, groups: &[&str], verb: &str, at: [&str; 5]) -> Req {
    let [group, resource, sub, ns, name] = at;
    Req {
        user: user.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        verb: verb.into(),
        attrs: Attrs::Resource {
            group: group.into(),
            version: "v1".into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            name: name.into(),
        },
    }
}

/// The Go proof of concept's golden outputs, evaluated by our engine,
/// against RBAC: where they differ, and that our conversion does not.
#[test]
fn go_proof_of_concept_goldens_differ_from_rbac_and_ours_do_not() {
    let schema = schema();
    let goldens = goldens();
    let golden = |name: &str| goldens.iter().find(|(n, _, _)| n == name).unwrap();
    // (golden, review, what RBAC says, what the Go output says)
    let impersonate_user = |name: &str| {
        resource_req(
            "impersonator",
            &[],
            "impersonate",
            ["", "users", "", "", name],
        )
    };
    let cases = [
        // `resources: ["*"]` became `unless { resource has subresource }`.
        (
            "cluster-admin",
            resource_req(
                "root",
                &["system:masters"],
                "get",
                ["", "pods", "log", "default", "web-0"],
            ),
            true,
            false,
        ),
        (
            "crazy-policy",
            resource_req(
                "system:serviceaccount:default:crazy-service-account",
                &[],
                "get",
                ["custom.metrics.k8s.io", "pods", "cpu", "default", "web-0"],
            ),
            true,
            false,
        ),
        // A binding whose role is not in the file was paired with another role.
        (
            "kubeadm:get-nodes",
            resource_req(
                "bootstrap",
                &["system:bootstrappers:kubeadm:default-node-token"],
                "get",
                ["", "nodes", "", "", "n1"],
            ),
            false,
            true,
        ),
        // `resources: ["*"]` in authentication.k8s.io became "any resource",
        // users included (the apiserver checks users in the core group).
        ("impersonate", impersonate_user("darth"), false, true),
        // A namespace with a colon gives a username RBAC still matches; the
        // Go converter wrote nothing.
        (
            "invalid-service-account",
            resource_req(
                "system:serviceaccount:default:invalid-ns:crazy-service-account",
                &[],
                "create",
                ["", "serviceaccounts", "token", "default", "sa"],
            ),
            true,
            false,
        ),
    ];
    for (name, req, rbac_says, go_says) in cases {
        let (_, yaml, go_cedar) = golden(name);
        let world = World::from_golden_yaml(yaml);
        assert_eq!(
            world.rbac_allows(&req),
            rbac_says,
            "{name}: RBAC on {req:?}"
        );
        let go = engine(snapshot(go_cedar, &schema));
        assert_eq!(
            cedar_allows(&go, &req),
            go_says,
            "{name}: Go output on {req:?}"
        );
        let (text, _) = convert(yaml, &schema);
        let ours = engine(snapshot(&text, &schema));
        assert_eq!(
            cedar_allows(&ours, &req),
            rbac_says,
            "{name}: our output on {req:?}\n{text}"
        );
    }
    // `/healthz/*` became `like "/healthz/\*"`, a literal star. Another rule
    // of that golden grants every URL, hiding it; so take that rule alone.
    let (_, yaml, go_cedar) = golden("non-resource-url");
    let mut world = World::from_golden_yaml(yaml);
    world.roles[0].rules = vec![world.roles[0].rules[1].clone()];
    assert_eq!(
        world.roles[0].rules[0].non_resource_urls,
        vec!["/healthz/*"]
    );
    let go_rule = go_cedar
        .split("\n\n")
        .find(|p| p.contains("@policyRule(\"01\")"))
        .unwrap();
    assert!(go_rule.contains(r#"like "/healthz/\*""#), "{go_rule}");
    let req = Req {
        user: "u".into(),
        groups: vec!["non-resource-url-actor".into()],
        verb: "get".into(),
        attrs: Attrs::NonResource {
            path: "/healthz/ready".into(),
        },
    };
    assert!(world.rbac_allows(&req));
    assert!(!cedar_allows(&engine(snapshot(go_rule, &schema)), &req));

    // Over generated reviews, count the Go outputs' disagreements: there are
    // some for the goldens above, and none for ours (previous test).
    let mut go_wrong = 0;
    for (name, yaml, go_cedar) in &goldens {
        let world = World::from_golden_yaml(yaml);
        let go = engine(snapshot(go_cedar, &schema));
        let wrong = disagreements(&world, &go, &reviews_for(&world, 1000));
        if let Some(example) = wrong.first() {
            println!(
                "{name}: the Go output disagrees with RBAC on {} of 1000 reviews, e.g. {example}",
                wrong.len()
            );
        }
        go_wrong += wrong.len();
    }
    assert!(go_wrong > 0);
}

// ---------------------------------------------------------------------------
// Corner cases, each with the answer Kubernetes gives written out, so the
// evaluator above cannot share a mistake with the converter.

fn world_of(yaml: &str) -> World {
    World::from_golden_yaml(yaml)
}

fn check(yaml: &str, req: Req, expected: bool) {
    let schema = schema();
    let world = world_of(yaml);
    assert_eq!(world.rbac_allows(&req), expected, "evaluator on {req:?}");
    let (text, _) = convert(yaml, &schema);
    let engine = engine(snapshot(&text, &schema));
    assert_eq!(
        cedar_allows(&engine, &req),
        expected,
        "converted policies on {req:?}\n{text}"
    );
}

fn cluster_role(rules: &str) -> String {
    format!(
        "metadata: {{name: b}}\nroleRef: {{kind: ClusterRole, name: r}}\nsubjects: [{{kind: User, name: u}}]\n---\nmetadata: {{name: r}}\nrules: {rules}\n"
    )
}

fn get(resource: &str, sub: &str, name: &str) -> Req {
    resource_req("u", &[], "get", ["", resource, sub, "default", name])
}

#[test]
fn resource_does_not_match_its_subresources() {
    let y = cluster_role("[{verbs: [get], apiGroups: [''], resources: [pods]}]");
    check(&y, get("pods", "", "p"), true);
    check(&y, get("pods", "log", "p"), false);
}

#[test]
fn star_resource_matches_subresources() {
    let y = cluster_role("[{verbs: [get], apiGroups: [''], resources: ['*']}]");
    check(&y, get("pods", "log", "p"), true);
    check(&y, get("anything", "", ""), true);
}

#[test]
fn star_slash_subresource_matches_that_subresource_of_any_resource() {
    let y = cluster_role("[{verbs: [get], apiGroups: [''], resources: ['*/status']}]");
    check(&y, get("pods", "status", "p"), true);
    check(&y, get("nodes", "status", ""), true);
    check(&y, get("pods", "", "p"), false);
    check(&y, get("pods", "log", "p"), false);
}

#[test]
fn resource_names_require_a_listed_name() {
    let y = cluster_role(
        "[{verbs: [get], apiGroups: [''], resources: [configmaps], resourceNames: [a]}]",
    );
    check(&y, get("configmaps", "", "a"), true);
    check(&y, get("configmaps", "", "b"), false);
    check(&y, get("configmaps", "", ""), false);
}

#[test]
fn trailing_star_in_non_resource_urls_is_a_prefix() {
    let y = cluster_role("[{verbs: [get], nonResourceURLs: ['/logs/*', /healthz]}]");
    let path = |p: &str| Req {
        user: "u".into(),
        groups: vec![],
        verb: "get".into(),
        attrs: Attrs::NonResource { path: p.into() },
    };
    check(&y, path("/logs/a/b"), true);
    check(&y, path("/logs/"), true);
    check(&y, path("/logs"), false);
    check(&y, path("/healthz"), true);
    check(&y, path("/healthz/x"), false);
}

#[test]
fn star_verb_rule_matches_a_star_verb_request_and_a_named_verb_does_not() {
    let y = cluster_role("[{verbs: ['*'], apiGroups: [''], resources: [pods]}]");
    check(
        &y,
        resource_req("u", &[], "*", ["", "pods", "", "d", ""]),
        true,
    );
    let y = cluster_role("[{verbs: [get], apiGroups: [''], resources: [pods]}]");
    check(
        &y,
        resource_req("u", &[], "*", ["", "pods", "", "d", ""]),
        false,
    );
}

#[test]
fn role_binding_grants_only_in_its_namespace() {
    let y = "metadata: {name: b, namespace: team}\nroleRef: {kind: ClusterRole, name: r}\nsubjects: [{kind: ServiceAccount, name: sa}]\n---\nmetadata: {name: r}\nrules: [{verbs: [get], apiGroups: ['*'], resources: ['*']}, {verbs: [get], nonResourceURLs: ['*']}]\n";
    let sa = "system:serviceaccount:team:sa";
    check(
        y,
        resource_req(sa, &[], "get", ["", "pods", "", "team", "p"]),
        true,
    );
    check(
        y,
        resource_req(sa, &[], "get", ["", "pods", "", "other", "p"]),
        false,
    );
    check(
        y,
        resource_req(sa, &[], "get", ["", "nodes", "", "", "n"]),
        false,
    );
    check(
        y,
        Req {
            user: sa.into(),
            groups: vec![],
            verb: "get".into(),
            attrs: Attrs::NonResource {
                path: "/healthz".into(),
            },
        },
        false,
    );
}

#[test]
fn service_account_groups_are_ordinary_groups() {
    let y = "metadata: {name: b}\nroleRef: {kind: ClusterRole, name: r}\nsubjects: [{kind: Group, name: 'system:serviceaccounts:ci'}]\n---\nmetadata: {name: r}\nrules: [{verbs: [list], apiGroups: [''], resources: [pods]}]\n";
    check(
        y,
        resource_req(
            "system:serviceaccount:ci:x",
            &["system:serviceaccounts", "system:serviceaccounts:ci"],
            "list",
            ["", "pods", "", "", ""],
        ),
        true,
    );
    check(
        y,
        resource_req(
            "system:serviceaccount:ci:x",
            &["system:serviceaccounts"],
            "list",
            ["", "pods", "", "", ""],
        ),
        false,
    );
}

#[test]
fn node_user_subjects_match_node_principals() {
    let y = "metadata: {name: b}\nroleRef: {kind: ClusterRole, name: r}\nsubjects: [{kind: User, name: 'system:node:n1'}, {kind: User, name: alice}]\n---\nmetadata: {name: r}\nrules: [{verbs: [get], apiGroups: [''], resources: [nodes]}]\n";
    check(
        y,
        resource_req("system:node:n1", &[], "get", ["", "nodes", "", "", "n1"]),
        true,
    );
    check(
        y,
        resource_req("alice", &[], "get", ["", "nodes", "", "", "n1"]),
        true,
    );
    check(
        y,
        resource_req("system:node:n2", &[], "get", ["", "nodes", "", "", "n1"]),
        false,
    );
}

#[test]
fn impersonation_targets_follow_resource_names() {
    let y = cluster_role("[{verbs: [impersonate], apiGroups: [''], resources: [users, groups, serviceaccounts], resourceNames: [jedi, 'system:node:n1']}, {verbs: [impersonate], apiGroups: [authentication.k8s.io], resources: [uids, 'userextras/scopes']}]");
    let imp = |group: &str, resource: &str, sub: &str, ns: &str, name: &str| {
        resource_req("u", &[], "impersonate", [group, resource, sub, ns, name])
    };
    check(&y, imp("", "users", "", "", "jedi"), true);
    check(&y, imp("", "users", "", "", "system:node:n1"), true);
    check(&y, imp("", "users", "", "", "sith"), false);
    check(&y, imp("", "groups", "", "", "jedi"), true);
    check(&y, imp("", "serviceaccounts", "", "ns", "jedi"), true);
    check(&y, imp("", "serviceaccounts", "", "ns", "sith"), false);
    check(
        &y,
        imp("authentication.k8s.io", "uids", "", "", "1234"),
        true,
    );
    check(
        &y,
        imp("authentication.k8s.io", "userextras", "scopes", "", "view"),
        true,
    );
    check(
        &y,
        imp("authentication.k8s.io", "userextras", "other", "", "view"),
        false,
    );
}

#[test]
fn unconvertible_input_is_reported() {
    let y = "metadata: {name: b}\nroleRef: {kind: ClusterRole, name: missing}\nsubjects: [{kind: User, name: u}]\n---\n\
             metadata: {name: c}\nroleRef: {kind: ClusterRole, name: r}\nsubjects: [{kind: ServiceAccount, name: sa}, {kind: Robot, name: x}, {kind: User, name: u}]\n---\n\
             metadata: {name: r}\nrules: [{verbs: [frobnicate, get], apiGroups: [''], resources: [pods]}]\n---\n\
             kind: ConfigMap\nmetadata: {name: cm}\n";
    let (text, problems) = convert(y, &schema());
    let all = problems.join("\n");
    for needle in [
        "\"missing\" is not in the input",
        "has no namespace",
        "\"Robot\"",
        "\"frobnicate\"",
        "ConfigMap",
    ] {
        assert!(all.contains(needle), "{needle} not reported in:\n{all}");
    }
    assert!(text.contains("crb/c/rule-0"), "{text}");
}

#[test]
fn converted_output_is_formatted_and_annotated() {
    let (_, yaml, _) = goldens()
        .into_iter()
        .find(|(n, _, _)| n == "crazy-policy")
        .unwrap();
    let (text, _) = convert(&yaml, &schema());
    assert_eq!(
        cedar_authorizer::authoring::format::format_text(&text).unwrap(),
        text
    );
    assert!(text.contains("@id(\"crb/crazy-policy/rule-0\")"));
    assert!(text.contains("@binding(\"ClusterRoleBinding/crazy-policy\")"));
    assert!(text.contains("@role(\"ClusterRole/crazy-policy\")"));
}

#[test]
fn names_that_need_escaping_stay_data() {
    let y = cluster_role("[{verbs: [get], apiGroups: [''], resources: [configmaps], resourceNames: ['a\"b\\c', 'x*y']}, {verbs: [get], nonResourceURLs: ['/a*b*']}]");
    check(&y, get("configmaps", "", "a\"b\\c"), true);
    check(&y, get("configmaps", "", "xzy"), false);
    let path = |p: &str| Req {
        user: "u".into(),
        groups: vec![],
        verb: "get".into(),
        attrs: Attrs::NonResource { path: p.into() },
    };
    check(&y, path("/a*b/c"), true);
    check(&y, path("/azb/c"), false);
}

#[test]
fn convert_rbac_command_writes_one_file_per_binding() {
    let dir = tempfile::tempdir().unwrap();
    let goldens_dir =
        common::shared_dir().join("anchors/cedar-access-control-for-k8s/rbac-goldens");
    let out = Command::new(env!("CARGO_BIN_EXE_cedar-authorizer"))
        .arg("convert-rbac")
        .arg("--out")
        .arg(dir.path().join("out"))
        .arg(goldens_dir.join("cluster-admin.yaml"))
        .arg(goldens_dir.join("kubeadm:get-nodes.yaml"))
        .arg(goldens_dir.join("non-resource-url.yaml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("kubeadm:get-nodes"), "{stderr}");
    let mut files: Vec<String> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        vec![
            "clusterrolebinding-cluster-admin.cedar",
            "clusterrolebinding-non-resource-url-group.cedar"
        ]
    );
    // The directory loads as a policy set.
    let validate = Command::new(env!("CARGO_BIN_EXE_cedar-authorizer"))
        .args(["validate", "--policies"])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(
        validate.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&validate.stderr)
    );
}

#[test]
fn role_binding_grants_impersonation_of_service_accounts_in_its_namespace_only() {
    let y = "metadata: {name: b, namespace: team}\nroleRef: {kind: ClusterRole, name: r}\nsubjects: [{kind: User, name: u}]\n---\nmetadata: {name: r}\nrules: [{verbs: [impersonate], apiGroups: [''], resources: [serviceaccounts, users]}]\n";
    let imp = |resource: &str, ns: &str, name: &str| {
        resource_req("u", &[], "impersonate", ["", resource, "", ns, name])
    };
    check(y, imp("serviceaccounts", "team", "deployer"), true);
    check(y, imp("serviceaccounts", "other", "deployer"), false);
    // Users are cluster-scoped: a RoleBinding never grants them.
    check(y, imp("users", "", "alice"), false);
}

// ---------------------------------------------------------------------------
// Constrained impersonation (KEP-5284) and `*` across both styles.

/// An impersonation review by `u`; `at` is [group, resource, subresource,
/// namespace, name].
fn imp(verb: &str, at: [&str; 5]) -> Req {
    resource_req("u", &[], verb, at)
}

const AUTHN: &str = "authentication.k8s.io";

#[test]
fn user_info_grant_allows_kubectl_as_checks_and_not_the_legacy_one() {
    let y = cluster_role(
        "[{verbs: ['impersonate:user-info'], apiGroups: [authentication.k8s.io], resources: [users, groups, uids, userextras/scopes]}]",
    );
    // What the apiserver asks for `kubectl --as=alice --as-group=devs`.
    check(
        &y,
        imp("impersonate:user-info", [AUTHN, "users", "", "", "alice"]),
        true,
    );
    check(
        &y,
        imp("impersonate:user-info", [AUTHN, "groups", "", "", "devs"]),
        true,
    );
    check(
        &y,
        imp("impersonate:user-info", [AUTHN, "uids", "", "", "1234"]),
        true,
    );
    check(
        &y,
        imp(
            "impersonate:user-info",
            [AUTHN, "userextras", "scopes", "", "view"],
        ),
        true,
    );
    check(
        &y,
        imp(
            "impersonate:user-info",
            [AUTHN, "userextras", "other", "", "view"],
        ),
        false,
    );
    // ... and its fallback to legacy impersonation, which this rule does
    // not grant, in the core group or its own.
    check(
        &y,
        imp("impersonate", ["", "users", "", "", "alice"]),
        false,
    );
    check(
        &y,
        imp("impersonate", [AUTHN, "users", "", "", "alice"]),
        false,
    );
    check(
        &y,
        imp("impersonate", [AUTHN, "uids", "", "", "1234"]),
        false,
    );
    // Another mode, another group, or a service account: no.
    check(
        &y,
        imp(
            "impersonate:serviceaccount",
            [AUTHN, "users", "", "", "alice"],
        ),
        false,
    );
    check(
        &y,
        imp("impersonate:user-info", ["", "users", "", "", "alice"]),
        false,
    );
    check(
        &y,
        imp(
            "impersonate:user-info",
            [AUTHN, "serviceaccounts", "", "ns1", "sa1"],
        ),
        false,
    );
    // Nor the action itself.
    check(
        &y,
        imp("impersonate-on:user-info:list", ["", "pods", "", "ns1", ""]),
        false,
    );
}

#[test]
fn legacy_grants_do_not_allow_constrained_checks() {
    let y = cluster_role(
        "[{verbs: [impersonate], apiGroups: ['', authentication.k8s.io], resources: [users, groups, serviceaccounts, uids, userextras/k]}]",
    );
    for (legacy, constrained) in [
        (
            ["", "users", "", "", "alice"],
            [AUTHN, "users", "", "", "alice"],
        ),
        (
            ["", "users", "", "", "system:node:n1"],
            [AUTHN, "nodes", "", "", "n1"],
        ),
        (
            ["", "groups", "", "", "devs"],
            [AUTHN, "groups", "", "", "devs"],
        ),
        (
            ["", "serviceaccounts", "", "ns1", "sa1"],
            [AUTHN, "serviceaccounts", "", "ns1", "sa1"],
        ),
        (
            [AUTHN, "uids", "", "", "1234"],
            [AUTHN, "uids", "", "", "1234"],
        ),
        (
            [AUTHN, "userextras", "k", "", "v"],
            [AUTHN, "userextras", "k", "", "v"],
        ),
    ] {
        check(&y, imp("impersonate", legacy), true);
        for mode in ["user-info", "serviceaccount", "arbitrary-node", "other"] {
            check(&y, imp(&format!("impersonate:{mode}"), constrained), false);
        }
    }
    // A legacy check on authentication.k8s.io users is a plain resource,
    // which the rule's groups and resources do grant.
    check(
        &y,
        imp("impersonate", [AUTHN, "users", "", "", "alice"]),
        true,
    );
}

#[test]
fn star_verbs_keep_each_style_in_its_own_api_groups() {
    let core = cluster_role(
        "[{verbs: ['*'], apiGroups: [''], resources: [users, groups, serviceaccounts, nodes]}]",
    );
    check(
        &core,
        imp("impersonate", ["", "users", "", "", "alice"]),
        true,
    );
    check(
        &core,
        imp("impersonate", ["", "groups", "", "", "devs"]),
        true,
    );
    check(
        &core,
        imp("impersonate:user-info", [AUTHN, "users", "", "", "alice"]),
        false,
    );
    check(
        &core,
        imp("impersonate:user-info", [AUTHN, "groups", "", "", "devs"]),
        false,
    );
    check(
        &core,
        imp(
            "impersonate:serviceaccount",
            [AUTHN, "serviceaccounts", "", "ns1", "sa1"],
        ),
        false,
    );
    check(
        &core,
        imp("impersonate:arbitrary-node", [AUTHN, "nodes", "", "", "n1"]),
        false,
    );
    // In the core group a constrained check is an ordinary resource; so is
    // impersonate-on, and a custom verb.
    check(
        &core,
        imp("impersonate:user-info", ["", "users", "", "", "alice"]),
        true,
    );
    check(
        &core,
        imp(
            "impersonate-on:user-info:get",
            ["", "users", "", "", "alice"],
        ),
        true,
    );
    check(
        &core,
        imp("impersonate-on:", ["", "nodes", "", "", "n1"]),
        true,
    );
    check(&core, imp("get", ["", "users", "", "", "alice"]), true);

    let authn = cluster_role(
        "[{verbs: ['*'], apiGroups: [authentication.k8s.io], resources: [users, nodes, uids]}]",
    );
    for mode in ["user-info", "arbitrary-node", "other"] {
        let verb = format!("impersonate:{mode}");
        check(&authn, imp(&verb, [AUTHN, "users", "", "", "alice"]), true);
        check(&authn, imp(&verb, [AUTHN, "nodes", "", "", "n1"]), true);
        check(&authn, imp(&verb, [AUTHN, "uids", "", "", "1234"]), true);
        check(&authn, imp(&verb, [AUTHN, "groups", "", "", "devs"]), false);
    }
    check(
        &authn,
        imp("impersonate", ["", "users", "", "", "alice"]),
        false,
    );
    check(
        &authn,
        imp("impersonate", [AUTHN, "uids", "", "", "1234"]),
        true,
    );
    check(
        &authn,
        imp("impersonate", [AUTHN, "users", "", "", "alice"]),
        true,
    );
}

#[test]
fn impersonate_on_grants_its_modes_and_verbs_only() {
    let y = cluster_role(
        "[{verbs: ['impersonate-on:user-info:list', 'impersonate-on:user-info:get', 'impersonate-on:serviceaccount:get'], apiGroups: [''], resources: [pods]}, {verbs: ['impersonate-on:user-info:get'], nonResourceURLs: [/version, '/api*']}]",
    );
    let pods = ["", "pods", "", "ns1", ""];
    check(&y, imp("impersonate-on:user-info:list", pods), true);
    check(&y, imp("impersonate-on:user-info:get", pods), true);
    check(&y, imp("impersonate-on:serviceaccount:get", pods), true);
    check(&y, imp("impersonate-on:serviceaccount:list", pods), false);
    check(&y, imp("impersonate-on:user-info:delete", pods), false);
    check(&y, imp("impersonate-on:arbitrary-node:get", pods), false);
    check(&y, imp("list", pods), false);
    check(
        &y,
        imp(
            "impersonate-on:user-info:list",
            ["", "secrets", "", "ns1", ""],
        ),
        false,
    );
    // The bare verb reaches the action with an empty context: no match,
    // and no evaluation error (`check` asserts there is none).
    check(&y, imp("impersonate-on", pods), false);
    // Identity resources are ordinary resources under impersonate-on.
    check(
        &y,
        imp(
            "impersonate-on:user-info:get",
            [AUTHN, "users", "", "", "alice"],
        ),
        false,
    );
    let url = |verb: &str, path: &str| Req {
        user: "u".into(),
        groups: vec![],
        verb: verb.into(),
        attrs: Attrs::NonResource { path: path.into() },
    };
    // kubectl's discovery.
    check(&y, url("impersonate-on:user-info:get", "/version"), true);
    check(&y, url("impersonate-on:user-info:get", "/apis/apps"), true);
    check(&y, url("impersonate-on:user-info:get", "/healthz"), false);
    check(&y, url("impersonate-on:user-info:post", "/version"), false);
    check(&y, url("get", "/version"), false);
}

#[test]
fn node_modes_grant_nodes_by_name() {
    let y = cluster_role(
        "[{verbs: ['impersonate:arbitrary-node'], apiGroups: [authentication.k8s.io], resources: [nodes], resourceNames: [n1]}, {verbs: ['impersonate:associated-node'], apiGroups: [authentication.k8s.io], resources: [nodes], resourceNames: ['*']}]",
    );
    check(
        &y,
        imp("impersonate:arbitrary-node", [AUTHN, "nodes", "", "", "n1"]),
        true,
    );
    check(
        &y,
        imp("impersonate:arbitrary-node", [AUTHN, "nodes", "", "", "n2"]),
        false,
    );
    check(
        &y,
        imp("impersonate:associated-node", [AUTHN, "nodes", "", "", "*"]),
        true,
    );
    check(
        &y,
        imp(
            "impersonate:associated-node",
            [AUTHN, "nodes", "", "", "n1"],
        ),
        false,
    );
    check(
        &y,
        imp("impersonate:user-info", [AUTHN, "nodes", "", "", "n1"]),
        false,
    );
    check(
        &y,
        imp("impersonate", ["", "users", "", "", "system:node:n1"]),
        false,
    );
    // A node impersonating itself: one entity stands for both, the
    // principal's.
    let own = "metadata: {name: b}\nroleRef: {kind: ClusterRole, name: r}\nsubjects: [{kind: User, name: 'system:node:n1'}]\n---\nmetadata: {name: r}\nrules: [{verbs: ['impersonate:associated-node', 'impersonate:arbitrary-node'], apiGroups: [authentication.k8s.io], resources: [nodes], resourceNames: [n1]}]\n";
    let as_node = |verb: &str, name: &str| {
        resource_req("system:node:n1", &[], verb, [AUTHN, "nodes", "", "", name])
    };
    check(own, as_node("impersonate:arbitrary-node", "n1"), true);
    check(own, as_node("impersonate:associated-node", "n1"), true);
    check(own, as_node("impersonate:arbitrary-node", "n2"), false);
}

#[test]
fn constrained_users_named_like_nodes_are_decided_as_nodes_and_reported() {
    let schema = schema();
    let decide = |yaml: &str, req: &Req| {
        let (text, problems) = convert(yaml, &schema);
        (
            cedar_allows(&engine(snapshot(&text, &schema)), req),
            problems.join("\n"),
        )
    };
    let node_as_user = imp(
        "impersonate:user-info",
        [AUTHN, "users", "", "", "system:node:n1"],
    );
    // The users grant covers the name in RBAC, but the review reaches Cedar
    // as the node n1, which the rule does not grant: not matched.
    let users = cluster_role(
        "[{verbs: ['impersonate:user-info'], apiGroups: [authentication.k8s.io], resources: [users]}]",
    );
    assert!(world_of(&users).rbac_allows(&node_as_user));
    let (allowed, problems) = decide(&users, &node_as_user);
    assert!(!allowed);
    assert!(
        problems.contains("users named system:node:<n>"),
        "{problems}"
    );
    // The nodes grant does not cover the name in RBAC, yet it is the same
    // Cedar request as the nodes review it does grant.
    let nodes = cluster_role(
        "[{verbs: ['impersonate:user-info'], apiGroups: [authentication.k8s.io], resources: [nodes]}]",
    );
    assert!(!world_of(&nodes).rbac_allows(&node_as_user));
    let (allowed, problems) = decide(&nodes, &node_as_user);
    assert!(allowed);
    assert!(
        problems.contains("users named system:node:<n>"),
        "{problems}"
    );
    // Granting both alike is exact, and not reported.
    let both = cluster_role(
        "[{verbs: ['impersonate:user-info'], apiGroups: [authentication.k8s.io], resources: [users, nodes], resourceNames: ['system:node:n1', n1]}]",
    );
    check(&both, node_as_user.clone(), true);
    check(
        &both,
        imp("impersonate:user-info", [AUTHN, "nodes", "", "", "n1"]),
        true,
    );
    let (_, problems) = convert(&both, &schema);
    assert!(
        !problems.join("\n").contains("system:node:<n>"),
        "{problems:?}"
    );
    // Legacy users named like nodes are exact: there are no legacy nodes.
    let legacy = cluster_role("[{verbs: [impersonate], apiGroups: [''], resources: [users]}]");
    check(
        &legacy,
        imp("impersonate", ["", "users", "", "", "system:node:n1"]),
        true,
    );
    let (_, problems) = convert(&legacy, &schema);
    assert!(
        !problems.join("\n").contains("system:node:<n>"),
        "{problems:?}"
    );
}

#[test]
fn verbs_no_policy_can_match_are_reported_and_grant_nothing() {
    let schema = schema();
    let y = cluster_role(
        "[{verbs: ['impersonate-on:', 'impersonate-on:user-info', 'impersonate:', impersonate-on, frob], apiGroups: [''], resources: [pods]}]",
    );
    let (text, problems) = convert(&y, &schema);
    let problems = problems.join("\n");
    for verb in [
        "impersonate-on:",
        "impersonate-on:user-info",
        "impersonate:",
        "impersonate-on",
        "frob",
    ] {
        assert!(
            problems.contains(&format!("verb {verb:?}")),
            "{verb} in:\n{problems}"
        );
        let req = imp(verb, ["", "pods", "", "ns1", ""]);
        assert!(world_of(&y).rbac_allows(&req));
        let engine = engine(snapshot(&text, &schema));
        assert!(!cedar_allows(&engine, &req), "{verb}:\n{text}");
    }
    assert!(text.trim().is_empty(), "{text}");
    // `*` covers them, as the unconstrained action.
    let star = cluster_role("[{verbs: ['*'], apiGroups: [''], resources: [pods]}]");
    for verb in [
        "impersonate-on:",
        "impersonate-on:user-info",
        "impersonate:",
        "impersonate-on",
    ] {
        check(&star, imp(verb, ["", "pods", "", "ns1", ""]), true);
    }
}

#[test]
fn rules_mixing_kinds_of_verbs_give_one_policy_per_action() {
    let schema = schema();
    let y = cluster_role(
        "[{verbs: [get, impersonate, 'impersonate:user-info', 'impersonate-on:user-info:get'], apiGroups: ['', authentication.k8s.io], resources: [users]}, {verbs: ['impersonate:user-info'], apiGroups: [authentication.k8s.io], resources: [users]}]",
    );
    let (text, _) = convert(&y, &schema);
    let ids: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("@id(\"")?.strip_suffix("\")"))
        .collect();
    assert_eq!(
        ids,
        [
            "crb/b/rule-0",
            "crb/b/rule-0-impersonate",
            "crb/b/rule-0-impersonate-on",
            "crb/b/rule-1"
        ]
    );
    // The output validates without warnings.
    let snap = snapshot(&text, &schema);
    assert!(snap.warnings.is_empty(), "{:?}", snap.warnings);
    for (req, expected) in [
        (imp("get", [AUTHN, "users", "", "", "alice"]), true),
        (imp("impersonate", ["", "users", "", "", "alice"]), true),
        (imp("impersonate", [AUTHN, "users", "", "", "alice"]), true),
        (
            imp("impersonate:user-info", [AUTHN, "users", "", "", "alice"]),
            true,
        ),
        (
            imp("impersonate:user-info", ["", "users", "", "", "alice"]),
            true,
        ),
        (
            imp(
                "impersonate:serviceaccount",
                [AUTHN, "users", "", "", "alice"],
            ),
            false,
        ),
        (
            imp(
                "impersonate-on:user-info:get",
                ["", "users", "", "", "alice"],
            ),
            true,
        ),
        (
            imp(
                "impersonate-on:user-info:list",
                ["", "users", "", "", "alice"],
            ),
            false,
        ),
        (imp("list", ["", "users", "", "", "alice"]), false),
    ] {
        check(&y, req, expected);
    }
}
