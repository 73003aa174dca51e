//! Finding files by extension under a directory, the one way every command
//! does it (policies, `validate`, `test`, `fmt`): recursive, sorted,
//! symlinks followed (ConfigMap mounts are made of them), entries whose
//! names start with `.` skipped (a ConfigMap's `..data` and timestamped
//! directories, `.git`).
//!
//! Only regular files are returned, and each is bounded in size: a FIFO
//! named `x.cedar` would hang the reader, and a link to `/dev/zero` would
//! read until memory runs out. Symlink loops are detected (walkdir), not
//! merely cut off at a depth, so `ln -s . policies/self` is an error
//! rather than every policy loaded many times over.

use std::path::{Path, PathBuf};

/// Largest file read (10,000 converted RBAC policies fit in a few MiB).
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// A path that could not be read, or that is not a file we read.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct WalkError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

fn invalid(path: &Path, message: String) -> WalkError {
    WalkError {
        path: path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, message),
    }
}

/// Every regular file under `dir` whose extension is one of `extensions`,
/// sorted.
pub fn files(dir: &Path, extensions: &[&str]) -> Result<Vec<PathBuf>, WalkError> {
    let mut out = Vec::new();
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in walker {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(dir).to_owned();
            if let Some(ancestor) = e.loop_ancestor() {
                return invalid(
                    &path,
                    format!(
                        "symbolic link loop back to {}; not followed",
                        ancestor.display()
                    ),
                );
            }
            WalkError {
                path,
                source: e
                    .into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("unreadable entry")),
            }
        })?;
        let path = entry.path();
        let wanted = path
            .extension()
            .is_some_and(|e| extensions.iter().any(|x| e == *x));
        if entry.file_type().is_dir() || !wanted {
            continue;
        }
        check_regular(path)?;
        out.push(path.to_owned());
    }
    out.sort();
    Ok(out)
}

/// Refuses what is not a regular file of a readable size.
pub fn check_regular(path: &Path) -> Result<(), WalkError> {
    let meta = std::fs::metadata(path).map_err(|source| WalkError {
        path: path.to_owned(),
        source,
    })?;
    if !meta.is_file() {
        return Err(invalid(
            path,
            "not a regular file (a FIFO, socket or device); not read".into(),
        ));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(invalid(
            path,
            format!(
                "{} bytes, larger than the {MAX_FILE_BYTES} a policy file may be",
                meta.len()
            ),
        ));
    }
    Ok(())
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
            check_regular(path)?;
            out.push(path.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlink_loops_are_an_error_not_a_multiplication() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.cedar"), "").unwrap();
        std::os::unix::fs::symlink(".", dir.path().join("self")).unwrap();
        let e = files(dir.path(), &["cedar"]).unwrap_err();
        assert!(e.to_string().contains("symbolic link loop"), "{e}");
    }

    #[test]
    fn fifos_and_oversized_files_are_refused_without_reading() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("x.cedar");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let e = files(dir.path(), &["cedar"]).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        std::fs::remove_file(&fifo).unwrap();

        let big = std::fs::File::create(dir.path().join("big.cedar")).unwrap();
        big.set_len(MAX_FILE_BYTES + 1).unwrap();
        let e = files(dir.path(), &["cedar"]).unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
    }

    #[test]
    fn hidden_entries_are_skipped_and_links_followed() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("..2026_12_01");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("p.cedar"), "").unwrap();
        std::os::unix::fs::symlink(data.join("p.cedar"), dir.path().join("p.cedar")).unwrap();
        std::fs::write(dir.path().join(".hidden.cedar"), "").unwrap();
        let found = files(dir.path(), &["cedar"]).unwrap();
        assert_eq!(found, vec![dir.path().join("p.cedar")]);
    }
}
