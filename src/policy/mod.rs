//! Policies: reading the policy directory, naming and validating every
//! policy, and compiling the result into one immutable [`Snapshot`].
//!
//! A set loads whole or not at all: one parse error, duplicate `@id` or
//! validation error anywhere rejects it, so a bad edit can never serve a
//! partial (and therefore looser) policy set.

mod compile;
pub(crate) mod compiled;
mod diagnostics;
pub mod index;
mod schema;
mod snapshot;
mod source;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(crate) use compile::par_chunks;
pub use compile::{compile, Compiled};
pub use diagnostics::Diagnostic;
pub use index::PolicyIndex;
pub use schema::{SchemaBundle, AUTHORIZATION_SCHEMA, BUILTIN_SCHEMA};
pub use snapshot::{PolicyMeta, Snapshot};
pub use source::{digest, read_dir, PolicyFile};

/// Why a policy set or schema did not load.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file or directory could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The directory holds no `.cedar` file.
    #[error("{}: no .cedar files found", .0.display())]
    Empty(PathBuf),
    /// Parse, naming or validation errors, each with file:line:col.
    #[error("{}", render_all(.0))]
    Invalid(Vec<Diagnostic>),
    /// The schema does not parse.
    #[error("{}: invalid schema: {message}", path.display())]
    Schema { path: PathBuf, message: String },
}

fn render_all(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Result type of this module.
pub type Result<T, E = LoadError> = std::result::Result<T, E>;

/// Reads, compiles and indexes the policy directory: what `validate`,
/// `check` and the server's loads all go through.
pub fn load(dir: &Path, schema: &Arc<SchemaBundle>, generation: u64) -> Result<Snapshot> {
    let files = read_dir(dir)?;
    Snapshot::build(&files, schema, generation)
}
