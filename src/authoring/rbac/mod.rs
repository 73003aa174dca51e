//! Kubernetes RBAC objects as `convert-rbac` reads them: ClusterRoles,
//! Roles and their bindings, from multi-document YAML or a `List` as
//! `kubectl get ... -o yaml` prints it.
//!
//! Only what RBAC decides with is kept (rules, role references, subjects,
//! names and namespaces). Objects of other kinds, and objects whose shape
//! is wrong, are reported as [`Problem`]s rather than dropped silently; a
//! file that is not YAML at all is an [`RbacError`].

mod cedar;
pub mod convert;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

use crate::yaml;

pub use convert::{convert, declared_verbs, Conversion, ConvertedBinding};

/// Why an input file could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum RbacError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not YAML.
    #[error("{origin}: not valid YAML: {message}")]
    Yaml { origin: String, message: String },
}

/// Something in the input that does not become a policy, or does not
/// become exactly what RBAC would decide. Reported, never dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The object concerned, e.g. `ClusterRoleBinding "view"`, or a file.
    pub object: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.object, self.message)
    }
}

/// Deserialises `null` (or a missing field, with `#[serde(default)]`) as
/// the type's default, as Kubernetes treats omitted and null lists alike.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// One `PolicyRule`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    #[serde(default, deserialize_with = "nullable")]
    pub verbs: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub api_groups: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub resources: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub resource_names: Vec<String>,
    #[serde(default, rename = "nonResourceURLs", deserialize_with = "nullable")]
    pub non_resource_urls: Vec<String>,
}

/// A binding's `subjects` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Subject {
    #[serde(default, deserialize_with = "nullable")]
    pub kind: String,
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    /// Service accounts only; empty means the binding's own namespace.
    #[serde(default, deserialize_with = "nullable")]
    pub namespace: String,
}

/// A binding's `roleRef`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct RoleRef {
    #[serde(default, deserialize_with = "nullable")]
    pub kind: String,
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
}

/// A ClusterRole (`namespace: None`) or a Role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    pub namespace: Option<String>,
    pub rules: Vec<Rule>,
    /// Carries an `aggregationRule`: its rules are the ones the aggregation
    /// controller has already filled in.
    pub aggregated: bool,
}

impl Role {
    /// `ClusterRole "name"` or `Role "ns/name"`, for messages.
    pub fn label(&self) -> String {
        match &self.namespace {
            None => format!("ClusterRole {:?}", self.name),
            Some(ns) => format!("Role {:?}", format!("{ns}/{}", self.name)),
        }
    }
}

/// A ClusterRoleBinding (`namespace: None`) or a RoleBinding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    pub name: String,
    pub namespace: Option<String>,
    pub role_ref: RoleRef,
    pub subjects: Vec<Subject>,
}

impl Binding {
    /// `ClusterRoleBinding "name"` or `RoleBinding "ns/name"`, for messages.
    pub fn label(&self) -> String {
        match &self.namespace {
            None => format!("ClusterRoleBinding {:?}", self.name),
            Some(ns) => format!("RoleBinding {:?}", format!("{ns}/{}", self.name)),
        }
    }
}

/// Every RBAC object read so far, in input order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Objects {
    pub roles: Vec<Role>,
    pub bindings: Vec<Binding>,
}

#[derive(Deserialize, Default)]
struct Metadata {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    namespace: String,
}

/// The fields of the four kinds that RBAC reads, all optional so the
/// kind can be told from the shape when `kind` is missing (as in the Go
/// proof of concept's golden files).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawObject {
    #[serde(default, deserialize_with = "nullable")]
    metadata: Metadata,
    #[serde(default)]
    rules: Option<Vec<Rule>>,
    #[serde(default)]
    aggregation_rule: Option<serde_json::Value>,
    #[serde(default)]
    role_ref: Option<RoleRef>,
    #[serde(default, deserialize_with = "nullable")]
    subjects: Vec<Subject>,
}

impl Objects {
    /// Reads one file; `-` is stdin.
    pub fn read_file(&mut self, path: &Path, problems: &mut Vec<Problem>) -> Result<(), RbacError> {
        let io = |source| RbacError::Io {
            path: path.to_owned(),
            source,
        };
        let text = if path == Path::new("-") {
            std::io::read_to_string(std::io::stdin()).map_err(io)?
        } else {
            std::fs::read_to_string(path).map_err(io)?
        };
        self.parse(&text, &path.display().to_string(), problems)
    }

    /// Reads every YAML document of `text`; `origin` names it in messages.
    pub fn parse(
        &mut self,
        text: &str,
        origin: &str,
        problems: &mut Vec<Problem>,
    ) -> Result<(), RbacError> {
        let documents = yaml::documents(text).map_err(|e| RbacError::Yaml {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        for document in documents {
            let where_ = format!("{origin}: document {}", document.number);
            self.add_value(document.value, &where_, problems);
        }
        Ok(())
    }

    fn add_value(&mut self, value: serde_json::Value, origin: &str, problems: &mut Vec<Problem>) {
        if value.is_null() {
            return;
        }
        let field = |name: &str| {
            value
                .get(name)
                .and_then(serde_json::Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let kind = field("kind");
        let api_version = field("apiVersion");
        if kind == "List" || (kind.ends_with("List") && value.get("items").is_some()) {
            let items = match value.get("items") {
                Some(serde_json::Value::Array(items)) => items.clone(),
                _ => Vec::new(),
            };
            for (i, item) in items.into_iter().enumerate() {
                self.add_value(item, &format!("{origin}: item {}", i + 1), problems);
            }
            return;
        }
        let problem = |message: String| Problem {
            object: origin.to_owned(),
            message,
        };
        if !kind.is_empty()
            && !matches!(
                kind.as_str(),
                "ClusterRole" | "Role" | "ClusterRoleBinding" | "RoleBinding"
            )
        {
            problems.push(problem(format!(
                "skipped {kind} {:?}: not an RBAC role or binding",
                value
                    .get("metadata")
                    .and_then(|m| m.get("name"))
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("")
            )));
            return;
        }
        if !api_version.is_empty() && !api_version.starts_with("rbac.authorization.k8s.io/") {
            problems.push(problem(format!(
                "skipped {kind}: apiVersion {api_version:?} is not rbac.authorization.k8s.io"
            )));
            return;
        }
        // Without `kind`, the shape tells: a roleRef makes a binding, rules
        // or an aggregationRule a role; a namespace makes it namespaced.
        let has_role_ref = value.get("roleRef").is_some();
        let has_rules = value.get("rules").is_some() || value.get("aggregationRule").is_some();
        let raw: RawObject = match serde_json::from_value(value) {
            Ok(r) => r,
            Err(e) => {
                problems.push(problem(format!("skipped: not a valid {kind}: {e}")));
                return;
            }
        };
        let kind = match kind.as_str() {
            "" if has_role_ref && raw.metadata.namespace.is_empty() => "ClusterRoleBinding",
            "" if has_role_ref => "RoleBinding",
            "" if has_rules && raw.metadata.namespace.is_empty() => "ClusterRole",
            "" if has_rules => "Role",
            "" => {
                problems.push(problem(
                    "skipped: no kind, and neither roleRef nor rules to tell it by".into(),
                ));
                return;
            }
            k => k,
        };
        let name = raw.metadata.name;
        let namespace = match kind {
            "Role" | "RoleBinding" if raw.metadata.namespace.is_empty() => {
                problems.push(problem(format!(
                    "skipped {kind} {name:?}: metadata.namespace is missing"
                )));
                return;
            }
            "Role" | "RoleBinding" => Some(raw.metadata.namespace),
            _ => None,
        };
        match kind {
            "ClusterRole" | "Role" => {
                let role = Role {
                    name,
                    namespace,
                    rules: raw.rules.unwrap_or_default(),
                    aggregated: raw.aggregation_rule.is_some(),
                };
                if self
                    .roles
                    .iter()
                    .any(|r| r.name == role.name && r.namespace == role.namespace)
                {
                    problems.push(problem(format!(
                        "{} appears twice; the first one is used",
                        role.label()
                    )));
                } else {
                    self.roles.push(role);
                }
            }
            _ => {
                let Some(role_ref) = raw.role_ref else {
                    problems.push(problem(format!(
                        "skipped {kind} {name:?}: roleRef is missing"
                    )));
                    return;
                };
                let binding = Binding {
                    name,
                    namespace,
                    role_ref,
                    subjects: raw.subjects,
                };
                if self
                    .bindings
                    .iter()
                    .any(|b| b.name == binding.name && b.namespace == binding.namespace)
                {
                    problems.push(problem(format!(
                        "{} appears twice; the first one is used",
                        binding.label()
                    )));
                } else {
                    self.bindings.push(binding);
                }
            }
        }
    }

    /// The role a binding refers to: a ClusterRole, or a Role in the
    /// binding's namespace.
    pub fn role_for(&self, binding: &Binding) -> Option<&Role> {
        let namespace = match binding.role_ref.kind.as_str() {
            "ClusterRole" => None,
            "Role" => Some(binding.namespace.as_ref()?),
            _ => return None,
        };
        self.roles
            .iter()
            .find(|r| r.name == binding.role_ref.name && r.namespace.as_ref() == namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Objects, Vec<Problem>) {
        let mut objects = Objects::default();
        let mut problems = Vec::new();
        objects.parse(text, "t.yaml", &mut problems).unwrap();
        (objects, problems)
    }

    #[test]
    fn kinds_are_read_from_kind_or_inferred_from_shape() {
        let (o, p) = parse(
            "kind: ClusterRole\napiVersion: rbac.authorization.k8s.io/v1\nmetadata: {name: a}\nrules: [{verbs: [get], apiGroups: [''], resources: [pods]}]\n---\n\
             metadata: {name: b, namespace: ns}\nroleRef: {kind: Role, name: r}\nsubjects: [{kind: User, name: u}]\n---\n\
             metadata: {name: c}\nrules: null\n---\n",
        );
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(o.roles.len(), 2);
        assert_eq!(o.roles[0].rules[0].resources, vec!["pods"]);
        assert_eq!(o.bindings[0].namespace.as_deref(), Some("ns"));
    }

    #[test]
    fn lists_are_unpacked_and_other_kinds_reported() {
        let (o, p) = parse(
            "kind: List\nitems:\n- kind: ClusterRoleBinding\n  metadata: {name: x}\n  roleRef: {kind: ClusterRole, name: y}\n- kind: ConfigMap\n  metadata: {name: z}\n",
        );
        assert_eq!(o.bindings.len(), 1);
        assert_eq!(p.len(), 1);
        assert!(p[0].message.contains("ConfigMap"), "{}", p[0]);
    }

    #[test]
    fn not_yaml_is_an_error() {
        let mut o = Objects::default();
        assert!(o.parse("a: [", "t.yaml", &mut Vec::new()).is_err());
    }
}
