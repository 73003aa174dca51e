//! What a Policy object's `status` should say, worked out from the object,
//! its own check and the last load.
//!
//! The set is installed whole, but authors read status per object, so each
//! object's text is also compiled on its own against the schema: that is
//! what attributes a parse or validation error to the object that holds
//! it, even when another object's error stopped the load first. Errors
//! that only exist between sources (an `@id` used twice) come from the
//! set's load, which names the source of each diagnostic.
//!
//! `Ready=True` means the object's current text is in the set being
//! served. Plain functions, no I/O: the writer is in [`super::watch`].

use std::sync::Arc;

use serde_json::{json, Value};

use super::{object_file, object_name, unusable, PolicyObject};
use crate::policy::{compile, Diagnostic, LoadError, SchemaBundle};

/// Diagnostics quoted in one message; the rest are counted.
const MAX_QUOTED: usize = 5;
/// Longest condition message written (the CRD allows 32 KiB).
const MAX_MESSAGE_BYTES: usize = 4096;

/// An object's text checked on its own: its policy count, or why not.
pub type OwnCheck = Result<usize, Vec<Diagnostic>>;

/// Compiles one object's text alone against the schema.
pub fn check_alone(object: &PolicyObject, schema: &SchemaBundle) -> OwnCheck {
    if let Some(why) = unusable(object) {
        let file = object_file(object);
        return Err(vec![Diagnostic::at_offset(file.path, "", 0, why, "error")]);
    }
    match compile(&[object_file(object)], schema) {
        Ok(c) => Ok(c.policies.len()),
        Err(LoadError::Invalid(d)) => Err(d),
        Err(other) => Err(vec![Diagnostic::at_offset(
            object_file(object).path,
            "",
            0,
            other.to_string(),
            "error",
        )]),
    }
}

/// The status an object should have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    pub observed_generation: i64,
    /// Policies in the text; `None` when it does not compile alone.
    pub policies: Option<usize>,
    pub ready: bool,
    /// `Loaded`, `Invalid`, `Conflict` or `NotLoaded`.
    pub reason: &'static str,
    pub message: String,
}

/// What the last load left: the object texts in the serving set, and the
/// diagnostics of the last failed load when it failed.
#[derive(Clone, Debug, Default)]
pub struct LastLoad {
    /// (object name, text) of every object in the set being served.
    pub served: Vec<(String, Arc<str>)>,
    /// Diagnostics of the most recent load when it failed; `None` when the
    /// most recent load succeeded (or nothing was loaded yet).
    pub failure: Option<Vec<Diagnostic>>,
}

impl LastLoad {
    /// True when this object's current text is in the serving set.
    pub fn serves(&self, object: &PolicyObject) -> bool {
        let Some(content) = &object.content else {
            return false;
        };
        self.served
            .iter()
            .any(|(name, text)| *name == object.name && **text == **content)
    }
}

/// The status of one object.
pub fn desired(object: &PolicyObject, own: &OwnCheck, last: &LastLoad) -> Desired {
    let generation = object.generation;
    let policies = own.as_ref().ok().copied();
    let not_ready = |reason, message| Desired {
        observed_generation: generation,
        policies,
        ready: false,
        reason,
        message,
    };
    if let Err(diags) = own {
        return not_ready("Invalid", describe(object, diags));
    }
    if last.serves(object) {
        let n = policies.unwrap_or(0);
        return Desired {
            observed_generation: generation,
            policies,
            ready: true,
            reason: "Loaded",
            message: format!("{n} {} served", if n == 1 { "policy" } else { "policies" }),
        };
    }
    let Some(failure) = &last.failure else {
        return not_ready("NotLoaded", "waiting for the policy set to load".into());
    };
    let own_name = object.source_name();
    let mine: Vec<Diagnostic> = failure
        .iter()
        .filter(|d| d.file.to_str() == Some(own_name.as_str()))
        .cloned()
        .collect();
    if !mine.is_empty() {
        return not_ready(
            "Conflict",
            message(object, &mine, Some("the previous policy set keeps serving")),
        );
    }
    not_ready(
        "NotLoaded",
        message(
            object,
            failure,
            Some("valid on its own, but the policy set does not load; the previous set keeps serving"),
        ),
    )
}

/// An object's own diagnostics as one bounded message.
pub fn describe(object: &PolicyObject, diags: &[Diagnostic]) -> String {
    message(object, diags, None)
}

/// Diagnostics as one message. The object's own are located in its text
/// (`spec.content:LINE:COL: message`); others name their source (a file of
/// the policy directory, or `policy/<other object>`).
fn message(object: &PolicyObject, diags: &[Diagnostic], lead: Option<&str>) -> String {
    let own = object.source_name();
    let mut parts: Vec<String> = diags
        .iter()
        .take(MAX_QUOTED)
        .map(|d| {
            let file = d.file.to_string_lossy();
            if file == own {
                format!("spec.content:{}:{}: {}", d.line, d.column, d.message)
            } else if let Some(other) = object_name(&file) {
                format!(
                    "Policy {other:?} spec.content:{}:{}: {}",
                    d.line, d.column, d.message
                )
            } else {
                d.to_string()
            }
        })
        .collect();
    if diags.len() > MAX_QUOTED {
        parts.push(format!("and {} more", diags.len() - MAX_QUOTED));
    }
    let mut out = match lead {
        Some(lead) => format!("{lead}: {}", parts.join("; ")),
        None => parts.join("; "),
    };
    if out.len() > MAX_MESSAGE_BYTES {
        let mut cut = MAX_MESSAGE_BYTES;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("...");
    }
    out
}

/// True when the object's current `status` already says what `d` says, so
/// no write is needed (and our own write's watch event does not cause
/// another).
pub fn is_current(status: Option<&Value>, d: &Desired) -> bool {
    let Some(status) = status else {
        return false;
    };
    let ready = ready_condition(status);
    status.get("observedGeneration").and_then(Value::as_i64) == Some(d.observed_generation)
        && status.get("policies").and_then(Value::as_u64) == d.policies.map(|n| n as u64)
        && ready.is_some_and(|c| {
            c.get("status").and_then(Value::as_str) == Some(status_word(d.ready))
                && c.get("reason").and_then(Value::as_str) == Some(d.reason)
                && c.get("message").and_then(Value::as_str) == Some(d.message.as_str())
                && c.get("observedGeneration").and_then(Value::as_i64)
                    == Some(d.observed_generation)
        })
}

fn ready_condition(status: &Value) -> Option<&Value> {
    status
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
}

fn status_word(ready: bool) -> &'static str {
    if ready {
        "True"
    } else {
        "False"
    }
}

/// The merge patch that sets `d` as the status. `lastTransitionTime` moves
/// only when the condition's status changes; `now` is RFC 3339.
pub fn patch(status: Option<&Value>, d: &Desired, now: &str) -> Value {
    let word = status_word(d.ready);
    let since = status
        .and_then(ready_condition)
        .filter(|c| c.get("status").and_then(Value::as_str) == Some(word))
        .and_then(|c| c.get("lastTransitionTime"))
        .and_then(Value::as_str)
        .unwrap_or(now);
    json!({
        "status": {
            "observedGeneration": d.observed_generation,
            // null removes the field in a merge patch.
            "policies": d.policies,
            "conditions": [{
                "type": "Ready",
                "status": word,
                "observedGeneration": d.observed_generation,
                "lastTransitionTime": since,
                "reason": d.reason,
                "message": d.message,
            }],
        }
    })
}
