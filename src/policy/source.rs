//! Where policy text comes from: the `.cedar` files of the policy
//! directory, read whole, in the order that policy ids follow.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{LoadError, Result};

/// One `.cedar` file of the policy directory.
#[derive(Clone, Debug)]
pub struct PolicyFile {
    /// Path relative to the policy directory, `/`-separated: the prefix of
    /// generated policy ids.
    pub relative: String,
    /// Path as the user would open it, for messages.
    pub path: PathBuf,
    pub text: Arc<str>,
}

/// Reads every `.cedar` file under `dir`, recursively, in sorted path order.
/// Entries whose names start with `.` are skipped: that is how a Kubernetes
/// ConfigMap mount's `..data` and timestamped directories are not read twice
/// (the visible names are symlinks into them, and those are followed).
pub fn read_dir(dir: &Path) -> Result<Vec<PolicyFile>> {
    let paths = crate::walk::files(dir, &["cedar"]).map_err(|e| LoadError::Io {
        path: e.path,
        source: e.source,
    })?;
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|source| LoadError::Io {
            path: path.clone(),
            source,
        })?;
        let relative = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        files.push(PolicyFile {
            relative,
            path,
            text: text.into(),
        });
    }
    // Ids derive from relative paths: sort by them, not by OS path order.
    files.sort_by(|a, b| a.relative.cmp(&b.relative));
    if files.is_empty() {
        return Err(LoadError::Empty(dir.to_owned()));
    }
    Ok(files)
}

/// A digest of the files' names and contents: equal digests mean there is
/// nothing to reload.
pub fn digest(files: &[PolicyFile]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for f in files {
        f.relative.hash(&mut h);
        f.text.hash(&mut h);
    }
    h.finish()
}
