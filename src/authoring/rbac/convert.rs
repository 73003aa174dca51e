//! RBAC → Cedar: one `permit` per (binding, rule) that answers every
//! SubjectAccessReview exactly as Kubernetes' `RuleAllows` answers it for
//! that rule and binding (k8s.io/kubernetes plugin/pkg/auth/authorizer/rbac).
//!
//! The RBAC rules, and how each becomes Cedar:
//!
//! - verbs: `*` matches every verb (also a request for verb `*`), so the
//!   action is left unconstrained; otherwise `action in [...]`. A verb the
//!   schema does not declare cannot be named in a valid policy: it is
//!   reported and left out.
//! - apiGroups: `*` or equality with `resource.apiGroup`.
//! - resources: `*` matches everything, subresources included; any other
//!   entry must equal `resource` or `resource/subresource` as one string,
//!   so `pods` does not match `pods/log`; `*/scale` matches any resource's
//!   `scale` subresource. The entity model keeps the two parts apart, so an
//!   entry is matched against every way of splitting it at a `/`.
//! - resourceNames: empty matches every name; otherwise the request's name
//!   must be listed (a request without a name matches only `""`).
//! - nonResourceURLs: `*`, exact paths, and a trailing `*` as a prefix match.
//! - a RoleBinding's rules apply only to requests in its namespace, so
//!   never to cluster-scoped or non-resource requests.
//! - `impersonate` requests for users, groups, serviceaccounts, uids and
//!   userextras reach Cedar as the impersonated entity (entity model), not
//!   as a `k8s::Resource`, and the entity does not carry the API group.
//!   They are matched as the apiserver sends them: users, groups and
//!   serviceaccounts in the core group, uids and userextras (with the extra
//!   key as subresource) in `authentication.k8s.io`.
//! - subjects: a User or ServiceAccount becomes the principal entity that
//!   its username denotes ([`crate::entities::identity`]); a Group becomes
//!   `principal in k8s::Group::"..."`, the `system:serviceaccounts` groups
//!   included, since the authenticator sends those as ordinary groups.

use std::collections::{BTreeMap, BTreeSet};

use super::cedar::{self, Expr};
use super::{Binding, Objects, Problem, Role, Rule};
use crate::entities::{identity, Identity};
use crate::policy::SchemaBundle;

const IMPERSONATE: &str = "impersonate";
const AUTHENTICATION_GROUP: &str = "authentication.k8s.io";
/// Resources whose `impersonate` requests become impersonation targets.
const IMPERSONATION_TARGETS: [&str; 5] =
    ["users", "groups", "serviceaccounts", "uids", "userextras"];
/// Every entity type a request's resource can have.
const ALL_RESOURCE_TYPES: [&str; 8] = [
    "Resource",
    "NonResourceURL",
    "User",
    "Node",
    "Group",
    "ServiceAccount",
    "PrincipalUID",
    "Extra",
];
const RESOURCE_TYPES: usize = ALL_RESOURCE_TYPES.len();

/// The policies converted from one binding.
#[derive(Clone, Debug)]
pub struct ConvertedBinding {
    /// `ClusterRoleBinding "x"` or `RoleBinding "ns/x"`.
    pub label: String,
    /// `ClusterRole "y"` or `Role "ns/y"`.
    pub role: String,
    /// A file name for `--out`, safe on every file system.
    pub file_name: String,
    /// The policies' ids, in rule order.
    pub policy_ids: Vec<String>,
    /// The policies, formatted.
    pub text: String,
}

/// The result of a conversion.
#[derive(Clone, Debug, Default)]
pub struct Conversion {
    pub bindings: Vec<ConvertedBinding>,
    /// Everything that did not become a policy, or not exactly.
    pub problems: Vec<Problem>,
}

impl Conversion {
    /// Every binding's policies in one text, each introduced by a comment.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for b in &self.bindings {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&format!("// {} -> {}\n", b.label, b.role));
            out.push_str(&b.text);
        }
        out
    }
}

/// The verbs the schema declares actions for: the only ones a valid
/// policy can name.
pub fn declared_verbs(schema: &SchemaBundle) -> BTreeSet<String> {
    schema
        .schema
        .actions()
        .map(|a| a.id().unescaped().to_owned())
        .collect()
}

/// Converts every binding of `objects`. Bindings come out sorted
/// (ClusterRoleBindings, then RoleBindings by namespace), each with one
/// policy per rule of its role that grants anything.
pub fn convert(objects: &Objects, declared_verbs: &BTreeSet<String>) -> Conversion {
    let mut bindings: Vec<&Binding> = objects.bindings.iter().collect();
    bindings.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    let mut conversion = Conversion::default();
    let mut file_names = BTreeSet::new();
    for binding in bindings {
        let mut converter = BindingConverter {
            binding,
            declared_verbs,
            problems: &mut conversion.problems,
        };
        if let Some(mut converted) = converter.convert(objects) {
            let stem = converted.file_name.clone();
            let mut n = 1;
            while !file_names.insert(converted.file_name.clone()) {
                n += 1;
                converted.file_name = format!("{}-{n}.cedar", stem.trim_end_matches(".cedar"));
            }
            conversion.bindings.push(converted);
        }
    }
    conversion
}

/// How a binding's subjects are matched.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum PrincipalMatch {
    /// The principal is this entity (type, username).
    Entity(&'static str, String),
    /// The principal is in this group.
    Group(String),
}

/// The entity a username denotes, as the entity builder decides.
fn principal_entity(username: &str) -> PrincipalMatch {
    let type_name = match identity(username) {
        Identity::ServiceAccount { .. } => "ServiceAccount",
        Identity::Node { .. } => "Node",
        Identity::User => "User",
    };
    PrincipalMatch::Entity(type_name, username.to_owned())
}

/// One disjunct of a rule's resource condition: requests whose resource is
/// an entity of `type_name` and satisfies `cond`.
struct Clause {
    type_name: &'static str,
    cond: Expr,
    /// `cond` can only hold for this type (an entity equality), so it needs
    /// no `resource is` guard.
    typed: bool,
}

struct BindingConverter<'a> {
    binding: &'a Binding,
    declared_verbs: &'a BTreeSet<String>,
    problems: &'a mut Vec<Problem>,
}

fn sorted(values: &[String]) -> Vec<String> {
    values
        .iter()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// `has_expr && one_of(attr, names)`, where a listed `""` also admits a
/// request without the attribute (RBAC compares the empty string).
fn names_condition(names: &[String], attribute: &str) -> Expr {
    if names.is_empty() {
        return Expr::True;
    }
    let listed: Vec<String> = sorted(names)
        .into_iter()
        .filter(|n| !n.is_empty())
        .collect();
    let present = Expr::and([
        Expr::atom(format!("resource has {attribute}")),
        cedar::one_of(&format!("resource.{attribute}"), &listed),
    ]);
    if names.iter().any(String::is_empty) {
        Expr::or([Expr::atom(format!("!(resource has {attribute})")), present])
    } else {
        present
    }
}

fn non_resource_condition(urls: &[String]) -> Expr {
    let mut exact = Vec::new();
    let mut prefixes = BTreeSet::new();
    for url in urls {
        if let Some(prefix) = url.strip_suffix('*') {
            let prefix = prefix.trim_end_matches('*');
            if prefix.is_empty() {
                return Expr::True;
            }
            prefixes.insert(prefix.to_owned());
        } else {
            exact.push(url.clone());
        }
    }
    Expr::or(
        std::iter::once(cedar::one_of("resource.path", &sorted(&exact))).chain(
            prefixes
                .iter()
                .map(|p| Expr::atom(format!("resource.path like {}", cedar::like_prefix(p)))),
        ),
    )
}

/// The condition on a `k8s::Resource` for a rule's apiGroups, resources,
/// resourceNames and (for a RoleBinding) namespace.
fn api_resource_condition(rule: &Rule, namespace: Option<&str>, impersonate_only: bool) -> Expr {
    let group = if rule.api_groups.iter().any(|g| g == "*") {
        Expr::True
    } else {
        cedar::one_of("resource.apiGroup", &sorted(&rule.api_groups))
    };
    // With `impersonate` as the only verb, requests for the impersonation
    // targets never reach Cedar as a k8s::Resource: leave them out.
    let dead = |resource: &str| impersonate_only && IMPERSONATION_TARGETS.contains(&resource);
    let resources = if rule.resources.iter().any(|r| r == "*") {
        Expr::True
    } else {
        let mut whole = BTreeSet::new();
        let mut pairs: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        let mut any_resource = BTreeSet::new();
        for entry in &rule.resources {
            if !dead(entry) {
                whole.insert(entry.clone());
            }
            for (i, _) in entry.match_indices('/') {
                let (resource, subresource) = (&entry[..i], &entry[i + 1..]);
                if subresource.is_empty() || dead(resource) {
                    continue;
                }
                if resource == "*" {
                    any_resource.insert(subresource.to_owned());
                } else {
                    pairs
                        .entry(resource)
                        .or_default()
                        .insert(subresource.to_owned());
                }
            }
        }
        let without_subresource = Expr::and([
            Expr::atom("!(resource has subresource)"),
            cedar::one_of("resource.resource", &whole.into_iter().collect::<Vec<_>>()),
        ]);
        let with_subresource = Expr::and([
            Expr::atom("resource has subresource"),
            Expr::or(
                pairs
                    .into_iter()
                    .map(|(resource, subs)| {
                        Expr::and([
                            cedar::one_of("resource.resource", &[resource.to_owned()]),
                            cedar::one_of(
                                "resource.subresource",
                                &subs.into_iter().collect::<Vec<_>>(),
                            ),
                        ])
                    })
                    .chain(std::iter::once(cedar::one_of(
                        "resource.subresource",
                        &any_resource.into_iter().collect::<Vec<_>>(),
                    ))),
            ),
        ]);
        Expr::or([without_subresource, with_subresource])
    };
    let namespace = match namespace {
        None => Expr::True,
        Some(ns) => Expr::and([
            Expr::atom("resource has namespace"),
            cedar::one_of("resource.namespace", &[ns.to_owned()]),
        ]),
    };
    Expr::and([
        group,
        resources,
        names_condition(&rule.resource_names, "name"),
        namespace,
    ])
}

impl BindingConverter<'_> {
    fn problem(&mut self, message: String) {
        self.problems.push(Problem {
            object: self.binding.label(),
            message,
        });
    }

    fn convert(&mut self, objects: &Objects) -> Option<ConvertedBinding> {
        let b = self.binding;
        match (b.role_ref.kind.as_str(), &b.namespace) {
            ("ClusterRole", _) | ("Role", Some(_)) => {}
            ("Role", None) => {
                self.problem(
                    "a ClusterRoleBinding cannot refer to a Role; nothing converted".into(),
                );
                return None;
            }
            (kind, _) => {
                self.problem(format!(
                    "roleRef kind {kind:?} is neither ClusterRole nor Role; nothing converted"
                ));
                return None;
            }
        }
        let Some(role) = objects.role_for(b) else {
            self.problem(format!(
                "roleRef {} {:?} is not in the input; nothing converted for this binding",
                b.role_ref.kind, b.role_ref.name
            ));
            return None;
        };
        if role.aggregated && role.rules.is_empty() {
            self.problem(format!(
                "{} is aggregated but carries no rules; export it from a cluster whose \
                 aggregation controller has filled them in",
                role.label()
            ));
        }
        let principals = self.principals();
        if principals.is_empty() {
            self.problem(if b.subjects.is_empty() {
                "has no subjects; nothing converted".into()
            } else {
                "no subject can match any user; nothing converted".into()
            });
            return None;
        }
        let (principal_scope, principal_cond) = principal_constraint(&principals);
        let (id_prefix, binding_annotation, file_stem) = match &b.namespace {
            None => (
                format!("crb/{}", b.name),
                format!("ClusterRoleBinding/{}", b.name),
                format!("clusterrolebinding-{}", b.name),
            ),
            Some(ns) => (
                format!("rb/{ns}/{}", b.name),
                format!("RoleBinding/{ns}/{}", b.name),
                format!("rolebinding-{ns}-{}", b.name),
            ),
        };
        let role_annotation = match &role.namespace {
            None => format!("ClusterRole/{}", role.name),
            Some(ns) => format!("Role/{ns}/{}", role.name),
        };
        let mut policy_ids = Vec::new();
        let mut texts = Vec::new();
        for (i, rule) in role.rules.iter().enumerate() {
            let Some((action_scope, resource_scope, resource_cond)) = self.rule(role, i, rule)
            else {
                continue;
            };
            let id = format!("{id_prefix}/rule-{i}");
            let mut text = format!(
                "@id({})\n@binding({})\n@role({})\npermit (\n  principal{principal_scope},\n  action{action_scope},\n  resource{resource_scope}\n)",
                cedar::string(&id),
                cedar::string(&binding_annotation),
                cedar::string(&role_annotation),
            );
            for cond in [&principal_cond, &resource_cond] {
                if *cond != Expr::True {
                    text.push_str(&format!("\nwhen {{ {} }}", cond.render()));
                }
            }
            text.push(';');
            texts.push(text);
            policy_ids.push(id);
        }
        if texts.is_empty() {
            self.problem(format!(
                "no rule of {} grants anything; no policies",
                role.label()
            ));
            return None;
        }
        let text = texts.join("\n\n") + "\n";
        let text = match crate::authoring::format::format_text(&text) {
            Ok(pretty) => pretty,
            Err(e) => {
                self.problem(format!(
                    "the Cedar formatter failed ({e}); output left unformatted"
                ));
                text
            }
        };
        Some(ConvertedBinding {
            label: b.label(),
            role: role.label(),
            file_name: format!("{}.cedar", sanitize_file_stem(&file_stem)),
            policy_ids,
            text,
        })
    }

    fn principals(&mut self) -> Vec<PrincipalMatch> {
        let b = self.binding;
        let mut out = BTreeSet::new();
        for s in &b.subjects {
            match s.kind.as_str() {
                "User" => {
                    out.insert(principal_entity(&s.name));
                }
                "Group" => {
                    out.insert(PrincipalMatch::Group(s.name.clone()));
                }
                "ServiceAccount" => {
                    // RBAC defaults the namespace to the binding's own.
                    let ns = if s.namespace.is_empty() {
                        b.namespace.clone().unwrap_or_default()
                    } else {
                        s.namespace.clone()
                    };
                    if ns.is_empty() {
                        self.problem(format!(
                            "subject ServiceAccount {:?} has no namespace, so it matches no one \
                             (as in RBAC); skipped",
                            s.name
                        ));
                        continue;
                    }
                    out.insert(principal_entity(&format!(
                        "system:serviceaccount:{ns}:{}",
                        s.name
                    )));
                }
                other => self.problem(format!(
                    "subject kind {other:?} is not User, Group or ServiceAccount, so it matches \
                     no one (as in RBAC); skipped"
                )),
            }
        }
        out.into_iter().collect()
    }

    /// The action scope, resource scope and resource condition of one
    /// rule; `None` when the rule grants nothing expressible.
    fn rule(&mut self, role: &Role, i: usize, rule: &Rule) -> Option<(String, String, Expr)> {
        let at = format!("rule {i} of {}", role.label());
        let reported = self.problems.len();
        let all_verbs = rule.verbs.iter().any(|v| v == "*");
        let mut verbs = BTreeSet::new();
        if !all_verbs {
            for verb in &rule.verbs {
                if self.declared_verbs.contains(verb) {
                    verbs.insert(verb.clone());
                } else {
                    self.problem(format!(
                        "{at}: verb {verb:?} is not an action of the schema, so no valid \
                         policy can name it; requests with it are not matched (RBAC would \
                         allow them)"
                    ));
                }
            }
            if verbs.is_empty() {
                self.problem(format!("{at}: no verbs to grant; skipped"));
                return None;
            }
        }
        let impersonate = all_verbs || verbs.contains(IMPERSONATE);
        let impersonate_only = !all_verbs && verbs.len() == 1 && impersonate;
        let namespace = self.binding.namespace.as_deref();

        let mut clauses = Vec::new();
        if !rule.resources.is_empty() {
            if rule.api_groups.is_empty() {
                self.problem(format!(
                    "{at}: resources without apiGroups match no request (as in RBAC); skipped"
                ));
            } else {
                let cond = api_resource_condition(rule, namespace, impersonate_only);
                if cond != Expr::False {
                    clauses.push(Clause {
                        type_name: "Resource",
                        cond,
                        typed: false,
                    });
                }
                if impersonate {
                    self.impersonation_clauses(&at, rule, &mut clauses);
                }
            }
        }
        if !rule.non_resource_urls.is_empty() {
            if namespace.is_some() {
                self.problem(format!(
                    "{at}: nonResourceURLs grant nothing through a RoleBinding (as in RBAC); \
                     skipped"
                ));
            } else {
                clauses.push(Clause {
                    type_name: "NonResourceURL",
                    cond: non_resource_condition(&rule.non_resource_urls),
                    typed: false,
                });
            }
        }
        if clauses.is_empty() {
            if rule.resources.is_empty() && rule.non_resource_urls.is_empty() {
                self.problem(format!(
                    "{at}: names neither resources nor nonResourceURLs, so it grants nothing; \
                     skipped"
                ));
            } else if self.problems.len() == reported {
                self.problem(format!(
                    "{at}: matches no request through this binding (as in RBAC); skipped"
                ));
            }
            return None;
        }

        let action_scope = if all_verbs {
            String::new()
        } else if verbs.len() == 1 {
            format!(" == {}", cedar::entity("Action", verbs.first()?))
        } else {
            format!(
                " in [{}]",
                verbs
                    .iter()
                    .map(|v| cedar::entity("Action", v))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let (resource_scope, resource_cond) = if clauses.len() == 1 {
            let c = clauses.pop()?;
            (format!(" is k8s::{}", c.type_name), c.cond)
        } else if clauses.iter().all(|c| c.cond == Expr::True)
            && clauses.len() >= RESOURCE_TYPES - 1
        {
            // Every type, or every type but NonResourceURL (`*` resources
            // with `*` verbs): say so briefly.
            if clauses.len() == RESOURCE_TYPES {
                (String::new(), Expr::True)
            } else {
                let missing = ALL_RESOURCE_TYPES
                    .iter()
                    .find(|t| !clauses.iter().any(|c| c.type_name == **t))?;
                (
                    String::new(),
                    Expr::atom(format!("!(resource is k8s::{missing})")),
                )
            }
        } else {
            let guard = |t: &str| Expr::atom(format!("resource is k8s::{t}"));
            let cond = Expr::or(clauses.into_iter().map(|c| {
                if c.typed {
                    c.cond
                } else {
                    Expr::and([guard(c.type_name), c.cond])
                }
            }));
            (String::new(), cond)
        };
        Some((action_scope, resource_scope, resource_cond))
    }

    /// Clauses for `impersonate` requests that the entity model turns into
    /// the impersonated entity.
    fn impersonation_clauses(&mut self, at: &str, rule: &Rule, clauses: &mut Vec<Clause>) {
        let any_group = rule.api_groups.iter().any(|g| g == "*");
        let group_ok = |g: &str| any_group || rule.api_groups.iter().any(|x| x == g);
        let any_resource = rule.resources.iter().any(|r| r == "*");
        let named = |r: &str| rule.resources.iter().any(|x| x == r);
        let resource_ok = |r: &str| any_resource || named(r);
        let names = sorted(&rule.resource_names);
        let cluster = self.binding.namespace.is_none();

        for (target, group) in [
            ("users", ""),
            ("groups", ""),
            ("serviceaccounts", ""),
            ("uids", AUTHENTICATION_GROUP),
        ] {
            if resource_ok(target) && !group_ok(group) && named(target) {
                self.problem(format!(
                    "{at}: the apiserver checks impersonation of {target} in API group {group:?}, \
                     which this rule does not list, and the entity model does not carry the \
                     group of an impersonation target; not converted for {target}"
                ));
            }
        }
        if named("userextras") {
            self.problem(format!(
                "{at}: \"userextras\" without a key matches no impersonation request: the \
                 apiserver checks userextras/<key> (nothing granted, as in RBAC)"
            ));
        }

        // Users, groups, uids and extras are cluster-scoped: the apiserver
        // sends no namespace, so a RoleBinding never grants them.
        if cluster && resource_ok("users") && group_ok("") {
            if names.is_empty() {
                for type_name in ["User", "Node"] {
                    clauses.push(Clause {
                        type_name,
                        cond: Expr::True,
                        typed: false,
                    });
                }
            } else {
                let (nodes, users): (Vec<String>, Vec<String>) = names
                    .iter()
                    .cloned()
                    .partition(|n| matches!(identity(n), Identity::Node { .. }));
                for (type_name, ids) in [("User", users), ("Node", nodes)] {
                    if !ids.is_empty() {
                        clauses.push(Clause {
                            type_name,
                            cond: cedar::one_of_entities("resource", type_name, &ids),
                            typed: true,
                        });
                    }
                }
            }
        }
        if cluster && resource_ok("groups") && group_ok("") {
            clauses.push(Clause {
                type_name: "Group",
                cond: if names.is_empty() {
                    Expr::True
                } else {
                    cedar::one_of_entities("resource", "Group", &names)
                },
                typed: !names.is_empty(),
            });
        }
        if resource_ok("serviceaccounts") && group_ok("") {
            let names_cond = if names.is_empty() {
                Expr::True
            } else {
                cedar::one_of("resource.name", &names)
            };
            let namespace_cond = match &self.binding.namespace {
                None => Expr::True,
                Some(ns) => cedar::one_of("resource.namespace", std::slice::from_ref(ns)),
            };
            clauses.push(Clause {
                type_name: "ServiceAccount",
                cond: Expr::and([names_cond, namespace_cond]),
                typed: false,
            });
        }
        if cluster && resource_ok("uids") && group_ok(AUTHENTICATION_GROUP) {
            clauses.push(Clause {
                type_name: "PrincipalUID",
                cond: if names.is_empty() {
                    Expr::True
                } else {
                    cedar::one_of_entities("resource", "PrincipalUID", &names)
                },
                typed: !names.is_empty(),
            });
        }
        if cluster && group_ok(AUTHENTICATION_GROUP) {
            let keys: BTreeSet<String> = rule
                .resources
                .iter()
                .filter_map(|r| {
                    r.strip_prefix("userextras/")
                        .or_else(|| r.strip_prefix("*/"))
                })
                .filter(|k| !k.is_empty())
                .map(str::to_owned)
                .collect();
            if any_resource || !keys.is_empty() {
                let keys_cond = if any_resource {
                    Expr::True
                } else {
                    cedar::one_of("resource.key", &keys.into_iter().collect::<Vec<_>>())
                };
                clauses.push(Clause {
                    type_name: "Extra",
                    cond: Expr::and([keys_cond, names_condition(&names, "value")]),
                    typed: false,
                });
            }
        }
    }
}

/// The principal scope and condition for a binding's subjects: one
/// subject goes into the scope (where the policy index can use it);
/// several become a disjunction, one `in [...]` per entity type.
fn principal_constraint(principals: &[PrincipalMatch]) -> (String, Expr) {
    if let [one] = principals {
        return match one {
            PrincipalMatch::Entity(t, id) => (format!(" == {}", cedar::entity(t, id)), Expr::True),
            PrincipalMatch::Group(g) => (format!(" in {}", cedar::entity("Group", g)), Expr::True),
        };
    }
    let mut by_type: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut groups = Vec::new();
    for p in principals {
        match p {
            PrincipalMatch::Entity(t, id) => by_type.entry(t).or_default().push(id.clone()),
            PrincipalMatch::Group(g) => groups.push(g.clone()),
        }
    }
    let mut parts: Vec<Expr> = by_type
        .into_iter()
        .map(|(t, ids)| cedar::one_of_entities("principal", t, &ids))
        .collect();
    match groups.as_slice() {
        [] => {}
        [g] => parts.push(Expr::atom(format!(
            "principal in {}",
            cedar::entity("Group", g)
        ))),
        many => parts.push(Expr::atom(format!(
            "principal in [{}]",
            many.iter()
                .map(|g| cedar::entity("Group", g))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
    (String::new(), Expr::or(parts))
}

fn sanitize_file_stem(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}
