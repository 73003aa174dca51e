//! What the schema says an admission object looks like: the attribute
//! types of each entity type, read once per schema, so that a JSON object
//! becomes the Cedar value its policies were validated against (a label map
//! becomes a set of `{key, value}` records, a number declared `String`
//! becomes its text, fields the schema does not know are left out).

use std::collections::{BTreeMap, HashMap};

use cedar_policy::SchemaFragment;
use serde_json::Value;

/// A map (`additionalProperties`) written as a set of records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapForm {
    /// `{key: String, value: String}` (`meta::v1::KeyValue`).
    KeyValue,
    /// `{key: String, value: Set<String>}` (`meta::v1::KeyValueStringSlice`).
    KeyValues,
}

/// A Cedar type, names resolved.
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    String,
    Long,
    Bool,
    /// `map` is set when the element is a key/value record, so a JSON
    /// object can stand for the set.
    Set {
        element: Box<Shape>,
        map: Option<MapForm>,
    },
    Record(BTreeMap<String, Shape>),
    /// A common type, by its fully qualified name.
    Common(String),
    /// An entity type, by its fully qualified name (`oldObject`).
    Entity(String),
    /// Something no JSON value converts to (extension types).
    Unsupported,
}

/// The attribute shapes of a schema's entity and common types.
#[derive(Debug, Default)]
pub struct Shapes {
    common: HashMap<String, Shape>,
    entities: HashMap<String, Shape>,
}

/// The primitive types, by their unqualified and `__cedar::` names.
fn primitive(name: &str) -> Option<Shape> {
    match name.strip_prefix("__cedar::").unwrap_or(name) {
        "String" => Some(Shape::String),
        "Long" => Some(Shape::Long),
        "Bool" | "Boolean" => Some(Shape::Bool),
        "ipaddr" | "decimal" | "datetime" | "duration" => Some(Shape::Unsupported),
        _ => None,
    }
}

fn qualify(namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        name.to_owned()
    } else {
        format!("{namespace}::{name}")
    }
}

/// Names declared by the fragment, to resolve references against.
struct Declared {
    common: std::collections::HashSet<String>,
    entities: std::collections::HashSet<String>,
}

impl Declared {
    /// Cedar's resolution order: the namespace's own common type, then its
    /// entity type, then the name as written, then the primitives.
    fn resolve(&self, namespace: &str, name: &str) -> Shape {
        let local = qualify(namespace, name);
        if self.common.contains(&local) {
            return Shape::Common(local);
        }
        if self.entities.contains(&local) {
            return Shape::Entity(local);
        }
        if self.common.contains(name) {
            return Shape::Common(name.to_owned());
        }
        if self.entities.contains(name) {
            return Shape::Entity(name.to_owned());
        }
        primitive(name).unwrap_or(Shape::Unsupported)
    }

    fn shape(&self, namespace: &str, t: &Value) -> Shape {
        match t["type"].as_str() {
            Some("EntityOrCommon") => self.resolve(namespace, t["name"].as_str().unwrap_or("")),
            Some("Entity") => {
                let name = t["name"].as_str().unwrap_or("");
                let local = qualify(namespace, name);
                Shape::Entity(if self.entities.contains(&local) {
                    local
                } else {
                    name.to_owned()
                })
            }
            Some("Set") => {
                let element = self.shape(namespace, &t["element"]);
                Shape::Set {
                    element: Box::new(element),
                    map: None,
                }
            }
            Some("Record") => Shape::Record(
                t["attributes"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), self.shape(namespace, v)))
                    .collect(),
            ),
            Some("Extension") => Shape::Unsupported,
            Some(other) => primitive(other).unwrap_or_else(|| self.resolve(namespace, other)),
            None => Shape::Unsupported,
        }
    }
}

impl Shapes {
    /// Reads the shapes of every entity and common type in schema text.
    /// A schema that does not parse has no shapes (the loader reports it).
    pub fn from_cedarschema(text: &str) -> Self {
        let Ok((fragment, _warnings)) = SchemaFragment::from_cedarschema_str(text) else {
            return Shapes::default();
        };
        let Ok(json) = fragment.to_json_value() else {
            return Shapes::default();
        };
        Self::from_json(&json)
    }

    /// Reads the shapes from a schema fragment's JSON form.
    pub fn from_json(json: &Value) -> Self {
        let Some(namespaces) = json.as_object() else {
            return Shapes::default();
        };
        let mut declared = Declared {
            common: Default::default(),
            entities: Default::default(),
        };
        for (ns, body) in namespaces {
            for name in body["commonTypes"].as_object().into_iter().flatten() {
                declared.common.insert(qualify(ns, name.0));
            }
            for name in body["entityTypes"].as_object().into_iter().flatten() {
                declared.entities.insert(qualify(ns, name.0));
            }
        }
        let mut shapes = Shapes::default();
        for (ns, body) in namespaces {
            for (name, t) in body["commonTypes"].as_object().into_iter().flatten() {
                shapes
                    .common
                    .insert(qualify(ns, name), declared.shape(ns, t));
            }
            for (name, t) in body["entityTypes"].as_object().into_iter().flatten() {
                let shape = match t.get("shape") {
                    Some(s) => declared.shape(ns, s),
                    None => Shape::Record(BTreeMap::new()),
                };
                shapes.entities.insert(qualify(ns, name), shape);
            }
        }
        // Mark the sets whose element is a key/value record.
        let snapshot = Shapes {
            common: shapes.common.clone(),
            entities: HashMap::new(),
        };
        for shape in shapes
            .common
            .values_mut()
            .chain(shapes.entities.values_mut())
        {
            snapshot.mark_maps(shape);
        }
        shapes
    }

    fn mark_maps(&self, shape: &mut Shape) {
        match shape {
            Shape::Set { element, map } => {
                *map = self.map_form(element);
                self.mark_maps(element);
            }
            Shape::Record(attrs) => {
                for a in attrs.values_mut() {
                    self.mark_maps(a);
                }
            }
            _ => {}
        }
    }

    /// `Some` when `element` is a record of exactly `key` and `value`.
    fn map_form(&self, element: &Shape) -> Option<MapForm> {
        let Shape::Record(attrs) = self.resolved(element)? else {
            return None;
        };
        if attrs.len() != 2 || self.resolved(attrs.get("key")?) != Some(&Shape::String) {
            return None;
        }
        match self.resolved(attrs.get("value")?)? {
            Shape::String => Some(MapForm::KeyValue),
            Shape::Set { element, .. } if self.resolved(element) == Some(&Shape::String) => {
                Some(MapForm::KeyValues)
            }
            _ => None,
        }
    }

    /// A shape with common-type names followed (a bounded number of times,
    /// as a schema could in principle name a cycle).
    pub fn resolved<'a>(&'a self, mut shape: &'a Shape) -> Option<&'a Shape> {
        for _ in 0..16 {
            match shape {
                Shape::Common(name) => shape = self.common.get(name)?,
                other => return Some(other),
            }
        }
        None
    }

    /// The attribute record of an entity type, when the schema declares it.
    pub fn entity(&self, type_name: &str) -> Option<&Shape> {
        self.entities.get(type_name)
    }

    /// A common type by its fully qualified name.
    pub fn common(&self, name: &str) -> Option<&Shape> {
        self.common.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"
        namespace meta::v1 {
            type KeyValue = {"key": String, "value": String};
            type KeyValueStringSlice = {"key": String, "value": Set<String>};
            type ObjectMeta = {"name": __cedar::String, "labels"?: Set<KeyValue>};
        }
        namespace core::v1 {
            type Spec = {"size"?: Long, "sel"?: Set<meta::v1::KeyValueStringSlice>, "tags"?: Set<String>};
            entity ConfigMap = {"metadata": meta::v1::ObjectMeta, "spec"?: Spec, "oldObject"?: ConfigMap};
        }
    "#;

    #[test]
    fn references_resolve_and_key_value_sets_are_maps() {
        let shapes = Shapes::from_cedarschema(SCHEMA);
        let Some(Shape::Record(cm)) = shapes.entity("core::v1::ConfigMap") else {
            panic!("ConfigMap has a record shape");
        };
        assert_eq!(cm["oldObject"], Shape::Entity("core::v1::ConfigMap".into()));
        assert_eq!(cm["metadata"], Shape::Common("meta::v1::ObjectMeta".into()));
        let Some(Shape::Record(meta)) = shapes.common("meta::v1::ObjectMeta") else {
            panic!("ObjectMeta is a record");
        };
        assert!(matches!(
            meta["labels"],
            Shape::Set {
                map: Some(MapForm::KeyValue),
                ..
            }
        ));
        let Some(Shape::Record(spec)) = shapes.common("core::v1::Spec") else {
            panic!("Spec is a record");
        };
        assert!(matches!(
            spec["sel"],
            Shape::Set {
                map: Some(MapForm::KeyValues),
                ..
            }
        ));
        assert!(matches!(spec["tags"], Shape::Set { map: None, .. }));
        assert_eq!(spec["size"], Shape::Long);
    }

    #[test]
    fn a_schema_that_does_not_parse_has_no_shapes() {
        let shapes = Shapes::from_cedarschema("namespace {");
        assert!(shapes.entity("core::v1::ConfigMap").is_none());
    }
}
