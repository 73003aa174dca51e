//! Evaluation: a request's entities against a snapshot's candidate
//! policies, through Cedar's own `Authorizer`.
//!
//! [`RawOutcome`] is what Cedar says, before our decision rules
//! ([`crate::decision`]) turn it into an answer. [`RawOutcome::linear`]
//! evaluates the whole set and is the reference the index must always
//! agree with; [`indexed`] evaluates only the index's candidates. The
//! decision rules that turn the outcome into an answer are
//! [`crate::decision`]'s, applied by [`crate::engine::evaluate`].

use std::collections::BTreeSet;

use cedar_policy::{Authorizer, Entities, PolicySet, Request};

use crate::entities::{self, RequestEntities};
use crate::policy::{PolicyIndex, Snapshot};
use crate::sar::AccessRequest;

/// Cedar's own answer for a request, independent of our decision rules:
/// what `Authorizer::is_authorized` over the whole set would say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawOutcome {
    /// Satisfied forbid policies.
    pub forbids: BTreeSet<String>,
    /// Satisfied permit policies; empty whenever a forbid is satisfied, as
    /// in Cedar's own reason set.
    pub permits: BTreeSet<String>,
    /// (policy id, message) of every policy whose evaluation errored.
    pub errors: BTreeSet<(String, String)>,
}

impl RawOutcome {
    fn absorb(&mut self, response: &cedar_policy::Response) {
        let reasons = response.diagnostics().reason().map(|id| id.to_string());
        match response.decision() {
            cedar_policy::Decision::Deny => self.forbids.extend(reasons),
            cedar_policy::Decision::Allow => self.permits.extend(reasons),
        }
        self.errors.extend(
            response
                .diagnostics()
                .errors()
                .map(|e| (policy_id_of(e), e.to_string())),
        );
    }

    fn finish(mut self) -> Self {
        if !self.forbids.is_empty() {
            self.permits.clear();
        }
        self
    }

    /// Evaluates a request against a whole policy set, linearly: the
    /// reference the index must always agree with.
    pub fn linear(set: &PolicySet, request: &Request, entities: &Entities) -> Self {
        let mut out = RawOutcome::default();
        out.absorb(&Authorizer::new().is_authorized(request, set, entities));
        out.finish()
    }
}

fn policy_id_of(e: &cedar_policy::AuthorizationError) -> String {
    match e {
        cedar_policy::AuthorizationError::PolicyEvaluationError(p) => p.policy_id().to_string(),
    }
}

/// Evaluates the request against the index's candidate policies only.
pub fn indexed(index: &PolicyIndex, request: &Request, r: &RequestEntities) -> RawOutcome {
    let authorizer = Authorizer::new();
    let mut out = RawOutcome::default();
    index.candidate_sets(r, |set| {
        out.absorb(&authorizer.is_authorized(request, set, &r.entities));
    });
    out.finish()
}

/// Cedar's outcome from the index's compiled policies, without building
/// entities or running Cedar; `None` when the fast path cannot answer
/// exactly (a candidate policy did not compile, or its evaluation would
/// error, or the request is an impersonation check), and the caller must
/// evaluate through [`build`], [`cedar_request`] and [`indexed`].
pub fn compiled(index: &PolicyIndex, req: &AccessRequest) -> Option<RawOutcome> {
    let mut out = RawOutcome::default();
    for p in index.compiled_outcome(req)? {
        if p.forbid {
            out.forbids.insert(p.id.clone());
        } else {
            out.permits.insert(p.id.clone());
        }
    }
    Some(out.finish())
}

/// The Cedar request for built entities. No schema is passed: the entities
/// fit the entity model by construction, and verbs the schema does not
/// declare must still be evaluated.
pub fn cedar_request(r: &RequestEntities) -> Result<Request, String> {
    Request::new(
        r.principal.clone(),
        r.action.clone(),
        r.resource.clone(),
        r.context.clone(),
        None,
    )
    .map_err(|e| e.to_string())
}

/// The entities of a request under a snapshot's schema.
pub fn build(
    snapshot: &Snapshot,
    req: &AccessRequest,
) -> Result<RequestEntities, entities::EntityError> {
    let action = snapshot
        .schema
        .grouped_actions
        .get(entities::action_name(&req.attributes));
    entities::build(req, action)
}
