//! One loaded policy set with everything derived from it: the index and
//! the effect of each policy.
//!
//! A snapshot never changes after it is built. Reloading builds a new one
//! aside and swaps it in whole, so a request sees one policy set from start
//! to finish. Caching is the engine's business, not the loader's.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::SystemTime;

use cedar_policy::{Effect, PolicySet};

use super::{compile, digest, Diagnostic, PolicyFile, PolicyIndex, Result, SchemaBundle};

/// What is known of each policy besides its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyMeta {
    /// `@id` or `<relative path>#<n>`.
    pub id: String,
    pub effect: Effect,
    /// Relative path of the file it came from.
    pub file: String,
}

/// An immutable, compiled policy set.
pub struct Snapshot {
    /// Increases by one with every successful load in a process.
    pub generation: u64,
    /// Digest of the files it was built from.
    pub digest: u64,
    /// The whole set, as loaded.
    pub set: PolicySet,
    pub index: PolicyIndex,
    pub policies: Vec<PolicyMeta>,
    /// Ids of forbid policies: an erroring forbid denies.
    pub forbids: HashSet<String>,
    pub schema: Arc<SchemaBundle>,
    pub warnings: Vec<Diagnostic>,
    pub loaded_at: SystemTime,
}

impl Snapshot {
    /// Compiles and indexes files read from the policy directory.
    pub fn build(
        files: &[PolicyFile],
        schema: &Arc<SchemaBundle>,
        generation: u64,
    ) -> Result<Snapshot> {
        let compiled = compile(files, schema)?;
        let index = PolicyIndex::build(&compiled.set, &schema.action_members);
        Ok(Snapshot {
            generation,
            digest: digest(files),
            forbids: compiled
                .policies
                .iter()
                .filter(|p| p.effect == Effect::Forbid)
                .map(|p| p.id.clone())
                .collect(),
            set: compiled.set,
            index,
            policies: compiled.policies,
            schema: Arc::clone(schema),
            warnings: compiled.warnings,
            loaded_at: SystemTime::now(),
        })
    }

    /// (permit, forbid) policy counts.
    pub fn effect_counts(&self) -> (usize, usize) {
        (self.policies.len() - self.forbids.len(), self.forbids.len())
    }
}
