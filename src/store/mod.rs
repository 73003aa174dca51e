//! Policies as Kubernetes objects: the `cedar.k8s.aws/v1alpha1` `Policy`
//! custom resource (`deploy/policy-crd.yaml`) as a policy source beside the
//! directory.
//!
//! Each object becomes one [`PolicyFile`] named `policy/<object name>`, so
//! its unnamed policies get ids `policy/<object name>#<n>` and `@id`s share
//! one id space with the directory's files. Files and objects are merged
//! into one list and built into one snapshot by the same reload path as the
//! directory alone (`serve/reload.rs`): built aside, swapped whole, the last
//! good set kept on failure. What this module adds is the watch that keeps
//! a copy of the objects ([`watch`]) and the status written back on each
//! object ([`status`]).

pub mod admit;
pub mod status;
pub mod watch;
pub mod yaml;

use std::path::PathBuf;

use crate::policy::{self, Diagnostic, LoadError, PolicyFile};

pub use watch::{ObjectStore, StoreError};

/// API group of the Policy resource.
pub const GROUP: &str = "cedar.k8s.aws";
/// Version of the Policy resource.
pub const VERSION: &str = "v1alpha1";
/// Kind of the Policy resource.
pub const KIND: &str = "Policy";
/// Plural (resource) name of the Policy resource.
pub const PLURAL: &str = "policies";

/// Largest `spec.content` accepted (also the CRD's `maxLength`).
pub const MAX_CONTENT_BYTES: usize = 256 * 1024;
/// Largest total of `spec.content` over all objects: beyond it the set
/// does not load, so the objects cannot grow the process without limit.
pub const MAX_TOTAL_BYTES: usize = 16 * 1024 * 1024;
/// Most Policy objects in one set, for the same reason.
pub const MAX_OBJECTS: usize = 10_000;

/// Prefix of the source name (and generated ids) of a Policy object.
pub const SOURCE_PREFIX: &str = "policy/";

/// Which sources `serve` reads policies from (`--policy-source`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PolicySource {
    /// The policy directory only.
    #[default]
    Dir,
    /// Policy objects only.
    Crd,
    /// Both, merged into one set.
    Both,
}

impl std::str::FromStr for PolicySource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "dir" => Ok(PolicySource::Dir),
            "crd" => Ok(PolicySource::Crd),
            "both" => Ok(PolicySource::Both),
            other => Err(format!(
                "invalid policy source {other:?}: use dir, crd or both"
            )),
        }
    }
}

impl PolicySource {
    /// True when the policy directory is read.
    pub fn reads_dir(self) -> bool {
        self != PolicySource::Crd
    }

    /// True when Policy objects are read.
    pub fn reads_objects(self) -> bool {
        self != PolicySource::Dir
    }
}

/// What the store keeps of one Policy object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyObject {
    pub name: String,
    /// `metadata.generation`: what `observedGeneration` reports.
    pub generation: i64,
    /// `spec.content`; `None` when it is missing or not a string.
    pub content: Option<String>,
}

impl PolicyObject {
    /// The source name of the object: `policy/<name>`.
    pub fn source_name(&self) -> String {
        source_name(&self.name)
    }
}

/// `policy/<name>`: the relative name, and id prefix, of an object's text.
pub fn source_name(name: &str) -> String {
    format!("{SOURCE_PREFIX}{name}")
}

/// The object name of a source name, when it is an object's.
pub fn object_name(source: &str) -> Option<&str> {
    source.strip_prefix(SOURCE_PREFIX)
}

/// Why one object's text cannot be a source, before Cedar sees it.
fn unusable(object: &PolicyObject) -> Option<String> {
    match &object.content {
        None => Some("spec.content is missing or not a string".into()),
        Some(c) if c.len() > MAX_CONTENT_BYTES => Some(format!(
            "spec.content is {} bytes, more than the {MAX_CONTENT_BYTES} accepted",
            c.len()
        )),
        Some(_) => None,
    }
}

/// The text of one object as a policy source.
pub fn object_file(object: &PolicyObject) -> PolicyFile {
    let relative = object.source_name();
    PolicyFile {
        path: PathBuf::from(&relative),
        relative,
        text: object.content.clone().unwrap_or_default().into(),
    }
}

/// Merges the directory's files and the objects into one source list:
/// files first (in their sorted order), then objects sorted by name, so the
/// list, its digest and its ids do not depend on the order the objects
/// arrived in. An object that cannot be a source (no text, too large), or
/// too many or too much text in all, fails the whole set: leaving an object
/// out could drop a `forbid`.
pub fn merge(files: Vec<PolicyFile>, objects: &[PolicyObject]) -> policy::Result<Vec<PolicyFile>> {
    let mut sorted: Vec<&PolicyObject> = objects.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut errors = Vec::new();
    if sorted.len() > MAX_OBJECTS {
        errors.push(set_error(format!(
            "{} Policy objects, more than the {MAX_OBJECTS} accepted",
            sorted.len()
        )));
    }
    let total: usize = sorted
        .iter()
        .filter_map(|o| o.content.as_ref().map(String::len))
        .sum();
    if total > MAX_TOTAL_BYTES {
        errors.push(set_error(format!(
            "Policy objects hold {total} bytes of spec.content, more than the {MAX_TOTAL_BYTES} accepted"
        )));
    }
    for o in &sorted {
        if let Some(why) = unusable(o) {
            errors.push(Diagnostic::at_offset(
                PathBuf::from(o.source_name()),
                "",
                0,
                why,
                "error",
            ));
        }
    }
    if !errors.is_empty() {
        return Err(LoadError::Invalid(errors));
    }
    let mut out = files;
    out.extend(sorted.into_iter().map(object_file));
    Ok(out)
}

/// Reads every source `serve` was told to read: the directory (when
/// `dir` is given) and the objects (when `objects` is). With objects, a
/// directory without `.cedar` files is no error: the objects may be all
/// there is.
pub fn read_sources(
    dir: Option<&std::path::Path>,
    objects: Option<&ObjectStore>,
) -> policy::Result<Vec<PolicyFile>> {
    let files = match dir {
        None => Vec::new(),
        Some(dir) => match policy::read_dir(dir) {
            Err(LoadError::Empty(_)) if objects.is_some() => Vec::new(),
            other => other?,
        },
    };
    match objects {
        None => Ok(files),
        Some(store) => merge(files, &store.objects()),
    }
}

fn set_error(message: String) -> Diagnostic {
    Diagnostic::at_offset(PathBuf::from("Policy objects"), "", 0, message, "error")
}

#[cfg(test)]
mod tests;
