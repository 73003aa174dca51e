//! The Cedar schema: the built-in one (the hand-written `k8s` schema of
//! authorization and the generated admission schema) or a `--schema` file,
//! with what the index and the entity builders derive from it once.

use std::collections::HashMap;
use std::path::Path;

use cedar_policy::{Entity, EntityUid, Schema};

use super::{Diagnostic, LoadError, Result};

/// The authorization part of the built-in schema: the `k8s` namespace.
pub const AUTHORIZATION_SCHEMA: &str = include_str!("../../schema/k8s.cedarschema");

/// The schema compiled into the binary.
pub const BUILTIN_SCHEMA: &str = AUTHORIZATION_SCHEMA;

/// The type of authorization actions; admission's are
/// `k8s::admission::Action`.
const AUTHORIZATION_ACTION: &str = "k8s::Action";
const ADMISSION_ACTION: &str = "k8s::admission::Action";

/// A parsed schema with what is derived from it once.
pub struct SchemaBundle {
    pub schema: Schema,
    /// The schema's `k8s::Action` entities that belong to action groups,
    /// by verb. Only these need to be in a request's entities.
    pub grouped_actions: HashMap<String, Entity>,
    /// The schema's `k8s::admission::Action` entities that belong to
    /// action groups (`"all"`), by operation in lowercase (`create`,
    /// `update`, `delete`, `connect`).
    pub admission_actions: HashMap<String, Entity>,
    /// Each action group's member actions, transitively.
    pub action_members: HashMap<EntityUid, Vec<EntityUid>>,
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
            if !any {
                continue;
            }
            // Both namespaces name actions "create", "update" and "delete":
            // each has its own map.
            let uid = action.uid();
            let by_id = match uid.type_name().to_string().as_str() {
                AUTHORIZATION_ACTION => &mut grouped_actions,
                ADMISSION_ACTION => &mut admission_actions,
                _ => continue,
            };
            by_id.insert(uid.id().unescaped().to_owned(), action.clone());
        }
        Ok(SchemaBundle {
            schema,
            grouped_actions,
            admission_actions,
            action_members,
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
