//! The Cedar schema: the built-in `k8s` schema or a `--schema` file, with
//! what the index and the entity builder derive from it once.

use std::collections::HashMap;
use std::path::Path;

use cedar_policy::{Entity, EntityUid, Schema};

use super::{Diagnostic, LoadError, Result};
use crate::admission::{self, Shapes};

/// The schema compiled into the binary.
pub const BUILTIN_SCHEMA: &str = concat!(
    include_str!("../../schema/k8s.cedarschema"),
    "\n",
    include_str!("../../schema/admission.cedarschema")
);

/// A parsed schema with what is derived from it once.
pub struct SchemaBundle {
    pub schema: Schema,
    /// The schema's action entities that belong to action groups, by verb.
    /// Only these need to be in a request's entities.
    pub grouped_actions: HashMap<String, Entity>,
    /// Each action group's member actions, transitively.
    pub action_members: HashMap<EntityUid, Vec<EntityUid>>,
    /// The schema's `k8s::admission::Action` entities, by operation
    /// (`create`, ...), for admission requests' entities.
    pub admission_actions: HashMap<String, Entity>,
    /// The attribute shapes of entity and common types, for converting
    /// admission objects.
    pub shapes: Shapes,
    /// The same schema with only the `k8s::Action` actions, when it has
    /// others: the authorization policies validate against it (see
    /// `compile`), since their request environments are the same.
    pub authorization_schema: Option<Schema>,
}

/// The schema without the actions of namespaces other than `k8s`, or
/// `None` when it has none (or cannot be rebuilt).
fn authorization_only(text: &str) -> Option<Schema> {
    let (fragment, _) = cedar_policy::SchemaFragment::from_cedarschema_str(text).ok()?;
    let mut json = fragment.to_json_value().ok()?;
    let mut dropped = false;
    for (ns, body) in json.as_object_mut()? {
        if ns == "k8s" {
            continue;
        }
        if let Some(actions) = body.get_mut("actions").and_then(|a| a.as_object_mut()) {
            dropped |= !actions.is_empty();
            actions.clear();
        }
    }
    if !dropped {
        return None;
    }
    Schema::from_json_value(json).ok()
}

impl SchemaBundle {
    /// Parses Cedar schema text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let err = |message: String| LoadError::Schema {
            path: path.to_owned(),
            message,
        };
        let (schema, _warnings) =
            Schema::from_cedarschema_str(text).map_err(|e| err(Diagnostic::message_of(&e)))?;
        let actions = schema.action_entities().map_err(|e| err(e.to_string()))?;
        let mut grouped_actions = HashMap::new();
        let mut admission_actions = HashMap::new();
        let mut action_members: HashMap<EntityUid, Vec<EntityUid>> = HashMap::new();
        for action in actions.iter() {
            let Some(ancestors) = actions.ancestors(&action.uid()) else {
                continue;
            };
            let mut any = false;
            for group in ancestors {
                any = true;
                action_members
                    .entry(group.clone())
                    .or_default()
                    .push(action.uid());
            }
            let id = action.uid().id().unescaped().to_owned();
            if action.uid().type_name().to_string() == admission::ACTION_TYPE {
                admission_actions.insert(id, action.clone());
            } else if any {
                grouped_actions.insert(id, action.clone());
            }
        }
        Ok(SchemaBundle {
            schema,
            grouped_actions,
            action_members,
            admission_actions,
            shapes: Shapes::from_cedarschema(text),
            authorization_schema: authorization_only(text),
        })
    }

    /// The built-in schema, or the file given with `--schema`.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        match path {
            None => Self::parse(BUILTIN_SCHEMA, Path::new("<built-in schema>")),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| LoadError::Io {
                    path: p.to_owned(),
                    source,
                })?;
                Self::parse(&text, p)
            }
        }
    }
}
