//! OpenAPI v3 schemas to Cedar types.
//!
//! Entity types are the kinds an admission operation names: an operation
//! whose `x-kubernetes-action` is `post` (create), `put` or `patch`
//! (update), `delete` or `deletecollection` (delete) or `connect`, through
//! its `x-kubernetes-group-version-kind`. That leaves out lists, watch
//! events, `meta/v1` kinds (`Status`, `DeleteOptions`) and read-only kinds
//! (`ComponentStatus`), and gives each operation its resource types.
//!
//! Object definitions reached through `$ref` become common types in the
//! namespace of their package; a cycle of references is cut by leaving
//! out the attribute that closes it (Cedar types cannot be recursive).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::{Map, Value};

use super::openapi::Document;
use super::{Error, Result};
use crate::admission::naming;

/// A Cedar type as the schema writes it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Type {
    String,
    Long,
    Bool,
    Set(Box<Type>),
    Record(Record),
    /// A common type or entity type, by its full name.
    Named(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Attribute {
    pub required: bool,
    pub ty: Type,
}

/// Attributes by name, sorted.
pub(super) type Record = BTreeMap<String, Attribute>;

/// The admission schema before it is written out.
#[derive(Debug, Default)]
pub(super) struct Schema {
    /// Common types by full name.
    pub common: BTreeMap<String, Record>,
    /// Entity types by full name.
    pub entities: BTreeMap<String, Record>,
    /// Resource types of each admission operation (`create`, `update`,
    /// `delete`, `connect`).
    pub actions: BTreeMap<&'static str, BTreeSet<String>>,
    pub warnings: Vec<String>,
}

/// The admission operations, as the actions of `k8s::admission` name them.
pub(super) const OPERATIONS: [&str; 4] = ["connect", "create", "delete", "update"];

/// The admission operation of an OpenAPI operation's `x-kubernetes-action`.
pub(super) fn operation(action: &str) -> Option<&'static str> {
    match action {
        "post" => Some("create"),
        "put" | "patch" => Some("update"),
        "delete" | "deletecollection" => Some("delete"),
        "connect" => Some("connect"),
        _ => None,
    }
}

/// The objects of `connect` operations: OpenAPI has no schema for them
/// (their fields are query parameters, and `command` and `ports` repeat),
/// so their shapes are written here, from the Go types of core/v1. Used
/// only when the documents name the kind and do not define it.
const CONNECT_OPTIONS: &str = r#"{
  "io.k8s.api.core.v1.NodeProxyOptions": {"type": "object", "properties": {
    "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "path": {"type": "string"}},
    "x-kubernetes-group-version-kind": [{"group": "", "version": "v1", "kind": "NodeProxyOptions"}]},
  "io.k8s.api.core.v1.PodAttachOptions": {"type": "object", "properties": {
    "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "container": {"type": "string"},
    "stderr": {"type": "boolean"}, "stdin": {"type": "boolean"}, "stdout": {"type": "boolean"},
    "tty": {"type": "boolean"}},
    "x-kubernetes-group-version-kind": [{"group": "", "version": "v1", "kind": "PodAttachOptions"}]},
  "io.k8s.api.core.v1.PodExecOptions": {"type": "object", "properties": {
    "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "container": {"type": "string"},
    "command": {"type": "array", "items": {"type": "string"}},
    "stderr": {"type": "boolean"}, "stdin": {"type": "boolean"}, "stdout": {"type": "boolean"},
    "tty": {"type": "boolean"}},
    "x-kubernetes-group-version-kind": [{"group": "", "version": "v1", "kind": "PodExecOptions"}]},
  "io.k8s.api.core.v1.PodPortForwardOptions": {"type": "object", "properties": {
    "apiVersion": {"type": "string"}, "kind": {"type": "string"},
    "ports": {"type": "array", "items": {"type": "integer"}}},
    "x-kubernetes-group-version-kind": [{"group": "", "version": "v1", "kind": "PodPortForwardOptions"}]},
  "io.k8s.api.core.v1.PodProxyOptions": {"type": "object", "properties": {
    "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "path": {"type": "string"}},
    "x-kubernetes-group-version-kind": [{"group": "", "version": "v1", "kind": "PodProxyOptions"}]},
  "io.k8s.api.core.v1.ServiceProxyOptions": {"type": "object", "properties": {
    "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "path": {"type": "string"}},
    "x-kubernetes-group-version-kind": [{"group": "", "version": "v1", "kind": "ServiceProxyOptions"}]}
}"#;
const CONNECT_OPTIONS_DOC: &str = "<built-in connect options>";

const META_PACKAGE: &str = "io.k8s.apimachinery.pkg.apis.meta.v1";
const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const REF_PREFIX: &str = "#/components/schemas/";

/// How deep schemas may nest (objects in objects, items, references)
/// before the rest is left out: deeper than any Kubernetes type, and
/// shallow enough that no input can exhaust the stack.
const MAX_DEPTH: usize = 96;

/// Names a common type may not take: Cedar's own type names.
const RESERVED_TYPES: &[&str] = &[
    "Bool",
    "Boolean",
    "Entity",
    "Extension",
    "Long",
    "Record",
    "Set",
    "String",
    "datetime",
    "decimal",
    "duration",
    "ipaddr",
];

fn meta_name(kind: &str) -> String {
    // `meta` is not an API group; the Go proof of concept's schema puts
    // these types in `meta::v1`, and so do we.
    naming::type_name("meta", "v1", kind)
}

/// `{key: String, value: String}`: one entry of a string map.
fn key_value() -> String {
    meta_name("KeyValue")
}

/// `{key: String, value: Set<String>}`: one entry of a map of string lists.
fn key_value_string_slice() -> String {
    meta_name("KeyValueStringSlice")
}

fn object_meta() -> String {
    meta_name("ObjectMeta")
}

/// A group/version/kind as the `x-kubernetes-group-version-kind`
/// extension gives it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Gvk {
    group: String,
    version: String,
    kind: String,
}

impl Gvk {
    fn read(v: &Value, doc: &str, at: &str) -> Result<Gvk> {
        let field = |key: &str| {
            v.get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| malformed(doc, at, format!("group-version-kind without a {key}")))
        };
        Ok(Gvk {
            group: field("group")?,
            version: field("version")?,
            kind: field("kind")?,
        })
    }

    fn type_name(&self) -> String {
        naming::type_name(&self.group, &self.version, &self.kind)
    }
}

fn malformed(doc: &str, at: &str, message: impl Into<String>) -> Error {
    Error::Malformed {
        doc: doc.to_owned(),
        at: at.to_owned(),
        message: message.into(),
    }
}

/// One named schema of `components.schemas` and the document it came from.
struct Definition<'a> {
    doc: &'a str,
    schema: &'a Value,
}

struct Converter<'a> {
    defs: BTreeMap<&'a str, Definition<'a>>,
    /// The common type each definition becomes when it is an object.
    common_names: HashMap<&'a str, String>,
    /// Finished conversions, by definition; `None` when left out.
    done: HashMap<&'a str, Option<Type>>,
    /// Definitions being converted: a reference to one of these closes a
    /// cycle.
    stack: Vec<&'a str>,
    depth: usize,
    out: Schema,
}

/// Converts the documents into the admission schema.
pub(super) fn convert(documents: &[Document]) -> Result<Schema> {
    let mut docs: Vec<&Document> = documents.iter().collect();
    docs.sort_by(|a, b| a.name.cmp(&b.name));
    let mut warnings = Vec::new();
    let connect_options: Value =
        serde_json::from_str(CONNECT_OPTIONS).map_err(|e| Error::Json {
            doc: CONNECT_OPTIONS_DOC.into(),
            message: e.to_string(),
        })?;

    // Definitions: the same name in several documents (ObjectMeta is in
    // all of them) is the same type; the first document's copy is used.
    let mut defs: BTreeMap<&str, Definition> = BTreeMap::new();
    for doc in &docs {
        let schemas = doc
            .value
            .get("components")
            .and_then(|c| c.get("schemas"))
            .and_then(Value::as_object)
            .ok_or_else(|| {
                malformed(&doc.name, "components.schemas", "missing or not an object")
            })?;
        for (name, schema) in schemas {
            defs.entry(name.as_str()).or_insert(Definition {
                doc: &doc.name,
                schema,
            });
        }
    }
    for (name, schema) in connect_options.as_object().into_iter().flatten() {
        defs.entry(name.as_str()).or_insert(Definition {
            doc: CONNECT_OPTIONS_DOC,
            schema,
        });
    }

    // What each admission operation can be applied to.
    let mut visible: BTreeMap<Gvk, BTreeSet<&'static str>> = BTreeMap::new();
    for doc in &docs {
        let Some(paths) = doc.value.get("paths") else {
            continue;
        };
        let paths = paths
            .as_object()
            .ok_or_else(|| malformed(&doc.name, "paths", "not an object"))?;
        for (path, item) in paths {
            for (method, op) in item.as_object().into_iter().flatten() {
                let Some(action) = op.get("x-kubernetes-action").and_then(Value::as_str) else {
                    continue;
                };
                let (Some(operation), Some(gvk)) =
                    (operation(action), op.get("x-kubernetes-group-version-kind"))
                else {
                    continue;
                };
                let at = format!("paths.{path}.{method}");
                visible
                    .entry(Gvk::read(gvk, &doc.name, &at)?)
                    .or_default()
                    .insert(operation);
            }
        }
    }

    // Kinds: each definition's group-version-kinds; a kind defined twice
    // keeps its first definition by name.
    let mut kinds: BTreeMap<Gvk, &str> = BTreeMap::new();
    // The group/versions of the kinds defined in each package (a
    // definition name without its last segment).
    let mut packages: HashMap<&str, BTreeSet<(String, String)>> = HashMap::new();
    for (name, def) in &defs {
        let Some(list) = def.schema.get("x-kubernetes-group-version-kind") else {
            continue;
        };
        let list = list.as_array().ok_or_else(|| {
            malformed(
                def.doc,
                name,
                "x-kubernetes-group-version-kind is not an array",
            )
        })?;
        for gvk in list {
            let gvk = Gvk::read(gvk, def.doc, name)?;
            if let Some((package, _)) = name.rsplit_once('.') {
                if package != META_PACKAGE {
                    packages
                        .entry(package)
                        .or_default()
                        .insert((gvk.group.clone(), gvk.version.clone()));
                }
            }
            match kinds.get(&gvk) {
                Some(first) => warnings.push(format!(
                    "{}/{} {} is defined by {first} and {name}: using {first}",
                    gvk.group, gvk.version, gvk.kind
                )),
                None => {
                    kinds.insert(gvk, name);
                }
            }
        }
    }

    // Entity types, by Cedar name.
    let mut entities: BTreeMap<String, (&str, &BTreeSet<&'static str>)> = BTreeMap::new();
    for (gvk, operations) in &visible {
        let Some(def) = kinds.get(gvk) else {
            warnings.push(format!(
                "{}/{} {} is named by an operation but has no schema: left out",
                gvk.group, gvk.version, gvk.kind
            ));
            continue;
        };
        let cedar = gvk.type_name();
        if let Some((other, _)) = entities.get(&cedar) {
            warnings.push(format!(
                "{def} and {other} both map to {cedar}: using {other}"
            ));
            continue;
        }
        entities.insert(cedar, (def, operations));
    }

    let common_names = common_names(&defs, &packages, &entities);
    let mut c = Converter {
        defs,
        common_names,
        done: HashMap::new(),
        stack: Vec::new(),
        depth: 0,
        out: Schema {
            warnings,
            ..Schema::default()
        },
    };
    c.object_meta()?;
    for (cedar, (def_name, operations)) in &entities {
        let record = c.entity(def_name, cedar)?;
        c.out.entities.insert(cedar.clone(), record);
        for op in *operations {
            c.out.actions.entry(op).or_default().insert(cedar.clone());
        }
    }
    Ok(c.out)
}

/// The common type name of each definition that may become one: in
/// `meta::v1` for apimachinery's meta types; else in the namespace of the
/// group/version whose kinds share the definition's package
/// (`com.example.stable.v1.WidgetSpec` beside kind `Widget` of
/// `stable.example.com/v1`); else, for `io.k8s.api.<group>.<version>`,
/// that group's. Others (no namespace to put them in, a Cedar type name,
/// the name of an entity type, a name already taken) are written inline
/// where they are used.
fn common_names<'a>(
    defs: &BTreeMap<&'a str, Definition<'a>>,
    packages: &HashMap<&str, BTreeSet<(String, String)>>,
    entities: &BTreeMap<String, (&str, &BTreeSet<&'static str>)>,
) -> HashMap<&'a str, String> {
    let mut taken: HashSet<String> = entities.keys().cloned().collect();
    taken.insert(key_value());
    taken.insert(key_value_string_slice());
    let mut names = HashMap::new();
    for name in defs.keys() {
        let Some((package, last)) = name.rsplit_once('.') else {
            continue;
        };
        if RESERVED_TYPES.contains(&last) {
            continue;
        }
        let cedar = if package == META_PACKAGE {
            Some(meta_name(last))
        } else if let Some((group, version)) = packages
            .get(package)
            .filter(|gvs| gvs.len() == 1)
            .and_then(|gvs| gvs.first())
        {
            Some(naming::type_name(group, version, last))
        } else if let Some((group, version)) = package
            .strip_prefix("io.k8s.api.")
            .and_then(|rest| rest.split_once('.'))
            .filter(|(_, version)| !version.contains('.'))
        {
            let group = if group == "core" { "" } else { group };
            Some(naming::type_name(group, version, last))
        } else {
            None
        };
        if let Some(cedar) = cedar {
            if taken.insert(cedar.clone()) {
                names.insert(*name, cedar);
            }
        }
    }
    names
}

impl<'a> Converter<'a> {
    /// `meta::v1::ObjectMeta`, which every entity type's `metadata` is:
    /// from its definition when a document has it, with `name` required
    /// (the runtime fills it from the request when the object has none).
    fn object_meta(&mut self) -> Result<()> {
        let name = object_meta();
        if let Some(doc) = self.defs.get(OBJECT_META).map(|d| d.doc) {
            self.reference(OBJECT_META, doc, OBJECT_META)?;
        }
        let record = self.out.common.entry(name).or_default();
        record
            .entry("name".into())
            .or_insert(Attribute {
                required: true,
                ty: Type::String,
            })
            .required = true;
        Ok(())
    }

    fn entity(&mut self, def_name: &'a str, cedar: &str) -> Result<Record> {
        let Some(&Definition { doc, schema }) = self.defs.get(def_name) else {
            return Ok(Record::new());
        };
        self.stack.push(def_name);
        let ty = self.convert(schema, doc, def_name)?;
        self.stack.pop();
        let mut record = match ty {
            Some(Type::Record(r)) => r,
            _ => Record::new(),
        };
        record.insert(
            "metadata".into(),
            Attribute {
                required: true,
                ty: Type::Named(object_meta()),
            },
        );
        if record.contains_key("oldObject") {
            self.out.warnings.push(format!(
                "{def_name}: its own oldObject attribute is replaced by the previous object"
            ));
        }
        record.insert(
            "oldObject".into(),
            Attribute {
                required: false,
                ty: Type::Named(cedar.to_owned()),
            },
        );
        Ok(record)
    }

    /// A `$ref` to a definition: its common type, or its type inline;
    /// `None` when it closes a cycle or is left out.
    fn reference(&mut self, name: &'a str, doc: &str, at: &str) -> Result<Option<Type>> {
        if let Some(done) = self.done.get(name) {
            return Ok(done.clone());
        }
        if self.stack.contains(&name) {
            return Ok(None);
        }
        let Some(def) = self.defs.get(name) else {
            return Err(malformed(
                doc,
                at,
                format!("$ref to {name}, which no document defines"),
            ));
        };
        let (def_doc, schema) = (def.doc, def.schema);
        self.stack.push(name);
        let ty = self.convert(schema, def_doc, name)?;
        self.stack.pop();
        let ty = match (ty, self.common_names.get(name)) {
            (Some(Type::Record(record)), Some(cedar)) => {
                let cedar = cedar.clone();
                self.out.common.insert(cedar.clone(), record);
                Some(Type::Named(cedar))
            }
            (ty, _) => ty,
        };
        self.done.insert(name, ty.clone());
        Ok(ty)
    }

    /// The Cedar type of a schema; `None` when it is left out: free-form
    /// objects, maps of anything but strings or string lists, empty
    /// objects, types Cedar has no counterpart for.
    fn convert(&mut self, schema: &'a Value, doc: &str, at: &str) -> Result<Option<Type>> {
        if self.depth >= MAX_DEPTH {
            self.out.warnings.push(format!(
                "{doc}: {at}: nested deeper than {MAX_DEPTH}: left out"
            ));
            return Ok(None);
        }
        self.depth += 1;
        let ty = self.convert_inner(schema, doc, at);
        self.depth -= 1;
        ty
    }

    fn convert_inner(&mut self, schema: &'a Value, doc: &str, at: &str) -> Result<Option<Type>> {
        let obj = match schema {
            Value::Object(o) => o,
            // `true`: anything.
            Value::Bool(_) => return Ok(None),
            _ => return Err(malformed(doc, at, "schema is not an object")),
        };
        if let Some(r) = obj.get("$ref") {
            let target = r
                .as_str()
                .and_then(|r| r.strip_prefix(REF_PREFIX))
                .ok_or_else(|| malformed(doc, at, format!("unsupported $ref {r}")))?;
            return self.reference(target, doc, at);
        }
        if obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
            return Ok(Some(Type::String));
        }
        let has_properties = obj.contains_key("properties");
        // OpenAPI v3 wraps a reference with a description or default in
        // `allOf: [{$ref}]`.
        if !has_properties {
            if let Some(all) = obj.get("allOf") {
                let all = all
                    .as_array()
                    .ok_or_else(|| malformed(doc, at, "allOf is not an array"))?;
                return match all.as_slice() {
                    [one] => self.convert(one, doc, at),
                    _ => Ok(None),
                };
            }
        }
        let ty = match obj.get("type") {
            None => None,
            Some(Value::String(t)) => Some(t.as_str()),
            Some(_) => return Err(malformed(doc, at, "type is not a string")),
        };
        Ok(match ty {
            Some("string") => Some(Type::String),
            Some("integer") => Some(Type::Long),
            Some("boolean") => Some(Type::Bool),
            // Cedar has no floating point: the runtime gives a JSON
            // number of such a field as its text.
            Some("number") => Some(Type::String),
            Some("array") => match obj.get("items") {
                Some(items) => self
                    .convert(items, doc, &format!("{at}[]"))?
                    .map(|t| Type::Set(Box::new(t))),
                None => None,
            },
            Some("object") => self.object(obj, doc, at)?,
            None if has_properties || obj.contains_key("additionalProperties") => {
                self.object(obj, doc, at)?
            }
            // Quantity (string or number), IntOrString (integer or string).
            None => scalar_union(obj).then_some(Type::String),
            Some(_) => None,
        })
    }

    fn object(&mut self, obj: &'a Map<String, Value>, doc: &str, at: &str) -> Result<Option<Type>> {
        if let Some(properties) = obj.get("properties") {
            let properties = properties
                .as_object()
                .ok_or_else(|| malformed(doc, at, "properties is not an object"))?;
            if !properties.is_empty() {
                let required = required(obj, doc, at)?;
                let mut record = Record::new();
                // In name order, so that where a cycle is cut does not
                // depend on the order of the document's keys.
                let mut properties: Vec<_> = properties.iter().collect();
                properties.sort_by_key(|(name, _)| *name);
                for (name, property) in properties {
                    let at = format!("{at}.{name}");
                    if let Some(ty) = self.convert(property, doc, &at)? {
                        let required = required.contains(name.as_str());
                        record.insert(name.clone(), Attribute { required, ty });
                    }
                }
                return Ok((!record.is_empty()).then_some(Type::Record(record)));
            }
        }
        // A map: a set of {key, value} records when its values are
        // strings or lists of strings.
        let Some(values @ Value::Object(_)) = obj.get("additionalProperties") else {
            return Ok(None);
        };
        let entry = match self.convert(values, doc, &format!("{at}.*"))? {
            Some(Type::String) => self.key_value(false),
            Some(Type::Set(inner)) if *inner == Type::String => self.key_value(true),
            _ => return Ok(None),
        };
        Ok(Some(Type::Set(Box::new(Type::Named(entry)))))
    }

    /// `meta::v1::KeyValue` (or `KeyValueStringSlice`), declared on first use.
    fn key_value(&mut self, slice: bool) -> String {
        let (name, value) = if slice {
            (key_value_string_slice(), Type::Set(Box::new(Type::String)))
        } else {
            (key_value(), Type::String)
        };
        self.out.common.entry(name.clone()).or_insert_with(|| {
            Record::from([
                (
                    "key".to_owned(),
                    Attribute {
                        required: true,
                        ty: Type::String,
                    },
                ),
                (
                    "value".to_owned(),
                    Attribute {
                        required: true,
                        ty: value,
                    },
                ),
            ])
        });
        name
    }
}

fn required<'v>(obj: &'v Map<String, Value>, doc: &str, at: &str) -> Result<HashSet<&'v str>> {
    match obj.get("required") {
        None => Ok(HashSet::new()),
        Some(Value::Array(names)) => names
            .iter()
            .map(|n| {
                n.as_str()
                    .ok_or_else(|| malformed(doc, at, "required holds a non-string"))
            })
            .collect(),
        Some(_) => Err(malformed(doc, at, "required is not an array")),
    }
}

/// A schema without a type that is one of several scalars (`oneOf` /
/// `anyOf` of strings, integers and numbers): written as a String.
fn scalar_union(obj: &Map<String, Value>) -> bool {
    ["oneOf", "anyOf"].iter().any(|key| {
        obj.get(*key).and_then(Value::as_array).is_some_and(|alts| {
            !alts.is_empty()
                && alts.iter().all(|a| {
                    matches!(
                        a.get("type").and_then(Value::as_str),
                        Some("string" | "integer" | "number")
                    )
                })
        })
    })
}
