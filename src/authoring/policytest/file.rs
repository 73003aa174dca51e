//! The policy test file format (docs/policy-authoring.md):
//!
//! ```yaml
//! cases:
//!   - name: viewers list pods
//!     request: {user: alice, groups: [viewers], verb: list, resource: pods, namespace: default}
//!     expect: allow
//!     policies: [viewers-read-all-but-secrets]   # optional
//!   - name: raw review
//!     sar: {apiVersion: authorization.k8s.io/v1, kind: SubjectAccessReview, spec: {...}}
//!     expect: no-opinion
//! ```
//!
//! Every request, short or full, becomes SubjectAccessReview JSON and goes
//! through [`crate::sar::parse_review`], the server's own parser. Each case
//! keeps the line it starts on, so failures point into the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::json;
use serde_saphyr::Spanned;

use crate::decision::Verdict;
use crate::sar::{self, AccessRequest};
use crate::yaml;

/// Why a test file could not be used at all.
#[derive(Debug, thiserror::Error)]
pub enum TestFileError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not YAML, or not a mapping with a `cases` list.
    #[error("{}:{line}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

impl TestFileError {
    /// What is wrong, without the location.
    pub fn detail(&self) -> String {
        match self {
            TestFileError::Io { source, .. } => source.to_string(),
            TestFileError::Invalid { message, .. } => message.clone(),
        }
    }

    /// The file and line the error points at.
    pub fn location(&self) -> (&Path, usize) {
        match self {
            TestFileError::Io { path, .. } => (path, 1),
            TestFileError::Invalid { path, line, .. } => (path, *line),
        }
    }
}

/// What a case expects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expectation {
    pub verdict: Verdict,
    /// The determining policies, sorted; `None` when not checked.
    pub policies: Option<Vec<String>>,
}

/// One test case, ready to run unless it was malformed.
#[derive(Clone, Debug)]
pub struct Case {
    /// `name`, or `#<n>` when the case has none.
    pub name: String,
    /// 1-based line where the case starts.
    pub line: usize,
    /// The request and the expectation, or why the case is malformed.
    pub body: Result<(AccessRequest, Expectation), String>,
}

/// A parsed test file.
#[derive(Clone, Debug)]
pub struct TestFile {
    pub path: PathBuf,
    pub cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    /// Free text for the reader.
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    /// Each case with the line it starts on.
    cases: Vec<Spanned<serde_json::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseSpec {
    name: String,
    #[serde(default)]
    request: Option<RequestSpec>,
    #[serde(default)]
    sar: Option<serde_json::Value>,
    expect: String,
    #[serde(default)]
    policies: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RequestSpec {
    user: String,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    extra: BTreeMap<String, Vec<String>>,
    verb: String,
    #[serde(default)]
    api_group: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    resource: Option<String>,
    #[serde(default)]
    subresource: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    label_selector: Option<Vec<Requirement>>,
    #[serde(default)]
    field_selector: Option<Vec<Requirement>>,
    /// Set for a non-resource request.
    #[serde(default)]
    path: Option<String>,
}

/// A selector requirement, as in the SubjectAccessReview API.
#[derive(Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct Requirement {
    key: String,
    operator: String,
    #[serde(default)]
    values: Vec<String>,
}

impl RequestSpec {
    /// The SubjectAccessReview (v1) this short form stands for.
    fn to_sar(&self) -> Result<serde_json::Value, String> {
        let mut spec = json!({ "user": self.user, "groups": self.groups });
        if let Some(uid) = &self.uid {
            spec["uid"] = json!(uid);
        }
        if !self.extra.is_empty() {
            spec["extra"] = json!(self.extra);
        }
        let resource_fields = [
            &self.api_group,
            &self.version,
            &self.resource,
            &self.subresource,
            &self.namespace,
            &self.name,
        ];
        if let Some(path) = &self.path {
            if resource_fields.iter().any(|f| f.is_some())
                || self.label_selector.is_some()
                || self.field_selector.is_some()
            {
                return Err(
                    "`path` makes a non-resource request; it cannot be combined with \
                     apiGroup, version, resource, subresource, namespace, name or selectors"
                        .into(),
                );
            }
            spec["nonResourceAttributes"] = json!({ "verb": self.verb, "path": path });
        } else {
            let mut attrs = json!({ "verb": self.verb });
            for (key, value) in [
                ("group", &self.api_group),
                ("version", &self.version),
                ("resource", &self.resource),
                ("subresource", &self.subresource),
                ("namespace", &self.namespace),
                ("name", &self.name),
            ] {
                if let Some(v) = value {
                    attrs[key] = json!(v);
                }
            }
            if let Some(reqs) = &self.label_selector {
                attrs["labelSelector"] = json!({ "requirements": reqs });
            }
            if let Some(reqs) = &self.field_selector {
                attrs["fieldSelector"] = json!({ "requirements": reqs });
            }
            spec["resourceAttributes"] = attrs;
        }
        Ok(json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": spec,
        }))
    }
}

fn parse_expect(s: &str) -> Result<Verdict, String> {
    match s {
        "allow" => Ok(Verdict::Allowed),
        "deny" => Ok(Verdict::Denied),
        "no-opinion" => Ok(Verdict::NoOpinion),
        other => Err(format!(
            "expect: {other:?} is not one of allow, deny, no-opinion"
        )),
    }
}

fn case_body(
    value: serde_json::Value,
) -> (Option<String>, Result<(AccessRequest, Expectation), String>) {
    // Read the name first, so even a malformed case is reported by name.
    let raw_name = value
        .get("name")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    let spec: CaseSpec = match serde_json::from_value(value) {
        Ok(spec) => spec,
        Err(e) => return (raw_name, Err(e.to_string())),
    };
    let body = (|| {
        let verdict = parse_expect(&spec.expect)?;
        let sar = match (&spec.request, &spec.sar) {
            (Some(r), None) => r.to_sar()?,
            (None, Some(sar)) => sar.clone(),
            _ => return Err("a case needs exactly one of `request` and `sar`".into()),
        };
        let body = serde_json::to_vec(&sar).map_err(|e| e.to_string())?;
        let review = sar::parse_review(&body).map_err(|e| format!("invalid request: {e}"))?;
        let policies = spec.policies.clone().map(|mut p| {
            p.sort();
            p.dedup();
            p
        });
        Ok((review.request, Expectation { verdict, policies }))
    })();
    (Some(spec.name), body)
}

/// Parses a test file's text. Malformed cases are kept (with the reason)
/// so they can be reported at their line; a malformed file is an error.
pub fn parse(path: &Path, text: &str) -> Result<TestFile, TestFileError> {
    let invalid = |line: usize, message: String| TestFileError::Invalid {
        path: path.to_owned(),
        line,
        message,
    };
    let spec: FileSpec = yaml::from_str(text).map_err(|e| {
        let line = e.line().unwrap_or(1);
        invalid(line, format!("not a policy test file: {e}"))
    })?;
    if spec.cases.is_empty() {
        return Err(invalid(1, "`cases` is empty".into()));
    }
    let cases = spec
        .cases
        .into_iter()
        .enumerate()
        .map(|(i, case)| {
            let line = yaml::line_of(&case);
            let (name, body) = case_body(case.value);
            Case {
                name: name.unwrap_or_else(|| format!("#{}", i + 1)),
                line,
                body,
            }
        })
        .collect();
    Ok(TestFile {
        path: path.to_owned(),
        cases,
    })
}

/// Reads and parses a test file.
pub fn read(path: &Path) -> Result<TestFile, TestFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| TestFileError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line of each item of the top-level `cases` list, as [`parse`]
    /// finds them, for a text that need not be a valid test file.
    fn case_lines(text: &str) -> Vec<usize> {
        #[derive(Deserialize)]
        struct Lines {
            cases: Vec<Spanned<serde_json::Value>>,
        }
        let lines: Lines = yaml::from_str(text).unwrap();
        lines.cases.iter().map(yaml::line_of).collect()
    }

    #[test]
    fn case_lines_follow_block_and_flow_items() {
        let text = "# header\ncases:\n  - name: a\n    request: {user: u, verb: get, path: /x}\n    expect: allow\n\n  -\n    name: b\n    expect: deny\nother: [1, 2]\n";
        assert_eq!(case_lines(text), vec![3, 8]);
        let flow = "description: x\ncases: [\n  {name: a},\n  {name: b}]\n";
        assert_eq!(case_lines(flow), vec![3, 4]);
        let nested = "cases:\n- name: a\n  request:\n    groups: [x, y]\n- name: b\n";
        assert_eq!(case_lines(nested), vec![2, 5]);
    }

    #[test]
    fn short_requests_become_reviews() {
        let file = parse(
            Path::new("t.yaml"),
            "cases:\n- name: r\n  request: {user: u, verb: get, resource: pods, namespace: d, labelSelector: [{key: app, operator: In, values: [web]}]}\n  expect: allow\n  policies: [b, a]\n- name: n\n  request: {user: u, verb: get, path: /healthz}\n  expect: no-opinion\n",
        )
        .unwrap();
        let (req, expect) = file.cases[0].body.clone().unwrap();
        assert_eq!(expect.policies, Some(vec!["a".into(), "b".into()]));
        let sar::Attributes::Resource(r) = req.attributes else {
            panic!("resource request expected")
        };
        assert_eq!(r.label_selector.unwrap()[0].operator, "in");
        assert!(file.cases[1].body.is_ok());
    }

    #[test]
    fn malformed_cases_keep_their_line_and_reason() {
        let file = parse(
            Path::new("t.yaml"),
            "cases:\n- name: ok\n  request: {user: u, verb: get, path: /x}\n  expect: allow\n- name: typo\n  request: {user: u, verb: get, path: /x, resource: pods}\n  expect: allow\n- name: bad-expect\n  request: {user: u, verb: get, path: /x}\n  expect: yes\n",
        )
        .unwrap();
        assert_eq!(file.cases[1].line, 5);
        assert!(file.cases[1].body.as_ref().unwrap_err().contains("path"));
        assert!(file.cases[2].body.is_err());
        assert!(parse(Path::new("t.yaml"), "cases: 5").is_err());
        assert!(parse(Path::new("t.yaml"), "caes: []").is_err());
    }
}
