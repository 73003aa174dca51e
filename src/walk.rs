//! Finding files by extension under a directory, the one way every command
//! does it: recursive, sorted, symlinks followed (ConfigMap mounts are made
//! of them), entries whose names start with `.` skipped (a ConfigMap's
//! `..data` and timestamped directories, `.git`), depth bounded against
//! symlink loops.

use std::path::{Path, PathBuf};

/// Directories deeper than this are not entered.
const MAX_DEPTH: usize = 16;

/// A path that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct WalkError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// Every file under `dir` whose extension is one of `extensions`, sorted.
pub fn files(dir: &Path, extensions: &[&str]) -> Result<Vec<PathBuf>, WalkError> {
    let mut out = Vec::new();
    walk(dir, extensions, 0, &mut out)?;
    out.sort();
    Ok(out)
}

/// Files named on a command line: files as given, directories searched with
/// [`files`] for these extensions, in the order given.
pub fn expand(paths: &[PathBuf], extensions: &[&str]) -> Result<Vec<PathBuf>, WalkError> {
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|source| WalkError {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            out.extend(files(path, extensions)?);
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

fn walk(
    dir: &Path,
    extensions: &[&str],
    depth: usize,
    out: &mut Vec<PathBuf>,
) -> Result<(), WalkError> {
    let err = |path: &Path| {
        let path = path.to_owned();
        move |source| WalkError { path, source }
    };
    for entry in std::fs::read_dir(dir).map_err(err(dir))? {
        let entry = entry.map_err(err(dir))?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let meta = std::fs::metadata(&path).map_err(err(&path))?;
        if meta.is_dir() {
            if depth < MAX_DEPTH {
                walk(&path, extensions, depth + 1, out)?;
            }
        } else if path
            .extension()
            .is_some_and(|e| extensions.iter().any(|x| e == *x))
        {
            out.push(path);
        }
    }
    Ok(())
}
