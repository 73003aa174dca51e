//! OpenAPI v3 documents as a kube-apiserver serves them at
//! `/openapi/v3/<path>`: reading a directory of saved ones, within bounds,
//! and the reduced form `--save` writes.

use std::io::Read;
use std::path::Path;

use serde_json::{Map, Value};

use super::{Error, Result};

/// At most this many documents are read (a cluster serves one per
/// group/version: about 25 without CRDs).
pub const MAX_DOCUMENTS: usize = 2000;
/// One document's size bound; `api/v1`, the largest built-in one, is
/// 1.6 MB as served.
pub const MAX_DOCUMENT_BYTES: u64 = 64 << 20;
/// All documents together.
pub const MAX_TOTAL_BYTES: u64 = 512 << 20;

/// One OpenAPI v3 document: where it came from (a file or an
/// `/openapi/v3` path), for errors, and its JSON.
#[derive(Debug, Clone)]
pub struct Document {
    pub name: String,
    pub value: Value,
}

/// Parses one document; it must be a JSON object with
/// `components.schemas`.
pub fn parse(name: &str, bytes: &[u8]) -> Result<Document> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| Error::Json {
        doc: name.to_owned(),
        message: e.to_string(),
    })?;
    let has_schemas = value
        .get("components")
        .and_then(|c| c.get("schemas"))
        .is_some_and(Value::is_object);
    if !has_schemas {
        return Err(Error::Malformed {
            doc: name.to_owned(),
            at: "components.schemas".into(),
            message: "missing or not an object: not an OpenAPI v3 document".into(),
        });
    }
    Ok(Document {
        name: name.to_owned(),
        value,
    })
}

/// Reads every `*.json` file of `dir` (not recursively), in name order.
pub fn read_dir(dir: &Path) -> Result<Vec<Document>> {
    let io = |path: &Path, e: std::io::Error| Error::Io {
        path: path.to_owned(),
        message: e.to_string(),
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let path = entry.map_err(|e| io(dir, e))?.path();
        if path.extension().is_some_and(|e| e == "json") && path.is_file() {
            paths.push(path);
            if paths.len() > MAX_DOCUMENTS {
                return Err(Error::TooMany {
                    limit: MAX_DOCUMENTS,
                });
            }
        }
    }
    if paths.is_empty() {
        return Err(Error::Empty(dir.to_owned()));
    }
    paths.sort();
    let mut total = 0u64;
    let mut documents = Vec::with_capacity(paths.len());
    for path in paths {
        let name = path.display().to_string();
        let file = std::fs::File::open(&path).map_err(|e| io(&path, e))?;
        // Read one byte past the limit to tell "exactly the limit" from
        // "over it" without trusting the file's reported length.
        let mut bytes = Vec::new();
        file.take(MAX_DOCUMENT_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| io(&path, e))?;
        let len = bytes.len() as u64;
        if len > MAX_DOCUMENT_BYTES {
            return Err(Error::TooLarge {
                doc: name,
                limit: MAX_DOCUMENT_BYTES,
            });
        }
        total += len;
        if total > MAX_TOTAL_BYTES {
            return Err(Error::TooLarge {
                doc: dir.display().to_string(),
                limit: MAX_TOTAL_BYTES,
            });
        }
        documents.push(parse(&name, &bytes)?);
    }
    Ok(documents)
}

/// The file name `--save` gives the document of an `/openapi/v3` path:
/// `api/v1` is `api_v1.json`, `apis/apps/v1` is `apis_apps_v1.json`.
pub fn file_name(path: &str) -> String {
    let safe: String = path
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.json")
}

/// What the generator reads of a document, and nothing else: schemas
/// without descriptions or patch/list hints, and of the paths only the
/// admission operations' `x-kubernetes-action` and
/// `x-kubernetes-group-version-kind`.
/// `--save` writes this form so saved documents are small enough to keep
/// in a repository (the built-in 1.36 set: 6 MB served, about 0.5 MB so).
pub fn reduced(doc: &Value) -> Value {
    let mut paths = Map::new();
    if let Some(items) = doc.get("paths").and_then(Value::as_object) {
        for (path, item) in items {
            let mut ops = Map::new();
            for (method, op) in item.as_object().into_iter().flatten() {
                let Some(action) = op.get("x-kubernetes-action") else {
                    continue;
                };
                if action
                    .as_str()
                    .and_then(super::convert::operation)
                    .is_none()
                {
                    continue;
                }
                let mut kept = Map::new();
                kept.insert("x-kubernetes-action".into(), action.clone());
                if let Some(gvk) = op.get("x-kubernetes-group-version-kind") {
                    kept.insert("x-kubernetes-group-version-kind".into(), gvk.clone());
                }
                ops.insert(method.clone(), Value::Object(kept));
            }
            if !ops.is_empty() {
                paths.insert(path.clone(), Value::Object(ops));
            }
        }
    }
    let schemas = doc
        .get("components")
        .and_then(|c| c.get("schemas"))
        .and_then(Value::as_object)
        .map(|defs| {
            defs.iter()
                .map(|(name, d)| (name.clone(), strip(d)))
                .collect()
        })
        .unwrap_or_default();
    let mut out = Map::new();
    if let Some(version) = doc.get("openapi") {
        out.insert("openapi".into(), version.clone());
    }
    out.insert("paths".into(), Value::Object(paths));
    out.insert(
        "components".into(),
        Value::Object(Map::from_iter([(
            "schemas".to_owned(),
            Value::Object(schemas),
        )])),
    );
    Value::Object(out)
}

/// Keys of a schema object that never change the Cedar type.
const IGNORED: &[&str] = &[
    "default",
    "example",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-list-type",
    "x-kubernetes-map-type",
    "x-kubernetes-patch-merge-key",
    "x-kubernetes-patch-strategy",
    "x-kubernetes-unions",
    "x-kubernetes-validations",
];

/// A schema without its annotations. The keys of `properties` are
/// property names (`default` and `description` are real ones), kept all.
fn strip(schema: &Value) -> Value {
    match schema {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| k.as_str() != "description" && !IGNORED.contains(&k.as_str()))
                .map(|(k, v)| {
                    let v = match (k.as_str(), v) {
                        ("properties", Value::Object(props)) => Value::Object(
                            props
                                .iter()
                                .map(|(name, p)| (name.clone(), strip(p)))
                                .collect(),
                        ),
                        _ => strip(v),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_document_needs_components_schemas() {
        assert!(parse("x.json", br#"{"components": {"schemas": {}}}"#).is_ok());
        let e = parse("x.json", br#"{"paths": {}}"#).unwrap_err();
        assert!(
            e.to_string().starts_with("x.json: components.schemas"),
            "{e}"
        );
        let e = parse("y.json", b"{not json").unwrap_err();
        assert!(e.to_string().starts_with("y.json: not JSON"), "{e}");
        assert!(parse("z.json", b"[]").is_err());
    }

    #[test]
    fn reduced_keeps_what_the_generator_reads() {
        let doc = json!({
            "openapi": "3.0.0",
            "paths": {
                "/api/v1/pods": {
                    "parameters": [{"name": "pretty"}],
                    "post": {"x-kubernetes-action": "post", "description": "create",
                             "x-kubernetes-group-version-kind": {"group": "", "version": "v1", "kind": "Pod"}},
                },
                "/version": {"get": {"description": "no action"}},
            },
            "components": {"schemas": {"P": {
                "description": "a pod",
                "properties": {"description": {"type": "string", "description": "d"},
                               "default": {"type": "string", "default": "x"}},
                "x-kubernetes-list-type": "atomic",
            }}},
        });
        assert_eq!(
            reduced(&doc),
            json!({
                "openapi": "3.0.0",
                "paths": {"/api/v1/pods": {"post": {"x-kubernetes-action": "post",
                    "x-kubernetes-group-version-kind": {"group": "", "version": "v1", "kind": "Pod"}}}},
                "components": {"schemas": {"P": {"properties": {"description": {"type": "string"},
                                                                "default": {"type": "string"}}}}},
            })
        );
    }

    #[test]
    fn saved_file_names_follow_the_path() {
        assert_eq!(file_name("api/v1"), "api_v1.json");
        assert_eq!(
            file_name("apis/stable.example.com/v1"),
            "apis_stable.example.com_v1.json"
        );
        assert_eq!(file_name("../x"), ".._x.json");
    }

    #[test]
    fn a_directory_is_read_in_name_order_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let empty = read_dir(dir.path()).unwrap_err();
        assert!(matches!(empty, Error::Empty(_)), "{empty}");
        let doc = br#"{"components": {"schemas": {}}}"#;
        std::fs::write(dir.path().join("b.json"), doc).unwrap();
        std::fs::write(dir.path().join("a.json"), doc).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let docs = read_dir(dir.path()).unwrap();
        let names: Vec<_> = docs
            .iter()
            .map(|d| Path::new(&d.name).file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["a.json", "b.json"]);
        std::fs::write(dir.path().join("c.json"), "{").unwrap();
        let e = read_dir(dir.path()).unwrap_err();
        assert!(e.to_string().contains("c.json: not JSON"), "{e}");
    }
}
