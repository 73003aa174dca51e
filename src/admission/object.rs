//! A Kubernetes object (JSON) as Cedar attribute values, guided by the
//! schema's shape for its kind.
//!
//! - A value of the declared type converts; one of another type is left
//!   out (its attribute is absent, so `has` is false and a policy that
//!   reads it without `has` errors, which denies for a forbid). A JSON
//!   number where the schema says `String` (int-or-string, quantities)
//!   becomes its text.
//! - A JSON object where the schema says a set of `{key, value}` records
//!   (labels, annotations, data) becomes that set.
//! - Fields the schema does not declare are left out. A kind the schema
//!   does not know (a CRD not generated into it) converts without a shape:
//!   objects become records, arrays sets, numbers longs (or text when not
//!   integral), except that `metadata` still follows `meta::v1::ObjectMeta`.
//! - Conversion is bounded: at most [`MAX_DEPTH`] levels and
//!   [`MAX_VALUES`] values per request; beyond them the object cannot be
//!   evaluated and the request is refused (a forbid might have applied).

use std::collections::HashMap;

use cedar_policy::RestrictedExpression;
use serde_json::Value;

use super::shapes::{MapForm, Shape, Shapes};

/// Deepest nesting converted (Kubernetes objects are far shallower; the
/// JSON parser itself stops at 128).
pub const MAX_DEPTH: usize = 48;
/// Most values converted for one request, both objects together.
pub const MAX_VALUES: usize = 200_000;

/// Why an object could not be converted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ObjectError {
    #[error("object nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("object holds more than {MAX_VALUES} values")]
    TooLarge,
}

/// The conversion's running budget.
pub struct Budget {
    values: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget { values: MAX_VALUES }
    }
}

impl Budget {
    fn spend(&mut self) -> Result<(), ObjectError> {
        self.values = self.values.checked_sub(1).ok_or(ObjectError::TooLarge)?;
        Ok(())
    }
}

type Converted = Result<Option<RestrictedExpression>, ObjectError>;

struct Converter<'a> {
    shapes: &'a Shapes,
    budget: &'a mut Budget,
}

fn number_text(n: &serde_json::Number) -> RestrictedExpression {
    RestrictedExpression::new_string(n.to_string())
}

fn record(fields: Vec<(String, RestrictedExpression)>) -> Option<RestrictedExpression> {
    // Keys are unique (they come from one JSON object or one shape), so
    // this cannot fail; a failure leaves the value out all the same.
    RestrictedExpression::new_record(fields).ok()
}

impl Converter<'_> {
    fn value(&mut self, v: &Value, shape: &Shape, depth: usize) -> Converted {
        if depth > MAX_DEPTH {
            return Err(ObjectError::TooDeep);
        }
        self.budget.spend()?;
        let Some(shape) = self.shapes.resolved(shape) else {
            return Ok(None);
        };
        Ok(match (shape, v) {
            (Shape::String, Value::String(s)) => Some(RestrictedExpression::new_string(s.clone())),
            (Shape::String, Value::Number(n)) => Some(number_text(n)),
            (Shape::Long, Value::Number(n)) => n.as_i64().map(RestrictedExpression::new_long),
            (Shape::Bool, Value::Bool(b)) => Some(RestrictedExpression::new_bool(*b)),
            (Shape::Set { element, .. }, Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match self.value(item, element, depth + 1)? {
                        Some(x) => out.push(x),
                        // One element of the wrong type: the set as a whole
                        // is not what the schema says, so it is left out.
                        None => return Ok(None),
                    }
                }
                Some(RestrictedExpression::new_set(out))
            }
            (
                Shape::Set {
                    map: Some(form), ..
                },
                Value::Object(entries),
            ) => self.map(entries, *form, depth + 1)?,
            (Shape::Record(attrs), Value::Object(entries)) => {
                let mut fields = Vec::with_capacity(attrs.len().min(entries.len()));
                for (key, attr_shape) in attrs {
                    let Some(v) = entries.get(key) else { continue };
                    if let Some(x) = self.value(v, attr_shape, depth + 1)? {
                        fields.push((key.clone(), x));
                    }
                }
                record(fields)
            }
            _ => None,
        })
    }

    fn map(
        &mut self,
        entries: &serde_json::Map<String, Value>,
        form: MapForm,
        depth: usize,
    ) -> Converted {
        let mut out = Vec::with_capacity(entries.len());
        for (key, v) in entries {
            self.budget.spend()?;
            let value = match (form, v) {
                (MapForm::KeyValue, Value::String(s)) => {
                    RestrictedExpression::new_string(s.clone())
                }
                (MapForm::KeyValue, Value::Number(n)) => number_text(n),
                (MapForm::KeyValues, Value::Array(items)) => {
                    let mut values = Vec::with_capacity(items.len());
                    for item in items {
                        match self.value(item, &Shape::String, depth + 1)? {
                            Some(x) => values.push(x),
                            None => return Ok(None),
                        }
                    }
                    RestrictedExpression::new_set(values)
                }
                _ => return Ok(None),
            };
            let key = RestrictedExpression::new_string(key.clone());
            match record(vec![("key".to_owned(), key), ("value".to_owned(), value)]) {
                Some(r) => out.push(r),
                None => return Ok(None),
            }
        }
        Ok(Some(RestrictedExpression::new_set(out)))
    }

    /// A value without a shape: the JSON structure as it is.
    fn untyped(&mut self, v: &Value, depth: usize) -> Converted {
        if depth > MAX_DEPTH {
            return Err(ObjectError::TooDeep);
        }
        self.budget.spend()?;
        Ok(match v {
            Value::Null => None,
            Value::Bool(b) => Some(RestrictedExpression::new_bool(*b)),
            Value::Number(n) => Some(match n.as_i64() {
                Some(i) => RestrictedExpression::new_long(i),
                None => number_text(n),
            }),
            Value::String(s) => Some(RestrictedExpression::new_string(s.clone())),
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    if let Some(x) = self.untyped(item, depth + 1)? {
                        out.push(x);
                    }
                }
                Some(RestrictedExpression::new_set(out))
            }
            Value::Object(entries) => {
                let mut fields = Vec::with_capacity(entries.len());
                for (key, v) in entries {
                    if let Some(x) = self.untyped(v, depth + 1)? {
                        fields.push((key.clone(), x));
                    }
                }
                record(fields)
            }
        })
    }
}

/// The name of the object metadata type in generated schemas.
pub const OBJECT_META: &str = "meta::v1::ObjectMeta";

/// The attributes of an object entity of type `type_name`. `oldObject`
/// is never taken from the object itself (the caller sets it), so a
/// client cannot write its own "previous version".
pub fn attributes(
    shapes: &Shapes,
    type_name: &str,
    object: &serde_json::Map<String, Value>,
    budget: &mut Budget,
) -> Result<HashMap<String, RestrictedExpression>, ObjectError> {
    let mut c = Converter { shapes, budget };
    let mut out = HashMap::new();
    match shapes.entity(type_name).and_then(|s| shapes.resolved(s)) {
        Some(Shape::Record(attrs)) => {
            for (key, shape) in attrs {
                if key == "oldObject" {
                    continue;
                }
                let Some(v) = object.get(key) else { continue };
                if let Some(x) = c.value(v, shape, 1)? {
                    out.insert(key.clone(), x);
                }
            }
        }
        _ => {
            let meta = Shape::Common(OBJECT_META.to_owned());
            let meta_known = shapes.common(OBJECT_META).is_some();
            for (key, v) in object {
                if key == "oldObject" {
                    continue;
                }
                let x = if key == "metadata" && meta_known {
                    c.value(v, &meta, 1)?
                } else {
                    c.untyped(v, 1)?
                };
                if let Some(x) = x {
                    out.insert(key.clone(), x);
                }
            }
        }
    }
    Ok(out)
}
