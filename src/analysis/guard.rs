//! The realisability guard: a Cedar condition, per request environment,
//! that holds for every request a SubjectAccessReview can produce and
//! excludes shapes it cannot.
//!
//! Cedar's symbolic model treats an entity's id and its attributes as
//! independent, and knows nothing of exemptions, so left alone it finds
//! "differences" such as a `k8s::User` whose id is `alice` and whose
//! `name` is `bob`: one policy written with `principal ==
//! k8s::User::"alice"` and its refactoring written with `principal.name ==
//! "alice"` would then differ. Cedar cannot read an entity's id as a
//! string, but every id a policy can test is a literal in some policy, so
//! the guard ties each such literal to the attributes the entity model
//! derives the id from: `(principal == k8s::User::"alice") ==
//! (principal.name == "alice")`. Under the guard, the username can be taken
//! from the attributes and every literal comparison still comes out the
//! same.
//!
//! What the guard cannot say (Cedar has no quantifier over sets) is left to
//! the engine's re-check: selector operators outside the four Kubernetes
//! ones, `extra` tags that disagree with the `extra` attribute, a resource
//! id that is not its path, a principal that equals the resource under a
//! different name. A counterexample in such a shape is reported as not
//! confirmed. Where the guard is stricter than the entity model (`system:`
//! names, and without the default exemptions malformed service-account and
//! node names, which are plain users), a difference only such names reach
//! is not looked for; docs/policy-authoring.md says so.

use std::collections::{BTreeMap, BTreeSet};

use cedar_policy::{EntityUid, PolicySet, RequestEnv};

use crate::engine::Exemptions;
use crate::entities::{identity, Identity};

/// Id of the guard policy added to every compared set.
pub const GUARD_ID: &str = "cedar-authorizer/realisable-requests";

/// Entity literals of the compared policy sets, by type name.
#[derive(Debug, Default)]
pub struct Literals(BTreeMap<String, BTreeSet<EntityUid>>);

impl Literals {
    /// The entity literals of every policy of the sets.
    pub fn of<'a>(sets: impl IntoIterator<Item = &'a PolicySet>) -> Self {
        let mut out = Literals::default();
        for set in sets {
            for policy in set.policies() {
                for uid in policy.entity_literals() {
                    out.0
                        .entry(uid.type_name().to_string())
                        .or_default()
                        .insert(uid);
                }
            }
        }
        out
    }

    fn of_type(&self, type_name: &str) -> impl Iterator<Item = &EntityUid> {
        self.0.get(type_name).into_iter().flatten()
    }
}

/// A Cedar string literal.
pub(crate) fn lit(s: &str) -> String {
    format!("\"{}\"", s.escape_debug())
}

/// `(var == uid) == (condition)`: the literal holds exactly when the
/// attributes it is derived from say so.
fn tie(var: &str, uid: &EntityUid, condition: &str) -> String {
    format!("(({var} == {uid}) == ({condition}))")
}

fn present_non_empty(var: &str, attr: &str) -> String {
    // Written so the validator sees the `has` guarding the access.
    format!("!({var} has {attr} && {var}.{attr} == \"\")")
}

/// What the guard of one environment is.
pub enum Guard {
    /// No SubjectAccessReview reaches this environment (a `k8s::Group`
    /// principal: groups are only ever a principal's parents).
    Unreachable,
    /// The condition, as Cedar text; `true` when nothing is known of the
    /// environment's types.
    Condition(String),
}

/// The guard of one request environment.
pub fn guard(env: &RequestEnv, literals: &Literals, exemptions: &Exemptions) -> Guard {
    let principal = env.principal().to_string();
    let resource = env.resource().to_string();
    let action = env.action().id().unescaped().to_owned();
    let mut clauses = Vec::new();
    match principal.as_str() {
        "k8s::Group" => return Guard::Unreachable,
        "k8s::User" | "k8s::ServiceAccount" | "k8s::Node" => {
            principal_clauses(&principal, literals, exemptions, &mut clauses);
            clauses.push(present_non_empty("principal", "uid"));
        }
        _ => {}
    }
    match action.as_str() {
        "impersonate" => clauses.push("!(context has mode && context.mode == \"\")".into()),
        "impersonate-on" => clauses.push(
            "(context.mode != \"\" && !(context.mode like \"*:*\") && context.verb != \"\")".into(),
        ),
        _ => {}
    }
    resource_clauses(&resource, &action, literals, &mut clauses);
    if clauses.is_empty() {
        return Guard::Condition("true".into());
    }
    Guard::Condition(clauses.join("\n  && "))
}

/// The guard as a policy: a forbid of everything the condition excludes.
pub fn guard_policy_text(condition: &str) -> String {
    format!(
        "@id({})\nforbid (principal, action, resource)\nunless {{\n  {condition}\n}};",
        lit(GUARD_ID)
    )
}

fn principal_clauses(
    principal: &str,
    literals: &Literals,
    exemptions: &Exemptions,
    out: &mut Vec<String>,
) {
    let exempt = exemptions.users.iter().map(|u| (u, identity(u)));
    match principal {
        "k8s::User" => {
            if exemptions.control_plane {
                out.push(
                    "(!(principal.name like \"system:*\") || principal.name == \"system:anonymous\")"
                        .into(),
                );
            } else {
                // Stricter than the entity model: `system:node:a:b` is a
                // user, but no user with such a name is looked at.
                out.push("!(principal.name like \"system:serviceaccount:*:*\")".into());
                out.push("!(principal.name like \"system:node:*\")".into());
            }
            for (u, id) in exempt {
                if id == Identity::User {
                    out.push(format!("principal.name != {}", lit(u)));
                }
            }
            for uid in literals.of_type(principal) {
                let id = uid.id().unescaped();
                out.push(tie(
                    "principal",
                    uid,
                    &format!("principal.name == {}", lit(id)),
                ));
            }
        }
        "k8s::ServiceAccount" => {
            out.push(
                "(principal.name != \"\" && principal.namespace != \"\" && !(principal.name like \"*:*\") && !(principal.namespace like \"*:*\"))"
                    .into(),
            );
            for (_, id) in exempt {
                if let Identity::ServiceAccount { namespace, name } = id {
                    out.push(format!(
                        "!(principal.namespace == {} && principal.name == {})",
                        lit(namespace),
                        lit(name)
                    ));
                }
            }
            for uid in literals.of_type(principal) {
                match identity(uid.id().unescaped()) {
                    Identity::ServiceAccount { namespace, name } => out.push(tie(
                        "principal",
                        uid,
                        &format!(
                            "principal.namespace == {} && principal.name == {}",
                            lit(namespace),
                            lit(name)
                        ),
                    )),
                    _ => out.push(format!("principal != {uid}")),
                }
            }
        }
        "k8s::Node" => {
            out.push("(principal.name != \"\" && !(principal.name like \"*:*\"))".into());
            for (_, id) in exempt {
                if let Identity::Node { name } = id {
                    out.push(format!("principal.name != {}", lit(name)));
                }
            }
            for uid in literals.of_type(principal) {
                match identity(uid.id().unescaped()) {
                    Identity::Node { name } => out.push(tie(
                        "principal",
                        uid,
                        &format!("principal.name == {}", lit(name)),
                    )),
                    _ => out.push(format!("principal != {uid}")),
                }
            }
        }
        _ => {}
    }
}

/// The (apiGroup, resource) pairs that name an identity, as
/// `entities::legacy_target` and `constrained_target` read them.
const LEGACY_IDENTITY_PAIRS: &str = "((resource.apiGroup == \"\" && [\"users\", \"groups\", \"serviceaccounts\"].contains(resource.resource)) || (resource.apiGroup == \"authentication.k8s.io\" && [\"uids\", \"userextras\"].contains(resource.resource)))";
const CONSTRAINED_IDENTITY_PAIRS: &str = "(resource.apiGroup == \"authentication.k8s.io\" && [\"users\", \"groups\", \"uids\", \"userextras\", \"serviceaccounts\", \"nodes\"].contains(resource.resource))";

fn resource_clauses(resource: &str, action: &str, literals: &Literals, out: &mut Vec<String>) {
    let name_ties = |out: &mut Vec<String>, attr: &str| {
        for uid in literals.of_type(resource) {
            let id = uid.id().unescaped();
            out.push(tie(
                "resource",
                uid,
                &format!("resource.{attr} == {}", lit(id)),
            ));
        }
    };
    match resource {
        "k8s::Resource" => {
            for attr in ["version", "namespace", "name", "subresource"] {
                out.push(present_non_empty("resource", attr));
            }
            for attr in ["labelSelector", "fieldSelector"] {
                out.push(format!(
                    "!(resource has {attr} && resource.{attr}.isEmpty())"
                ));
            }
            if action == "impersonate" {
                // These pairs become identity entities, never a Resource.
                out.push(format!(
                    "(if context has mode then !{CONSTRAINED_IDENTITY_PAIRS} else !{LEGACY_IDENTITY_PAIRS})"
                ));
            }
        }
        "k8s::NonResourceURL" => name_ties(out, "path"),
        "k8s::User" => {
            // A `users` target named like a node is a Node.
            out.push("!(resource.name like \"system:node:*\")".into());
            name_ties(out, "name");
        }
        "k8s::Group" => name_ties(out, "name"),
        "k8s::Extra" => {
            out.push(present_non_empty("resource", "value"));
            name_ties(out, "key");
        }
        "k8s::Node" => {
            // Legacy style names a node as the user `system:node:<name>`.
            out.push(
                "(context has mode || (resource.name != \"\" && !(resource.name like \"*:*\")))"
                    .into(),
            );
            for uid in literals.of_type(resource) {
                match identity(uid.id().unescaped()) {
                    Identity::Node { name } => out.push(tie(
                        "resource",
                        uid,
                        &format!("resource.name == {}", lit(name)),
                    )),
                    _ => out.push(format!("resource != {uid}")),
                }
            }
        }
        "k8s::ServiceAccount" => {
            for uid in literals.of_type(resource) {
                let id = uid.id().unescaped();
                // The entity builder formats the id from namespace and
                // name, empty parts included.
                let condition = match id
                    .strip_prefix("system:serviceaccount:")
                    .and_then(|rest| rest.split_once(':'))
                {
                    Some((namespace, name)) if !name.contains(':') => format!(
                        "resource.namespace == {} && resource.name == {}",
                        lit(namespace),
                        lit(name)
                    ),
                    _ => "false".into(),
                };
                out.push(tie("resource", uid, &condition));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_literals_escape_quotes_and_backslashes() {
        assert_eq!(lit(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(lit("line\nbreak"), r#""line\nbreak""#);
    }
}
