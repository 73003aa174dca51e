//! `schema generate`: the Cedar schema of admission, from a cluster's
//! OpenAPI v3 documents (docs/policy-model.md, "Admission schema").
//!
//! [`openapi`] reads documents (a directory of saved ones, bounded in count
//! and size), [`fetch`] gets them from a cluster's `/openapi/v3`,
//! `convert` turns their schemas into Cedar types, and `render` writes the
//! text. Every Cedar name comes from [`super::naming`], which the admission
//! entity builder uses too, so the schema and the entities cannot disagree.

mod convert;
pub mod fetch;
pub mod openapi;
mod render;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

pub use openapi::Document;

/// The generated admission schema.
#[derive(Debug)]
pub struct Generated {
    /// Cedar schema text: the `k8s::admission` actions, then one namespace
    /// per group/version.
    pub text: String,
    /// How many entity types (kinds admission can see) it declares.
    pub entity_types: usize,
    /// How many common types (object schemas used by those kinds).
    pub common_types: usize,
    /// What was left out or renamed and why, one line each.
    pub warnings: Vec<String>,
}

/// Why documents could not be read or converted.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("{}: {message}", path.display())]
    Io { path: PathBuf, message: String },
    /// A directory holds no `*.json` document.
    #[error("{}: no OpenAPI documents (*.json) found", .0.display())]
    Empty(PathBuf),
    /// More documents than [`openapi::MAX_DOCUMENTS`].
    #[error("more than {limit} OpenAPI documents")]
    TooMany { limit: usize },
    /// A document, or all of them together, over the size limit.
    #[error("{doc}: larger than {limit} bytes")]
    TooLarge { doc: String, limit: u64 },
    /// A document is not JSON.
    #[error("{doc}: not JSON: {message}")]
    Json { doc: String, message: String },
    /// A document or one of its definitions does not have the shape of
    /// an OpenAPI v3 document as a kube-apiserver serves it.
    #[error("{doc}: {at}: {message}")]
    Malformed {
        doc: String,
        at: String,
        message: String,
    },
    /// The kubeconfig could not be read or used.
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    /// A request to the cluster failed.
    #[error("{url}: {message}")]
    Fetch { url: String, message: String },
}

/// Result type of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Converts OpenAPI v3 documents (one per group/version, in any order)
/// into the admission part of the Cedar schema. `header` is written first,
/// as `//` comment lines.
pub fn generate(documents: &[Document], header: &str) -> Result<Generated> {
    let schema = convert::convert(documents)?;
    let text = render::render(&schema, header);
    Ok(Generated {
        text,
        entity_types: schema.entities.len(),
        common_types: schema.common.len(),
        warnings: schema.warnings,
    })
}
