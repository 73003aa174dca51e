//! `fmt`: Cedar's own formatter (`cedar-policy-formatter`) over `.cedar`
//! files, in place or as a check. The formatter keeps comments and refuses
//! any output whose policies differ from the input's, so formatting never
//! changes what a policy means.

use std::path::{Path, PathBuf};

use cedar_policy_formatter::{policies_str_to_pretty, Config};

/// Line width and indentation of every formatted file.
pub const LINE_WIDTH: usize = 80;
pub const INDENT_WIDTH: isize = 2;

/// Why a file could not be formatted.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The text does not parse as Cedar policies.
    #[error("cannot format: {0}")]
    Syntax(String),
    /// A file's text does not parse as Cedar policies.
    #[error("{}: cannot format: {message}", path.display())]
    File { path: PathBuf, message: String },
}

/// Formats policy text. Text holding nothing but whitespace is returned
/// unchanged.
pub fn format_text(text: &str) -> Result<String, FormatError> {
    if text.trim().is_empty() {
        return Ok(text.to_owned());
    }
    let config = Config {
        line_width: LINE_WIDTH,
        indent_width: INDENT_WIDTH,
    };
    policies_str_to_pretty(text, &config).map_err(|report| {
        FormatError::Syntax(
            report
                .chain()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(": "),
        )
    })
}

/// The `.cedar` files named by `paths`: files as given, directories
/// searched recursively (names starting with `.` skipped), sorted.
pub fn cedar_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, FormatError> {
    crate::walk::expand(paths, &["cedar"]).map_err(|e| FormatError::Io {
        path: e.path,
        source: e.source,
    })
}

/// What formatting one file found.
#[derive(Debug)]
pub enum FileOutcome {
    /// Already formatted.
    Unchanged,
    /// Would change (check mode) or was rewritten.
    Changed,
}

/// Formats one file; rewrites it unless `check` is set.
pub fn format_file(path: &Path, check: bool) -> Result<FileOutcome, FormatError> {
    let io = |source| FormatError::Io {
        path: path.to_owned(),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(io)?;
    let pretty = format_text(&text).map_err(|e| match e {
        FormatError::Syntax(message) => FormatError::File {
            path: path.to_owned(),
            message,
        },
        other => other,
    })?;
    if pretty == text {
        return Ok(FileOutcome::Unchanged);
    }
    if !check {
        std::fs::write(path, pretty).map_err(io)?;
    }
    Ok(FileOutcome::Changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_keeps_comments_and_is_idempotent() {
        let text = "// why\npermit(principal,action,resource) when { resource has name };";
        let once = format_text(text).unwrap();
        assert!(once.contains("// why"), "{once}");
        assert_eq!(format_text(&once).unwrap(), once);
    }

    #[test]
    fn syntax_errors_are_reported() {
        assert!(matches!(
            format_text("permit(principal,"),
            Err(FormatError::Syntax(_))
        ));
    }
}
