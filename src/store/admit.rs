//! Validation at apply time: through `/admit`, a create or update of a
//! Policy object whose `spec.content` does not compile on its own against
//! the schema is refused with Cedar's diagnostic, so a broken policy rarely
//! reaches the store at all.
//!
//! Only what one object can show is checked here: an `@id` that clashes
//! with another source is found by the store's load and reported in the
//! object's status. Status writes (the `status` subresource) are never
//! refused, so the webhook's own writer does not depend on this check.

use kube_core::admission::Operation;

use super::status::{check_alone, describe};
use super::{PolicyObject, GROUP, KIND};
use crate::admission::AdmissionInput;
use crate::policy::SchemaBundle;

/// The refusal for an admitted object, when it is a Policy whose text does
/// not load; `None` for everything else.
pub fn refusal(input: &AdmissionInput, schema: &SchemaBundle) -> Option<String> {
    if input.group != GROUP
        || input.kind != KIND
        || !input.subresource.is_empty()
        || !matches!(input.operation, Operation::Create | Operation::Update)
    {
        return None;
    }
    let object = PolicyObject {
        name: input.name.clone(),
        generation: 0,
        content: input
            .object
            .as_ref()?
            .get("spec")
            .and_then(|s| s.get("content"))
            .and_then(|c| c.as_str())
            .map(str::to_owned),
    };
    let diags = check_alone(&object, schema).err()?;
    Some(format!(
        "Policy {:?} does not load: {}",
        input.name,
        describe(&object, &diags)
    ))
}
