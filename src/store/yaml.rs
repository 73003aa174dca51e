//! Policy objects in YAML files, for the offline commands (`validate`,
//! `check`, `test`, `replay` with `--policy-objects`) and `convert-rbac
//! --format crd`: the same sources `serve` builds from the cluster's
//! objects, so ids and verdicts match what the webhook will do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{merge, PolicyObject, GROUP, KIND, VERSION};
use crate::policy::{self, Diagnostic, LoadError, PolicyFile};

/// The Policy objects of YAML streams (multi-document, or `List`s), in
/// name order; other kinds are skipped, so a file that `kubectl apply`
/// takes can be checked as it is. The sources are named as the webhook
/// names them (`policy/<name>`) and located at `FILE: Policy NAME,
/// spec.content` for messages.
pub fn read_files(paths: &[PathBuf]) -> policy::Result<Vec<PolicyFile>> {
    let mut objects = Vec::new();
    let mut origin: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut errors = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
            path: path.clone(),
            source,
        })?;
        let found = match parse(&text) {
            Ok(found) => found,
            Err(message) => {
                errors.push(Diagnostic::at_offset(path.clone(), "", 0, message, "error"));
                continue;
            }
        };
        if found.is_empty() {
            errors.push(Diagnostic::at_offset(
                path.clone(),
                "",
                0,
                format!("no {GROUP}/{VERSION} {KIND} objects"),
                "error",
            ));
        }
        for o in found {
            if let Some(first) = origin.get(&o.name) {
                errors.push(Diagnostic::at_offset(
                    path.clone(),
                    "",
                    0,
                    format!(
                        "Policy {:?} is also defined in {}; the cluster would hold one",
                        o.name,
                        first.display()
                    ),
                    "error",
                ));
                continue;
            }
            origin.insert(o.name.clone(), path.clone());
            objects.push(o);
        }
    }
    if !errors.is_empty() {
        return Err(LoadError::Invalid(errors));
    }
    let mut files = merge(Vec::new(), &objects)?;
    for f in &mut files {
        if let Some(name) = super::object_name(&f.relative) {
            if let Some(file) = origin.get(name) {
                f.path = locate(file, name);
            }
        }
    }
    Ok(files)
}

/// Where an object's text is, for messages: `FILE: Policy NAME, spec.content`.
fn locate(file: &Path, name: &str) -> PathBuf {
    PathBuf::from(format!("{}: Policy {name}, spec.content", file.display()))
}

/// The Policy objects of one YAML stream.
pub fn parse(text: &str) -> Result<Vec<PolicyObject>, String> {
    let docs = crate::yaml::documents::<Value>(text).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for doc in docs {
        let items = match doc.value.get("kind").and_then(Value::as_str) {
            Some("List") | Some("PolicyList") => doc
                .value
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            _ => vec![doc.value],
        };
        for item in items {
            if let Some(o) =
                policy_object(&item).map_err(|e| format!("document {}: {e}", doc.number))?
            {
                out.push(o);
            }
        }
    }
    Ok(out)
}

fn policy_object(v: &Value) -> Result<Option<PolicyObject>, String> {
    let api_version = v.get("apiVersion").and_then(Value::as_str);
    if v.get("kind").and_then(Value::as_str) != Some(KIND)
        || api_version != Some(&format!("{GROUP}/{VERSION}"))
    {
        return Ok(None);
    }
    let name = v
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or("a Policy without metadata.name")?;
    Ok(Some(PolicyObject {
        name: name.to_owned(),
        generation: 0,
        content: v
            .pointer("/spec/content")
            .and_then(Value::as_str)
            .map(str::to_owned),
    }))
}

/// A Policy object holding `content`, as YAML (`convert-rbac --format crd`).
pub fn policy_yaml(name: &str, content: &str, annotations: &[(&str, &str)]) -> String {
    let mut out =
        format!("apiVersion: {GROUP}/{VERSION}\nkind: {KIND}\nmetadata:\n  name: {name}\n");
    if !annotations.is_empty() {
        out.push_str("  annotations:\n");
        for (k, v) in annotations {
            out.push_str(&format!("    {k}: {}\n", json_string(v)));
        }
    }
    out.push_str("spec:\n  content: ");
    // A literal block reads best; a text it cannot carry exactly (leading
    // spaces on its first line, carriage returns, tabs at line starts) is
    // written as a quoted string, which YAML reads the same.
    let block_safe = !content.is_empty()
        && !content.starts_with([' ', '\n'])
        && !content.contains('\r')
        && content.lines().all(|l| !l.starts_with('\t'));
    if block_safe {
        out.push_str("|\n");
        for line in content.trim_end_matches('\n').lines() {
            if line.is_empty() {
                out.push('\n');
            } else {
                out.push_str("    ");
                out.push_str(line);
                out.push('\n');
            }
        }
    } else {
        out.push_str(&json_string(content));
        out.push('\n');
    }
    out
}

fn json_string(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// A DNS-1123 subdomain (what `metadata.name` must be) made from `stem`:
/// lower case, other characters as `-`, at most 253 long.
pub fn object_name_from(stem: &str) -> String {
    let mut name: String = stem
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(253);
    let name = name.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if name.is_empty() {
        "policy".into()
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_objects_read_back_with_the_same_text() {
        for text in [
            "permit (principal, action, resource);\n",
            "// a comment\n\n@id(\"x\")\nforbid (principal, action, resource);\n",
            "  leading spaces\n",
            "tab\n\tstart\n",
        ] {
            let yaml = policy_yaml("p", text, &[("cedar.k8s.aws/description", "from \"x\"")]);
            let objects = parse(&yaml).unwrap();
            assert_eq!(objects.len(), 1, "{yaml}");
            assert_eq!(objects[0].content.as_deref(), Some(text), "{yaml}");
        }
    }

    #[test]
    fn other_kinds_are_skipped_and_lists_are_read() {
        let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: cedar.k8s.aws/v1alpha1\n  kind: Policy\n  metadata: {name: a}\n  spec: {content: \"permit (principal, action, resource);\"}\n";
        let objects = parse(text).unwrap();
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].name, "a");
    }

    #[test]
    fn names_become_dns_subdomains() {
        assert_eq!(
            object_name_from("system:kube-controller-manager"),
            "system-kube-controller-manager"
        );
        assert_eq!(object_name_from("Ns_Foo"), "ns-foo");
        assert_eq!(object_name_from("::"), "policy");
        assert!(object_name_from(&"a".repeat(300)).len() <= 253);
    }
}
