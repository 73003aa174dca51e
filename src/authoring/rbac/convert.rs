//! RBAC → Cedar: `permit`s per (binding, rule) that answer every
//! SubjectAccessReview exactly as Kubernetes' `RuleAllows` answers it for
//! that rule and binding (k8s.io/kubernetes plugin/pkg/auth/authorizer/rbac).
//!
//! The RBAC rules, and how each becomes Cedar:
//!
//! - verbs: RBAC compares them as strings; `*` matches every verb (also a
//!   request for verb `*`), so the action is left unconstrained. Otherwise
//!   a rule's verbs are split by the Cedar action their requests reach (the
//!   entity model's "Impersonation" section), one policy per kind:
//!   - ordinary verbs: `action in [...]` (id `rule-<n>`);
//!   - `impersonate` and `impersonate:<mode>`: both reach
//!     `k8s::Action::"impersonate"`, told apart by `context.mode` (absent
//!     for the legacy verb) (id `rule-<n>-impersonate` when the rule also
//!     has other kinds);
//!   - `impersonate-on:<mode>:<verb>`: `k8s::Action::"impersonate-on"` with
//!     `context.mode` and `context.verb` (id `rule-<n>-impersonate-on`
//!     likewise).
//!
//!   A verb the schema does not declare (a custom verb, or `impersonate:` /
//!   `impersonate-on:` with a part missing) cannot be named in a valid
//!   policy: it is reported and left out. So is the bare verb
//!   `impersonate-on`, whose requests reach the action without the context
//!   the schema gives it.
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
//! - impersonation targets reach Cedar as the impersonated entity, which
//!   carries neither the API group nor the subresource (but for userextras'
//!   key), nor a namespace (but for service accounts). Exactly these
//!   (apiGroup, resource) pairs are targets, so a rule's groups decide
//!   which of them it grants: for `impersonate`, users, groups and
//!   serviceaccounts in the core group and uids and userextras in
//!   `authentication.k8s.io`; for `impersonate:<mode>`, users, groups,
//!   serviceaccounts, uids, userextras and nodes in `authentication.k8s.io`.
//!   Every other pair is an ordinary `k8s::Resource`. A constrained users
//!   review for `system:node:<n>` and a nodes review for `<n>` reach Cedar
//!   as the same node; they are decided as the rule grants nodes, and a
//!   rule for which that differs from RBAC is reported.
//! - subjects: a User or ServiceAccount becomes the principal entity that
//!   its username denotes ([`crate::entities::identity`]); a Group becomes
//!   `principal in k8s::Group::"..."`, the `system:serviceaccounts` groups
//!   included, since the authenticator sends those as ordinary groups.

use std::collections::{BTreeMap, BTreeSet};

use super::cedar::{self, Expr};
use super::{Binding, Objects, Problem, Role, Rule};
use crate::entities::{identity, impersonation, Identity, Impersonation};
use crate::policy::SchemaBundle;

const IMPERSONATE: &str = "impersonate";
const IMPERSONATE_ON: &str = "impersonate-on";
const AUTHENTICATION_GROUP: &str = "authentication.k8s.io";
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
/// an entity of `type_name`, whose context satisfies `guard`, and which
/// satisfy `cond`.
struct Clause {
    type_name: &'static str,
    cond: Expr,
    /// `cond` can only hold for this type (an entity equality), so it needs
    /// no `resource is` guard.
    typed: bool,
    guard: Guard,
}

impl Clause {
    fn new(type_name: &'static str, cond: Expr, typed: bool, guard: &Guard) -> Clause {
        Clause {
            type_name,
            cond,
            typed,
            guard: guard.clone(),
        }
    }
}

/// Which impersonation modes a clause admits.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Modes {
    None,
    Listed(BTreeSet<String>),
    Any,
}

/// What a clause asks of the request context: the legacy `impersonate`
/// (no `context.mode`) and/or these modes. [`Guard::ANY`] asks nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Guard {
    legacy: bool,
    modes: Modes,
}

impl Guard {
    const ANY: Guard = Guard {
        legacy: true,
        modes: Modes::Any,
    };
    const LEGACY: Guard = Guard {
        legacy: true,
        modes: Modes::None,
    };

    fn union(&self, other: &Guard) -> Guard {
        let modes = match (&self.modes, &other.modes) {
            (Modes::Any, _) | (_, Modes::Any) => Modes::Any,
            (Modes::None, m) | (m, Modes::None) => m.clone(),
            (Modes::Listed(a), Modes::Listed(b)) => Modes::Listed(a.union(b).cloned().collect()),
        };
        Guard {
            legacy: self.legacy || other.legacy,
            modes,
        }
    }

    /// `context.mode` is optional for `impersonate` and absent for other
    /// actions, so it is read only behind `context has mode` (which strict
    /// validation types as false where the context has no `mode`).
    fn expr(&self) -> Expr {
        let has = || Expr::atom("context has mode");
        let modes = match &self.modes {
            Modes::None => Expr::False,
            Modes::Any => has(),
            Modes::Listed(m) => Expr::and([
                has(),
                cedar::one_of("context.mode", &m.iter().cloned().collect::<Vec<_>>()),
            ]),
        };
        match (self.legacy, &self.modes) {
            (true, Modes::Any) => Expr::True,
            (true, _) => Expr::or([Expr::atom("!(context has mode)"), modes]),
            (false, _) => modes,
        }
    }
}

/// A rule's verbs, by the Cedar action their requests reach.
#[derive(Debug, Default)]
struct Verbs {
    /// `*`: every verb.
    all: bool,
    /// Verbs that are their own action, with an empty context.
    plain: BTreeSet<String>,
    /// `impersonate`.
    legacy: bool,
    /// The modes of `impersonate:<mode>`.
    modes: BTreeSet<String>,
    /// `impersonate-on:<mode>:<verb>`: the verbs of each mode.
    on: BTreeMap<String, BTreeSet<String>>,
}

impl Verbs {
    fn is_empty(&self) -> bool {
        !self.all
            && self.plain.is_empty()
            && !self.legacy
            && self.modes.is_empty()
            && self.on.is_empty()
    }
}

/// Which of a rule's policies a permit is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PermitKind {
    /// `*` verbs, or the ordinary verbs.
    Plain,
    /// `impersonate` and `impersonate:<mode>`.
    Impersonate,
    /// `impersonate-on:<mode>:<verb>`.
    ImpersonateOn,
}

impl PermitKind {
    /// Added to the id when a rule gives more than one policy.
    fn id_suffix(self) -> Option<&'static str> {
        match self {
            PermitKind::Plain => None,
            PermitKind::Impersonate => Some(IMPERSONATE),
            PermitKind::ImpersonateOn => Some(IMPERSONATE_ON),
        }
    }
}

/// One policy of a rule, before annotations and the principal.
struct Permit {
    kind: PermitKind,
    action_scope: String,
    resource_scope: String,
    resource_cond: Expr,
}

/// The two ways of asking whether a requester may take on an identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Style {
    /// `impersonate`.
    Legacy,
    /// `impersonate:<mode>`.
    Constrained,
}

impl Style {
    /// The API group in which `resource` is an impersonation target in this
    /// style (the entity model's table); `None` when it is no target.
    fn target_group(self, resource: &str) -> Option<&'static str> {
        match (self, resource) {
            (Style::Legacy, "users" | "groups" | "serviceaccounts") => Some(""),
            (Style::Legacy, "uids" | "userextras") => Some(AUTHENTICATION_GROUP),
            (
                Style::Constrained,
                "users" | "groups" | "serviceaccounts" | "uids" | "userextras" | "nodes",
            ) => Some(AUTHENTICATION_GROUP),
            _ => None,
        }
    }
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
/// `dead` tells the resources whose requests never reach Cedar as a
/// `k8s::Resource` (impersonation targets in every group the rule lists):
/// they are left out, for the reader's sake.
fn api_resource_condition(
    rule: &Rule,
    namespace: Option<&str>,
    dead: &dyn Fn(&str) -> bool,
) -> Expr {
    let group = if rule.api_groups.iter().any(|g| g == "*") {
        Expr::True
    } else {
        cedar::one_of("resource.apiGroup", &sorted(&rule.api_groups))
    };
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
    /// Reports a problem once.
    fn problem(&mut self, message: String) {
        let problem = Problem {
            object: self.binding.label(),
            message,
        };
        if !self.problems.contains(&problem) {
            self.problems.push(problem);
        }
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
            let permits = self.rule(role, i, rule);
            let single = permits.len() == 1;
            for permit in permits {
                let Permit {
                    kind,
                    action_scope,
                    resource_scope,
                    resource_cond,
                } = permit;
                let id = match kind.id_suffix() {
                    Some(suffix) if !single => format!("{id_prefix}/rule-{i}-{suffix}"),
                    _ => format!("{id_prefix}/rule-{i}"),
                };
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

    /// Sorts a rule's verbs by the action their requests reach, and
    /// reports those that no valid policy can match.
    fn verbs(&mut self, at: &str, rule: &Rule) -> Verbs {
        let mut verbs = Verbs::default();
        if rule.verbs.iter().any(|v| v == "*") {
            verbs.all = true;
            return verbs;
        }
        let declared_verbs = self.declared_verbs;
        let declared = |action: &str| declared_verbs.contains(action);
        let not_matched = "requests with it are not matched (RBAC would allow them)";
        for verb in &rule.verbs {
            match impersonation(verb) {
                Impersonation::Legacy if declared(IMPERSONATE) => verbs.legacy = true,
                Impersonation::Identity { mode } if declared(IMPERSONATE) => {
                    verbs.modes.insert(mode.to_owned());
                }
                Impersonation::On { mode, verb } if declared(IMPERSONATE_ON) => {
                    verbs
                        .on
                        .entry(mode.to_owned())
                        .or_default()
                        .insert(verb.to_owned());
                }
                Impersonation::Legacy | Impersonation::Identity { .. } => self.problem(format!(
                    "{at}: verb {verb:?} reaches action {IMPERSONATE:?}, which the schema does \
                     not declare; {not_matched}"
                )),
                Impersonation::On { .. } => self.problem(format!(
                    "{at}: verb {verb:?} reaches action {IMPERSONATE_ON:?}, which the schema \
                     does not declare; {not_matched}"
                )),
                Impersonation::None if verb == IMPERSONATE_ON => self.problem(format!(
                    "{at}: verb {verb:?} reaches action {IMPERSONATE_ON:?} without the mode and \
                     verb the schema requires in its context, so no valid policy can match it; \
                     {not_matched}"
                )),
                Impersonation::None if declared(verb) => {
                    verbs.plain.insert(verb.clone());
                }
                Impersonation::None
                    if verb.starts_with("impersonate:") || verb.starts_with("impersonate-on:") =>
                {
                    self.problem(format!(
                        "{at}: verb {verb:?} lacks a mode or a verb, so it is a custom verb, not \
                         an action of the schema, and no valid policy can name it; {not_matched}"
                    ))
                }
                Impersonation::None => self.problem(format!(
                    "{at}: verb {verb:?} is not an action of the schema, so no valid policy can \
                     name it; {not_matched}"
                )),
            }
        }
        verbs
    }

    /// The policies of one rule: one per kind of action its verbs reach;
    /// none when the rule grants nothing expressible.
    fn rule(&mut self, role: &Role, i: usize, rule: &Rule) -> Vec<Permit> {
        let at = format!("rule {i} of {}", role.label());
        let reported = self.problems.len();
        let verbs = self.verbs(&at, rule);
        if verbs.is_empty() {
            self.problem(format!("{at}: no verbs to grant; skipped"));
            return Vec::new();
        }
        let namespace = self.binding.namespace.as_deref();
        let resources = !rule.resources.is_empty() && !rule.api_groups.is_empty();
        if !rule.resources.is_empty() && rule.api_groups.is_empty() {
            self.problem(format!(
                "{at}: resources without apiGroups match no request (as in RBAC); skipped"
            ));
        }
        let urls = !rule.non_resource_urls.is_empty() && namespace.is_none();
        if !rule.non_resource_urls.is_empty() && namespace.is_some() {
            self.problem(format!(
                "{at}: nonResourceURLs grant nothing through a RoleBinding (as in RBAC); \
                 skipped"
            ));
        }
        // The k8s::Resource clause, leaving out the resources that are
        // impersonation targets (so never a k8s::Resource) in `styles` in
        // every group the rule lists.
        let resource_clause = |styles: &[Style], guard: &Guard, clauses: &mut Vec<Clause>| {
            if !resources {
                return;
            }
            let dead = |resource: &str| {
                !styles.is_empty()
                    && rule.api_groups.iter().all(|g| {
                        styles
                            .iter()
                            .all(|s| s.target_group(resource) == Some(g.as_str()))
                    })
            };
            let cond = api_resource_condition(rule, namespace, &dead);
            if cond != Expr::False {
                clauses.push(Clause::new("Resource", cond, false, guard));
            }
        };
        let url_clause = |guard: &Guard, clauses: &mut Vec<Clause>| {
            if urls {
                let cond = non_resource_condition(&rule.non_resource_urls);
                clauses.push(Clause::new("NonResourceURL", cond, false, guard));
            }
        };

        let mut permits = Vec::new();
        if verbs.all {
            let constrained = Guard {
                legacy: false,
                modes: Modes::Any,
            };
            let mut clauses = Vec::new();
            resource_clause(&[], &Guard::ANY, &mut clauses);
            if resources {
                self.identity_clauses(&at, rule, Style::Legacy, &Guard::LEGACY, &mut clauses);
                self.identity_clauses(&at, rule, Style::Constrained, &constrained, &mut clauses);
            }
            url_clause(&Guard::ANY, &mut clauses);
            if let Some((resource_scope, resource_cond)) = assemble(clauses) {
                permits.push(Permit {
                    kind: PermitKind::Plain,
                    action_scope: String::new(),
                    resource_scope,
                    resource_cond,
                });
            }
        }
        if !verbs.plain.is_empty() {
            let mut clauses = Vec::new();
            resource_clause(&[], &Guard::ANY, &mut clauses);
            url_clause(&Guard::ANY, &mut clauses);
            let actions: Vec<String> = verbs
                .plain
                .iter()
                .map(|v| cedar::entity("Action", v))
                .collect();
            let action_scope = match actions.as_slice() {
                [one] => format!(" == {one}"),
                many => format!(" in [{}]", many.join(", ")),
            };
            if let Some((resource_scope, resource_cond)) = assemble(clauses) {
                permits.push(Permit {
                    kind: PermitKind::Plain,
                    action_scope,
                    resource_scope,
                    resource_cond,
                });
            }
        }
        if verbs.legacy || !verbs.modes.is_empty() {
            let constrained = Guard {
                legacy: false,
                modes: if verbs.modes.is_empty() {
                    Modes::None
                } else {
                    Modes::Listed(verbs.modes.clone())
                },
            };
            let guard = Guard {
                legacy: verbs.legacy,
                modes: constrained.modes.clone(),
            };
            let mut styles = Vec::new();
            if verbs.legacy {
                styles.push(Style::Legacy);
            }
            if !verbs.modes.is_empty() {
                styles.push(Style::Constrained);
            }
            let mut clauses = Vec::new();
            resource_clause(&styles, &guard, &mut clauses);
            if resources {
                if verbs.legacy {
                    self.identity_clauses(&at, rule, Style::Legacy, &Guard::LEGACY, &mut clauses);
                }
                if !verbs.modes.is_empty() {
                    self.identity_clauses(
                        &at,
                        rule,
                        Style::Constrained,
                        &constrained,
                        &mut clauses,
                    );
                }
            }
            url_clause(&guard, &mut clauses);
            if let Some((resource_scope, resource_cond)) = assemble(clauses) {
                permits.push(Permit {
                    kind: PermitKind::Impersonate,
                    action_scope: format!(" == {}", cedar::entity("Action", IMPERSONATE)),
                    resource_scope,
                    resource_cond,
                });
            }
        }
        if !verbs.on.is_empty() {
            let mut clauses = Vec::new();
            resource_clause(&[], &Guard::ANY, &mut clauses);
            url_clause(&Guard::ANY, &mut clauses);
            if let Some((resource_scope, resource_cond)) = assemble(clauses) {
                permits.push(Permit {
                    kind: PermitKind::ImpersonateOn,
                    action_scope: format!(" == {}", cedar::entity("Action", IMPERSONATE_ON)),
                    resource_scope,
                    resource_cond: Expr::and([on_condition(&verbs.on), resource_cond]),
                });
            }
        }

        if permits.is_empty() {
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
        }
        permits
    }

    /// Clauses for the requests of one impersonation style that the entity
    /// model turns into the impersonated entity, under `guard`.
    fn identity_clauses(
        &mut self,
        at: &str,
        rule: &Rule,
        style: Style,
        guard: &Guard,
        clauses: &mut Vec<Clause>,
    ) {
        let any_group = rule.api_groups.iter().any(|g| g == "*");
        let any_resource = rule.resources.iter().any(|r| r == "*");
        let named = |r: &str| rule.resources.iter().any(|x| x == r);
        // `r` is a target of this style in a group the rule lists.
        let target = |r: &str| {
            style
                .target_group(r)
                .is_some_and(|g| any_group || rule.api_groups.iter().any(|x| x == g))
        };
        let grants = |r: &str| target(r) && (any_resource || named(r));
        let names = sorted(&rule.resource_names);
        let cluster = self.binding.namespace.is_none();

        for entry in &rule.resources {
            if let Some((resource, subresource)) = entry.split_once('/') {
                if resource != "userextras" && !subresource.is_empty() && target(resource) {
                    self.problem(format!(
                        "{at}: {entry:?}: an impersonation target carries no subresource in the \
                         entity model (and the apiserver sends none), so impersonation reviews \
                         with this subresource are not matched (RBAC would allow them)"
                    ));
                }
            }
        }
        if named("userextras") && target("userextras") {
            self.problem(format!(
                "{at}: \"userextras\" without a key matches only reviews without a key (as in \
                 RBAC), and the apiserver checks userextras/<key>"
            ));
        }

        // Users, groups, uids, extras and nodes are cluster-scoped: the
        // apiserver sends no namespace, so a RoleBinding never grants them.
        if cluster && grants("users") {
            let (nodes, users): (Vec<String>, Vec<String>) = names
                .iter()
                .cloned()
                .partition(|n| matches!(identity(n), Identity::Node { .. }));
            match (style, names.is_empty()) {
                (Style::Legacy, true) => {
                    for type_name in ["User", "Node"] {
                        clauses.push(Clause::new(type_name, Expr::True, false, guard));
                    }
                }
                (Style::Legacy, false) => {
                    for (type_name, ids) in [("User", users), ("Node", nodes)] {
                        if !ids.is_empty() {
                            let cond = cedar::one_of_entities("resource", type_name, &ids);
                            clauses.push(Clause::new(type_name, cond, true, guard));
                        }
                    }
                }
                // A constrained review of a user named system:node:<n> is
                // the node <n>'s: decided with nodes, below.
                (Style::Constrained, true) => {
                    clauses.push(Clause::new("User", Expr::True, false, guard));
                }
                (Style::Constrained, false) => {
                    if !users.is_empty() {
                        let cond = cedar::one_of_entities("resource", "User", &users);
                        clauses.push(Clause::new("User", cond, true, guard));
                    }
                }
            }
        }
        if style == Style::Constrained && cluster {
            if grants("nodes") {
                if names.is_empty() {
                    clauses.push(Clause::new("Node", Expr::True, false, guard));
                } else {
                    let ids: Vec<String> =
                        names.iter().map(|n| format!("system:node:{n}")).collect();
                    let cond = cedar::one_of_entities("resource", "Node", &ids);
                    clauses.push(Clause::new("Node", cond, true, guard));
                }
            }
            // `None`: every node.
            let node_names = |resource: &str, name_of: &dyn Fn(&str) -> Option<String>| {
                if !grants(resource) {
                    Some(BTreeSet::new())
                } else if names.is_empty() {
                    None
                } else {
                    Some(names.iter().filter_map(|n| name_of(n)).collect())
                }
            };
            let node_of = |username: &str| match identity(username) {
                Identity::Node { name } => Some(name.to_owned()),
                _ => None,
            };
            let as_users = node_names("users", &node_of);
            let as_nodes = node_names("nodes", &|n| node_of(&format!("system:node:{n}")));
            if as_users != as_nodes {
                self.problem(format!(
                    "{at}: under impersonate:<mode>, authentication.k8s.io users named \
                     system:node:<n> and nodes <n> reach Cedar as the same k8s::Node, so they \
                     are converted as the rule grants nodes: RBAC decides differently for such \
                     users (the apiserver checks node impersonation on nodes only)"
                ));
            }
        }
        if cluster && grants("groups") {
            clauses.push(if names.is_empty() {
                Clause::new("Group", Expr::True, false, guard)
            } else {
                let cond = cedar::one_of_entities("resource", "Group", &names);
                Clause::new("Group", cond, true, guard)
            });
        }
        if grants("serviceaccounts") {
            let names_cond = if names.is_empty() {
                Expr::True
            } else {
                cedar::one_of("resource.name", &names)
            };
            let namespace_cond = match &self.binding.namespace {
                None => Expr::True,
                Some(ns) => cedar::one_of("resource.namespace", std::slice::from_ref(ns)),
            };
            let cond = Expr::and([names_cond, namespace_cond]);
            clauses.push(Clause::new("ServiceAccount", cond, false, guard));
        }
        if cluster && grants("uids") {
            clauses.push(if names.is_empty() {
                Clause::new("PrincipalUID", Expr::True, false, guard)
            } else {
                let cond = cedar::one_of_entities("resource", "PrincipalUID", &names);
                Clause::new("PrincipalUID", cond, true, guard)
            });
        }
        if cluster && target("userextras") {
            // The extra key is the subresource: `userextras` alone is the
            // empty key, `*/<key>` any resource's.
            let keys: BTreeSet<String> = rule
                .resources
                .iter()
                .filter_map(|r| {
                    if r == "userextras" {
                        return Some(String::new());
                    }
                    r.strip_prefix("userextras/")
                        .or_else(|| r.strip_prefix("*/"))
                        .filter(|k| !k.is_empty())
                        .map(str::to_owned)
                })
                .collect();
            if any_resource || !keys.is_empty() {
                let keys_cond = if any_resource {
                    Expr::True
                } else {
                    cedar::one_of("resource.key", &keys.into_iter().collect::<Vec<_>>())
                };
                let cond = Expr::and([keys_cond, names_condition(&names, "value")]);
                clauses.push(Clause::new("Extra", cond, false, guard));
            }
        }
    }
}

/// The resource scope and condition for a policy's clauses: clauses that
/// differ only in their guard become one, the union of the guards is said
/// once, and one clause puts its type into the scope.
fn assemble(clauses: Vec<Clause>) -> Option<(String, Expr)> {
    let mut merged: Vec<Clause> = Vec::new();
    for c in clauses {
        match merged
            .iter_mut()
            .find(|m| m.type_name == c.type_name && m.cond == c.cond && m.typed == c.typed)
        {
            Some(m) => m.guard = m.guard.union(&c.guard),
            None => merged.push(c),
        }
    }
    // Every clause's guard implies their union: say the union once, and
    // again only the guards narrower than it.
    let shared = merged
        .iter()
        .skip(1)
        .fold(merged.first()?.guard.clone(), |u, c| u.union(&c.guard));
    let common = shared.expr();
    let mut clauses: Vec<(&str, Expr, bool)> = merged
        .into_iter()
        .map(|c| {
            let cond = if c.guard == shared {
                c.cond
            } else {
                Expr::and([c.guard.expr(), c.cond])
            };
            (c.type_name, cond, c.typed)
        })
        .collect();
    clauses.retain(|(_, cond, _)| *cond != Expr::False);
    if common == Expr::False || clauses.is_empty() {
        return None;
    }
    let (scope, cond) = if clauses.len() == 1 {
        let (type_name, cond, _) = clauses.pop()?;
        (format!(" is k8s::{type_name}"), cond)
    } else if clauses.iter().all(|(_, c, _)| *c == Expr::True)
        && clauses.len() >= RESOURCE_TYPES - 1
    {
        // Every type, or every type but NonResourceURL (`*` resources
        // with `*` verbs): say so briefly.
        if clauses.len() == RESOURCE_TYPES {
            (String::new(), Expr::True)
        } else {
            let missing = ALL_RESOURCE_TYPES
                .iter()
                .find(|t| !clauses.iter().any(|(c, _, _)| c == *t))?;
            (
                String::new(),
                Expr::atom(format!("!(resource is k8s::{missing})")),
            )
        }
    } else {
        let guard = |t: &str| Expr::atom(format!("resource is k8s::{t}"));
        let cond = Expr::or(clauses.into_iter().map(|(type_name, cond, typed)| {
            if typed {
                cond
            } else {
                Expr::and([guard(type_name), cond])
            }
        }));
        (String::new(), cond)
    };
    Some((scope, Expr::and([common, cond])))
}

/// The context condition of `impersonate-on:<mode>:<verb>` verbs, modes
/// with the same verbs together. `context has mode` keeps a request for
/// the bare verb `impersonate-on` (which reaches the action with an empty
/// context) from erroring.
fn on_condition(on: &BTreeMap<String, BTreeSet<String>>) -> Expr {
    let mut by_verbs: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
    for (mode, verbs) in on {
        by_verbs
            .entry(verbs.iter().cloned().collect())
            .or_default()
            .push(mode.clone());
    }
    Expr::and([
        Expr::atom("context has mode"),
        Expr::or(by_verbs.into_iter().map(|(verbs, modes)| {
            Expr::and([
                cedar::one_of("context.mode", &modes),
                cedar::one_of("context.verb", &verbs),
            ])
        })),
    ])
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

#[cfg(test)]
mod tests {
    use super::*;

    fn modes(m: &[&str]) -> Modes {
        Modes::Listed(m.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn guards_render_and_unite() {
        let constrained = |m: &[&str]| Guard {
            legacy: false,
            modes: modes(m),
        };
        assert_eq!(Guard::ANY.expr(), Expr::True);
        assert_eq!(Guard::LEGACY.expr().render(), "!(context has mode)");
        assert_eq!(
            constrained(&["b", "a"]).expr().render(),
            r#"context has mode && ["a", "b"].contains(context.mode)"#
        );
        let both = Guard::LEGACY.union(&constrained(&["a"]));
        assert_eq!(
            both.expr().render(),
            r#"!(context has mode) || (context has mode && context.mode == "a")"#
        );
        assert_eq!(
            constrained(&["a"]).union(&constrained(&["b"])),
            constrained(&["a", "b"])
        );
        let any_mode = Guard {
            legacy: false,
            modes: Modes::Any,
        };
        assert_eq!(any_mode.expr().render(), "context has mode");
        assert_eq!(Guard::LEGACY.union(&any_mode), Guard::ANY);
    }

    #[test]
    fn impersonate_on_modes_with_the_same_verbs_are_listed_together() {
        let mut on: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (mode, verb) in [
            ("user-info", "get"),
            ("user-info", "list"),
            ("serviceaccount", "get"),
            ("serviceaccount", "list"),
            ("arbitrary-node", "get"),
        ] {
            on.entry(mode.into()).or_default().insert(verb.into());
        }
        assert_eq!(
            on_condition(&on).render(),
            r#"context has mode && ((context.mode == "arbitrary-node" && context.verb == "get") || (["serviceaccount", "user-info"].contains(context.mode) && ["get", "list"].contains(context.verb)))"#
        );
    }

    #[test]
    fn impersonation_targets_are_exact_pairs_per_style() {
        assert_eq!(Style::Legacy.target_group("users"), Some(""));
        assert_eq!(
            Style::Legacy.target_group("uids"),
            Some(AUTHENTICATION_GROUP)
        );
        assert_eq!(Style::Legacy.target_group("nodes"), None);
        for r in [
            "users",
            "groups",
            "serviceaccounts",
            "uids",
            "userextras",
            "nodes",
        ] {
            assert_eq!(
                Style::Constrained.target_group(r),
                Some(AUTHENTICATION_GROUP)
            );
        }
        assert_eq!(Style::Constrained.target_group("pods"), None);
    }
}
