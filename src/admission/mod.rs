//! Admission: an `admission.k8s.io/v1` AdmissionReview decided by the same
//! policies as authorization (docs/policy-model.md, "Admission").
//!
//! - The principal is `request.userInfo`, mapped exactly as a
//!   SubjectAccessReview's user ([`crate::entities::principal`]).
//! - The action is `k8s::admission::Action::"create"`, `"update"`,
//!   `"delete"` or `"connect"` (all in `"all"`).
//! - The resource is the object as an entity of its kind's type
//!   ([`naming::type_name`]), attributes converted by the schema's shape
//!   ([`object`]); on update its `oldObject` is the previous object, and on
//!   delete the object evaluated is the one being deleted.
//! - Admitted unless a `forbid` is satisfied or errors; permits do not
//!   matter ([`crate::decision::Decision::admission`]).

pub mod naming;
pub mod object;
pub mod schemagen;
pub mod shapes;

use std::collections::{BTreeMap, HashSet};

use cedar_policy::{Context, Entities, Entity, EntityId, EntityTypeName, EntityUid};
use kube_core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube_core::DynamicObject;
use serde_json::Value;

use crate::entities::{self, RequestEntities};
use crate::sar::limits;

pub use object::ObjectError;
pub use shapes::Shapes;

/// The namespace of the admission actions.
pub const ACTION_TYPE: &str = "k8s::admission::Action";

/// Why a body is not an AdmissionReview we can answer.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// Not JSON, or not of the AdmissionReview shape; names the field.
    #[error("malformed AdmissionReview: {0}")]
    Json(String),
    #[error("unsupported apiVersion {0:?}: expected admission.k8s.io/v1")]
    ApiVersion(String),
    #[error("unsupported kind {0:?}: expected AdmissionReview")]
    Kind(String),
    #[error("malformed AdmissionReview: request is missing")]
    MissingRequest,
    #[error("malformed {field}: {count} entries, more than the {limit} a review may carry")]
    TooMany {
        field: &'static str,
        count: usize,
        limit: usize,
    },
    #[error("malformed request.{0}: expected a JSON object")]
    NotAnObject(&'static str),
}

/// An AdmissionReview's request, normalised like a SubjectAccessReview's
/// user (groups and extra values sorted, without duplicates).
#[derive(Debug, Clone)]
pub struct AdmissionInput {
    pub uid: String,
    pub operation: Operation,
    /// The object's group, version and kind, as sent.
    pub group: String,
    pub version: String,
    pub kind: String,
    /// The resource (`configmaps`) and subresource, for logs.
    pub resource: String,
    pub subresource: String,
    pub name: String,
    pub namespace: String,
    pub user: String,
    pub groups: Vec<String>,
    pub user_uid: String,
    pub extra: BTreeMap<String, Vec<String>>,
    pub object: Option<serde_json::Map<String, Value>>,
    pub old_object: Option<serde_json::Map<String, Value>>,
    /// The answer's envelope (apiVersion, kind, uid).
    template: AdmissionResponse,
}

/// The lowercase operation: the action's id and the metrics label.
pub fn operation_name(op: &Operation) -> &'static str {
    match op {
        Operation::Create => "create",
        Operation::Update => "update",
        Operation::Delete => "delete",
        Operation::Connect => "connect",
    }
}

fn sorted_set(mut v: Vec<String>) -> Vec<String> {
    v.sort_unstable();
    v.dedup();
    v
}

fn at_most(field: &'static str, count: usize, limit: usize) -> Result<(), AdmissionError> {
    if count > limit {
        return Err(AdmissionError::TooMany {
            field,
            count,
            limit,
        });
    }
    Ok(())
}

/// The object as one JSON map: its type fields, metadata and the rest,
/// with `metadata.name` and `metadata.namespace` filled from the request
/// when the object lacks them (connect options, for one), so every
/// object has the name the schema promises.
fn object_map(
    obj: DynamicObject,
    field: &'static str,
    name: &str,
    namespace: &str,
) -> Result<serde_json::Map<String, Value>, AdmissionError> {
    let mut map = match obj.data {
        Value::Object(m) => m,
        Value::Null => serde_json::Map::new(),
        _ => return Err(AdmissionError::NotAnObject(field)),
    };
    if let Some(t) = obj.types {
        map.insert("apiVersion".into(), Value::String(t.api_version));
        map.insert("kind".into(), Value::String(t.kind));
    }
    let mut meta = obj.metadata;
    if meta.name.as_deref().is_none_or(str::is_empty) {
        meta.name = Some(name.to_owned());
    }
    if meta.namespace.as_deref().is_none_or(str::is_empty) && !namespace.is_empty() {
        meta.namespace = Some(namespace.to_owned());
    }
    let meta = serde_json::to_value(meta).map_err(|e| AdmissionError::Json(e.to_string()))?;
    map.insert("metadata".into(), meta);
    Ok(map)
}

/// Parses an AdmissionReview body.
pub fn parse_review(body: &[u8]) -> Result<AdmissionInput, AdmissionError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let review: AdmissionReview<DynamicObject> = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| {
            let message = e.inner().to_string();
            let message = match message.rfind(" at line ") {
                Some(i) => message[..i].to_owned(),
                None => message,
            };
            match e.path().to_string().as_str() {
                "." => AdmissionError::Json(message),
                p => AdmissionError::Json(format!("{p}: {message}")),
            }
        })?;
    if review.types.api_version != "admission.k8s.io/v1" {
        return Err(AdmissionError::ApiVersion(review.types.api_version));
    }
    if review.types.kind != "AdmissionReview" {
        return Err(AdmissionError::Kind(review.types.kind));
    }
    let req: AdmissionRequest<DynamicObject> = review
        .try_into()
        .map_err(|_| AdmissionError::MissingRequest)?;
    let template = AdmissionResponse::from(&req);
    let user = req.user_info;
    let groups = user.groups.unwrap_or_default();
    at_most("request.userInfo.groups", groups.len(), limits::GROUPS)?;
    let extra = user.extra.unwrap_or_default();
    at_most("request.userInfo.extra", extra.len(), limits::EXTRA_KEYS)?;
    at_most(
        "request.userInfo.extra values",
        extra.values().map(Vec::len).sum(),
        limits::EXTRA_VALUES,
    )?;
    let namespace = req.namespace.unwrap_or_default();
    let object = req
        .object
        .map(|o| object_map(o, "object", &req.name, &namespace))
        .transpose()?;
    let old_object = req
        .old_object
        .map(|o| object_map(o, "oldObject", &req.name, &namespace))
        .transpose()?;
    Ok(AdmissionInput {
        uid: req.uid,
        operation: req.operation,
        group: req.kind.group,
        version: req.kind.version,
        kind: req.kind.kind,
        resource: req.resource.resource,
        subresource: req.sub_resource.unwrap_or_default(),
        name: req.name,
        namespace,
        user: user.username.unwrap_or_default(),
        groups: sorted_set(groups),
        user_uid: user.uid.unwrap_or_default(),
        extra: extra.into_iter().map(|(k, v)| (k, sorted_set(v))).collect(),
        object,
        old_object,
        template,
    })
}

impl AdmissionInput {
    /// The Cedar type of the object (`core::v1::ConfigMap`).
    pub fn type_name(&self) -> String {
        naming::type_name(&self.group, &self.version, &self.kind)
    }

    /// The object's entity id: `namespace/name`, or `name` when cluster
    /// scoped.
    pub fn object_id(&self) -> String {
        if self.namespace.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}", self.namespace, self.name)
        }
    }

    /// `namespace/name` of the resource with its subresource, for logs.
    pub fn path(&self) -> String {
        let mut p = format!("{}/{}", self.resource, self.object_id());
        if !self.subresource.is_empty() {
            p.push('/');
            p.push_str(&self.subresource);
        }
        p
    }

    /// The object evaluated: the new one, or on delete the one deleted.
    fn evaluated(&self) -> Option<&serde_json::Map<String, Value>> {
        match self.operation {
            Operation::Delete => self.old_object.as_ref().or(self.object.as_ref()),
            _ => self.object.as_ref().or(self.old_object.as_ref()),
        }
    }

    /// The previous object, on update only.
    fn previous(&self) -> Option<&serde_json::Map<String, Value>> {
        match self.operation {
            Operation::Update => self.old_object.as_ref(),
            _ => None,
        }
    }

    /// The response AdmissionReview, as JSON bytes: admitted, or refused
    /// with `message` (403, as the apiserver shows it to the user).
    pub fn response_json(&self, refused: Option<&str>) -> Vec<u8> {
        let mut response = self.template.clone();
        if let Some(message) = refused {
            response = response.deny(message);
            response.result.code = 403;
            response.result.reason = "Forbidden".to_owned();
        }
        // A struct of strings, maps and numbers always serialises.
        serde_json::to_vec(&response.into_review()).unwrap_or_default()
    }
}

fn uid(type_name: &str, id: &str) -> Result<EntityUid, BuildError> {
    // Names from `naming` are identifiers by construction; kept an error
    // all the same.
    let t: EntityTypeName = type_name
        .parse()
        .map_err(|e| entities::EntityError::Cedar(format!("type {type_name:?}: {e}")))?;
    Ok(EntityUid::from_type_name_and_id(t, EntityId::new(id)))
}

/// The action of an operation.
pub fn action_uid(op: &Operation) -> EntityUid {
    let t: EntityTypeName = ACTION_TYPE.parse().expect("static action type parses");
    EntityUid::from_type_name_and_id(t, EntityId::new(operation_name(op)))
}

/// Why entities could not be built for a review.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Object(#[from] ObjectError),
    #[error(transparent)]
    Entities(#[from] entities::EntityError),
}

fn with_principal(
    input: &AdmissionInput,
    principal: entities::Principal,
) -> Result<(RequestEntities, Vec<Entity>), BuildError> {
    Ok((
        RequestEntities {
            principal: principal.uid,
            action: action_uid(&input.operation),
            resource: uid(&input.type_name(), &input.object_id())?,
            principal_groups: principal.groups,
            resource_kind: None,
            entities: Entities::empty(),
            context: Context::empty(),
        },
        principal.entities,
    ))
}

fn principal_of(input: &AdmissionInput) -> Result<entities::Principal, BuildError> {
    Ok(entities::principal(
        &input.user,
        &input.groups,
        &input.user_uid,
        &input.extra,
    )?)
}

/// The principal, action and resource of a review, without any entity:
/// enough for the index to say whether any policy can apply.
pub fn scope(input: &AdmissionInput) -> Result<RequestEntities, BuildError> {
    Ok(with_principal(input, principal_of(input)?)?.0)
}

fn entity(
    uid: EntityUid,
    attrs: std::collections::HashMap<String, cedar_policy::RestrictedExpression>,
) -> Result<Entity, BuildError> {
    Entity::new(uid, attrs, HashSet::new())
        .map_err(|e| entities::EntityError::Cedar(e.to_string()).into())
}

/// Every entity of a review: the principal and its groups, the object (and
/// on update the previous one, as its `oldObject`), and the action.
pub fn build(
    input: &AdmissionInput,
    shapes: &Shapes,
    action_entity: Option<&Entity>,
) -> Result<RequestEntities, BuildError> {
    let (mut r, mut all) = with_principal(input, principal_of(input)?)?;
    let type_name = input.type_name();
    let mut budget = object::Budget::default();
    let mut attrs = match input.evaluated() {
        Some(obj) => object::attributes(shapes, &type_name, obj, &mut budget)?,
        None => Default::default(),
    };
    if let Some(old) = input.previous() {
        let old_uid = uid(&type_name, &format!("{}#old", input.object_id()))?;
        let old_attrs = object::attributes(shapes, &type_name, old, &mut budget)?;
        all.push(entity(old_uid.clone(), old_attrs)?);
        attrs.insert(
            "oldObject".to_owned(),
            cedar_policy::RestrictedExpression::new_entity_uid(old_uid),
        );
    }
    all.push(entity(r.resource.clone(), attrs)?);
    if let Some(action) = action_entity {
        all.push(action.clone());
    }
    r.entities = entities::closed_entities(&all)?;
    Ok(r)
}
