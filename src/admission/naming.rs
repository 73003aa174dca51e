//! The Cedar name of a Kubernetes kind: one entity type per
//! group/version/kind, as the Go proof of concept's generated schema names
//! them (`core::v1::ConfigMap`, `apps::v1::Deployment`,
//! `aws::k8s::cedar::v1alpha1::Policy`).
//!
//! - The core group (`""`) is `core`.
//! - A group with no dot (`apps`, `batch`, `policy`) is itself.
//! - A group under `k8s.io` is its first label (`rbac.authorization.k8s.io`
//!   is `rbac`, `storage.k8s.io` is `storage`).
//! - Any other group (CRDs) is its labels reversed (`cedar.k8s.aws` is
//!   `aws::k8s::cedar`, `stable.example.com` is `com::example::stable`).
//!
//! Labels are made Cedar identifiers: `-` becomes `_`, and a label that
//! starts with a digit or is a Cedar keyword gets a leading `_`. The schema
//! generator and the admission entity builder both name types through
//! [`type_name`], so they cannot disagree.

/// Cedar's reserved words, which cannot be a namespace segment.
const RESERVED: &[&str] = &[
    "true", "false", "if", "then", "else", "in", "is", "like", "has", "__cedar",
];

fn identifier(label: &str) -> String {
    let mut out: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.is_empty()
        || out.starts_with(|c: char| c.is_ascii_digit())
        || RESERVED.contains(&out.as_str())
    {
        out.insert(0, '_');
    }
    out
}

/// The Cedar namespace of an API group and version, e.g. `apps::v1`.
pub fn namespace(group: &str, version: &str) -> String {
    let mut segments: Vec<String> = if group.is_empty() {
        vec!["core".to_owned()]
    } else if let Some(first) = group
        .strip_suffix(".k8s.io")
        .map(|g| g.split('.').next().unwrap_or(g))
    {
        vec![identifier(first)]
    } else {
        group.rsplit('.').map(identifier).collect()
    };
    segments.push(identifier(version));
    segments.join("::")
}

/// The Cedar entity type of a group/version/kind, e.g. `core::v1::Pod`.
pub fn type_name(group: &str, version: &str, kind: &str) -> String {
    format!("{}::{}", namespace(group, version), identifier(kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_go_proof_of_concepts_schema() {
        for (group, version, kind, want) in [
            ("", "v1", "ConfigMap", "core::v1::ConfigMap"),
            ("apps", "v1", "Deployment", "apps::v1::Deployment"),
            ("rbac.authorization.k8s.io", "v1", "Role", "rbac::v1::Role"),
            (
                "flowcontrol.apiserver.k8s.io",
                "v1",
                "FlowSchema",
                "flowcontrol::v1::FlowSchema",
            ),
            (
                "cedar.k8s.aws",
                "v1alpha1",
                "Policy",
                "aws::k8s::cedar::v1alpha1::Policy",
            ),
            (
                "my-team.example.com",
                "v1",
                "Widget",
                "com::example::my_team::v1::Widget",
            ),
            ("in.2fa.io", "v1", "X", "io::_2fa::_in::v1::X"),
        ] {
            assert_eq!(type_name(group, version, kind), want);
            let parsed: cedar_policy::EntityTypeName = want.parse().unwrap();
            assert_eq!(parsed.to_string(), want);
        }
    }
}
