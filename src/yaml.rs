//! The one YAML reader: every YAML the project reads (policy test files,
//! RBAC objects, and in the tests the deploy manifests and monitoring
//! assets) goes through these functions, so all of it is read alike.
//!
//! The parser is serde-saphyr. It has no value type of its own, so untyped
//! YAML is read into [`serde_json::Value`]: everything read here is
//! Kubernetes-shaped, which is JSON with another syntax.
//!
//! Scalars are resolved as the YAML 1.2 core schema does (as serde_yaml did
//! before): `yes`/`no`/`on`/`off` are strings, not booleans, and so are
//! numbers with leading zeros or underscores. Duplicate keys are an error.
//! Locations are 1-based lines; errors say `... at line L, column C` on one
//! line, without a source snippet, since callers put them after `FILE:LINE:`.

use serde::de::DeserializeOwned;
use serde_saphyr::granit_parser::{Event, Parser};
use serde_saphyr::{NonFiniteFloatPolicy, Options, Spanned, UserMessageFormatter};

/// Why a text could not be read: a one-line message that ends with the
/// position (`... at line L, column C`) when there is one.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    message: String,
    line: Option<usize>,
}

impl Error {
    /// The 1-based line the error points at, if it has one.
    pub fn line(&self) -> Option<usize> {
        self.line
    }
}

impl From<serde_saphyr::Error> for Error {
    fn from(e: serde_saphyr::Error) -> Self {
        Error {
            // Worded for whoever wrote the file, not for a Rust developer
            // (no "set DuplicateKeyPolicy in Options").
            message: e.render_with_formatter(&UserMessageFormatter),
            line: e
                .location()
                .and_then(|l| usize::try_from(l.line()).ok())
                .filter(|&line| line > 0),
        }
    }
}

/// How every YAML is read (see the module docs).
fn options() -> Options {
    serde_saphyr::options! {
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
        non_finite_float_policy: NonFiniteFloatPolicy::PassThrough,
        with_snippet: false,
    }
}

/// Reads a single-document YAML text.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    Ok(serde_saphyr::from_str_with_options(text, options())?)
}

/// The 1-based line of a value read as [`Spanned`]: where it is used in
/// the text (an alias's own line, not its anchor's); 1 if unknown.
pub fn line_of<T>(spanned: &Spanned<T>) -> usize {
    usize::try_from(spanned.referenced.line())
        .ok()
        .filter(|&line| line > 0)
        .unwrap_or(1)
}

/// One document of a multi-document text.
#[derive(Debug)]
pub struct Document<T> {
    /// 1-based position in the stream, counting empty documents too, so
    /// that it matches counting the `---` separators.
    pub number: usize,
    pub value: T,
}

/// Reads every document of a multi-document text. Empty (null) documents
/// are left out, but still counted in [`Document::number`].
pub fn documents<T: DeserializeOwned>(text: &str) -> Result<Vec<Document<T>>, Error> {
    let values: Vec<Spanned<T>> = serde_saphyr::from_multiple_with_options(text, options())?;
    // serde-saphyr leaves null documents out without saying where they
    // were; the parser's document-start events tell how many came before
    // each document that is left.
    let starts: Vec<u64> = Parser::new_from_str(text)
        .map_while(Result::ok)
        .filter(|(event, _)| matches!(event, Event::DocumentStart(..)))
        .map(|(_, span)| span.start.index() as u64)
        .collect();
    Ok(values
        .into_iter()
        .enumerate()
        .map(|(i, spanned)| {
            let offset = spanned.referenced.span().offset();
            let number = starts.partition_point(|&start| start <= offset).max(i + 1);
            Document {
                number,
                value: spanned.value,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn scalars_resolve_as_in_yaml_1_2_core() {
        let v: Value = from_str(
            "a: yes\nb: on\nc: 012\nd: 1_000\ne: true\nf: 0x1F\ng: ~\nh: 1.5\ni: .inf\nj: '5'\n",
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"a": "yes", "b": "on", "c": "012", "d": "1_000", "e": true,
                   "f": 31, "g": null, "h": 1.5, "i": null, "j": "5"})
        );
    }

    #[test]
    fn errors_are_one_line_with_their_position() {
        let e = from_str::<Value>("a: 1\na: 2\n").unwrap_err();
        assert_eq!(e.line(), Some(2));
        assert!(!e.to_string().contains("Options"), "{e}");
        let e = from_str::<Value>("a: [\n").unwrap_err();
        assert_eq!(e.line(), Some(1));
        assert!(!e.to_string().contains('\n'), "{e}");
        assert!(e.to_string().contains("line 1"), "{e}");
    }

    #[test]
    fn documents_are_numbered_as_the_stream_counts_them() {
        let docs: Vec<Document<Value>> =
            documents("---\n# only a comment\n---\na: 1\n---\n---\nb: 2\n--- c\n---\n").unwrap();
        let numbers: Vec<_> = docs.iter().map(|d| d.number).collect();
        assert_eq!(numbers, vec![2, 4, 5]);
        assert_eq!(docs[2].value, json!("c"));
        let implicit: Vec<Document<Value>> = documents("a: 1\n---\nb: 2\n").unwrap();
        assert_eq!(implicit[0].number, 1);
        assert_eq!(implicit[1].number, 2);
        assert!(documents::<Value>("").unwrap().is_empty());
        assert!(documents::<Value>("a: 1\n---\nb: [\n").is_err());
    }
}
