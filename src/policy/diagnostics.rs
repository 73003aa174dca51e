//! Policy errors as policy authors read them: `file:line:col: message`, the
//! source line, and a caret under the spot Cedar pointed at.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// One problem found in a policy file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Path as the user gave it (policy directory joined with the file).
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Cedar's message, with its help text when it has one.
    pub message: String,
    /// The source line the position is on.
    #[serde(skip)]
    pub source_line: String,
    /// `error` or `warning`.
    pub severity: &'static str,
}

impl Diagnostic {
    /// Builds a diagnostic from a byte offset into a file's text.
    pub fn at_offset(
        file: PathBuf,
        text: &str,
        offset: usize,
        message: String,
        severity: &'static str,
    ) -> Self {
        let offset = floor_char_boundary(text, offset.min(text.len()));
        let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
        Diagnostic {
            file,
            line: text[..offset].matches('\n').count() + 1,
            column: text[line_start..offset].chars().count() + 1,
            message,
            source_line: text[line_start..line_end].trim_end_matches('\r').to_owned(),
            severity,
        }
    }

    /// The message from a miette diagnostic, with help appended.
    pub fn message_of(d: &dyn miette::Diagnostic) -> String {
        let mut message = d.to_string();
        if let Some(help) = d.help() {
            message.push_str(" (help: ");
            message.push_str(&help.to_string());
            message.push(')');
        }
        message
    }

    /// The first labelled offset of a miette diagnostic.
    pub fn offset_of(d: &dyn miette::Diagnostic) -> Option<usize> {
        d.labels()
            .and_then(|mut labels| labels.next())
            .map(|l| l.offset())
    }

    /// `file:line:col: message` followed by the source line and a caret.
    pub fn render(&self) -> String {
        let mut out = self.to_string();
        if !self.source_line.is_empty() {
            let gutter = format!("{} | ", self.line);
            out.push('\n');
            out.push_str(&gutter);
            out.push_str(&self.source_line);
            out.push('\n');
            out.push_str(&" ".repeat(gutter.len() + self.column.saturating_sub(1)));
            out.push('^');
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}{}",
            self.file.display(),
            self.line,
            self.column,
            if self.severity == "warning" {
                "warning: "
            } else {
                ""
            },
            self.message
        )
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_columns() {
        let text = "permit(\n  principal,\n  actoin\n);";
        let offset = text.find("actoin").unwrap();
        let d = Diagnostic::at_offset("p/a.cedar".into(), text, offset, "bad".into(), "error");
        assert_eq!((d.line, d.column), (3, 3));
        assert_eq!(d.to_string(), "p/a.cedar:3:3: bad");
        assert_eq!(d.render(), "p/a.cedar:3:3: bad\n3 |   actoin\n      ^");
    }
}
