//! JUnit XML for CI systems: one `<testsuite>` per test file, one
//! `<testcase>` per case, `<failure>` for a wrong decision and `<error>`
//! for a case or file that could not run.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{CaseResult, Status};

/// Escapes text for XML content and attribute values. Characters XML 1.0
/// cannot carry at all (most control characters) become U+FFFD.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// The JUnit XML report of a run.
pub fn junit(results: &[CaseResult]) -> String {
    let mut by_file: BTreeMap<&PathBuf, Vec<&CaseResult>> = BTreeMap::new();
    for r in results {
        by_file.entry(&r.file).or_default().push(r);
    }
    let count =
        |rs: &[&CaseResult], f: fn(&Status) -> bool| rs.iter().filter(|r| f(&r.status)).count();
    let is_failure = |s: &Status| matches!(s, Status::Failed { .. });
    let is_error = |s: &Status| matches!(s, Status::Error(_));
    let all: Vec<&CaseResult> = results.iter().collect();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"cedar-authorizer policy tests\" tests=\"{}\" failures=\"{}\" errors=\"{}\">\n",
        all.len(),
        count(&all, is_failure),
        count(&all, is_error)
    ));
    for (file, cases) in by_file {
        let file = escape(&file.display().to_string());
        out.push_str(&format!(
            "  <testsuite name=\"{file}\" tests=\"{}\" failures=\"{}\" errors=\"{}\">\n",
            cases.len(),
            count(&cases, is_failure),
            count(&cases, is_error)
        ));
        for case in cases {
            let open = format!(
                "    <testcase name=\"{}\" classname=\"{file}\" file=\"{file}\" line=\"{}\"",
                escape(if case.name.is_empty() {
                    "(test file)"
                } else {
                    &case.name
                }),
                case.line
            );
            let message = case.message().map(|m| escape(&m)).unwrap_or_default();
            let location = format!("{file}:{}", case.line);
            match &case.status {
                Status::Passed => out.push_str(&format!("{open}/>\n")),
                Status::Failed { .. } => out.push_str(&format!(
                    "{open}>\n      <failure message=\"{message}\">{location}: {message}</failure>\n    </testcase>\n"
                )),
                Status::Error(_) => out.push_str(&format!(
                    "{open}>\n      <error message=\"{message}\">{location}: {message}</error>\n    </testcase>\n"
                )),
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_control_characters_are_escaped() {
        assert_eq!(
            escape("a<b>&\"c'\u{1}"),
            "a&lt;b&gt;&amp;&quot;c&apos;\u{fffd}"
        );
    }
}
