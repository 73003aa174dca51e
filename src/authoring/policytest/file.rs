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
//!   - name: no prod configmaps
//!     admission:
//!       user: test-user
//!       operation: create            # create, update, delete, connect
//!       object: {apiVersion: v1, kind: ConfigMap, metadata: {name: prod-x, namespace: default}}
//!       # oldObject: {...}, or objectFile / oldObjectFile: paths beside the test file
//!     expect: deny                   # admit or deny
//!   - name: raw admission review
//!     admissionReview: {apiVersion: admission.k8s.io/v1, kind: AdmissionReview, request: {...}}
//!     expect: admit
//! ```
//!
//! Every request, short or full, becomes SubjectAccessReview (or
//! AdmissionReview) JSON and goes through the server's own parser
//! ([`crate::sar::parse_review`], [`crate::admission::parse_review`]). Each
//! case keeps the line it starts on, so failures point into the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::json;
use serde_saphyr::Spanned;

use crate::admission::{self, AdmissionInput};
use crate::decision::Verdict;
use crate::sar::{self, AccessRequest};
use crate::yaml;

/// What a case asks about.
#[derive(Clone, Debug)]
pub enum Input {
    Sar(Box<AccessRequest>),
    Admission(Box<AdmissionInput>),
}

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
    pub body: Result<(Input, Expectation), String>,
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
    #[serde(default)]
    admission: Option<AdmissionSpec>,
    #[serde(default, rename = "admissionReview")]
    admission_review: Option<serde_json::Value>,
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

/// The short form of an admission request.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AdmissionSpec {
    user: String,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    extra: BTreeMap<String, Vec<String>>,
    operation: String,
    #[serde(default)]
    object: Option<serde_json::Value>,
    #[serde(default)]
    object_file: Option<PathBuf>,
    #[serde(default)]
    old_object: Option<serde_json::Value>,
    #[serde(default)]
    old_object_file: Option<PathBuf>,
    /// The resource (`configmaps`); by default the kind in lower case
    /// with an `s`, which only logs show.
    #[serde(default)]
    resource: Option<String>,
    #[serde(default)]
    subresource: Option<String>,
}

/// An object given inline or as a (JSON or YAML) file beside the test.
fn object_of(
    inline: &Option<serde_json::Value>,
    file: &Option<PathBuf>,
    base: &Path,
    field: &str,
) -> Result<Option<serde_json::Value>, String> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(format!("give {field} or {field}File, not both")),
        (Some(v), None) => Ok(Some(v.clone())),
        (None, Some(f)) => {
            let path = base.join(f);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("{field}File {}: {e}", path.display()))?;
            yaml::from_str::<serde_json::Value>(&text)
                .map(Some)
                .map_err(|e| format!("{field}File {}: {e}", path.display()))
        }
        (None, None) => Ok(None),
    }
}

impl AdmissionSpec {
    /// The AdmissionReview this short form stands for.
    fn to_review(&self, base: &Path) -> Result<serde_json::Value, String> {
        let operation = match self.operation.to_ascii_lowercase().as_str() {
            op @ ("create" | "update" | "delete" | "connect") => op.to_ascii_uppercase(),
            other => {
                return Err(format!(
                    "operation: {other:?} is not one of create, update, delete, connect"
                ))
            }
        };
        let object = object_of(&self.object, &self.object_file, base, "object")?;
        let old = object_of(&self.old_object, &self.old_object_file, base, "oldObject")?;
        let typed = object
            .as_ref()
            .or(old.as_ref())
            .ok_or("an admission case needs an object or an oldObject")?;
        let api_version = typed["apiVersion"].as_str().unwrap_or_default();
        let kind = typed["kind"].as_str().unwrap_or_default();
        if api_version.is_empty() || kind.is_empty() {
            return Err("the object needs apiVersion and kind".into());
        }
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let meta = &typed["metadata"];
        let resource = self
            .resource
            .clone()
            .unwrap_or_else(|| format!("{}s", kind.to_ascii_lowercase()));
        let mut user = json!({ "username": self.user, "groups": self.groups });
        if let Some(uid) = &self.uid {
            user["uid"] = json!(uid);
        }
        if !self.extra.is_empty() {
            user["extra"] = json!(self.extra);
        }
        let mut request = json!({
            "uid": "policy-test",
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "name": meta["name"].as_str().unwrap_or_default(),
            "operation": operation,
            "userInfo": user,
            "object": object,
            "oldObject": old,
        });
        if let Some(ns) = meta["namespace"].as_str() {
            request["namespace"] = json!(ns);
        }
        if let Some(sub) = &self.subresource {
            request["subResource"] = json!(sub);
        }
        Ok(json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": request,
        }))
    }
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

/// `admit` or `deny`; an admitted request is [`Verdict::Allowed`].
fn parse_admission_expect(s: &str) -> Result<Verdict, String> {
    match s {
        "admit" => Ok(Verdict::Allowed),
        "deny" => Ok(Verdict::Denied),
        other => Err(format!(
            "expect: {other:?} is not one of admit, deny (an admission case)"
        )),
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
    base: &Path,
) -> (Option<String>, Result<(Input, Expectation), String>) {
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
        let policies = spec.policies.clone().map(|mut p| {
            p.sort();
            p.dedup();
            p
        });
        let admission_review = match (&spec.admission, &spec.admission_review) {
            (Some(a), None) => Some(a.to_review(base)?),
            (None, Some(r)) => Some(r.clone()),
            (None, None) => None,
            (Some(_), Some(_)) => {
                return Err("give `admission` or `admissionReview`, not both".into())
            }
        };
        let input = match (&spec.request, &spec.sar, admission_review) {
            (Some(r), None, None) => sar_input(&r.to_sar()?)?,
            (None, Some(sar), None) => sar_input(sar)?,
            (None, None, Some(review)) => {
                let body = serde_json::to_vec(&review).map_err(|e| e.to_string())?;
                let input = admission::parse_review(&body)
                    .map_err(|e| format!("invalid admission request: {e}"))?;
                let verdict = parse_admission_expect(&spec.expect)?;
                return Ok((
                    Input::Admission(Box::new(input)),
                    Expectation { verdict, policies },
                ));
            }
            _ => return Err(
                "a case needs exactly one of `request`, `sar`, `admission` and `admissionReview`"
                    .into(),
            ),
        };
        let verdict = parse_expect(&spec.expect)?;
        Ok((input, Expectation { verdict, policies }))
    })();
    (Some(spec.name), body)
}

fn sar_input(sar: &serde_json::Value) -> Result<Input, String> {
    let body = serde_json::to_vec(sar).map_err(|e| e.to_string())?;
    let review = sar::parse_review(&body).map_err(|e| format!("invalid request: {e}"))?;
    Ok(Input::Sar(Box::new(review.request)))
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
            let base = path.parent().unwrap_or(Path::new("."));
            let (name, body) = case_body(case.value, base);
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
        let (Input::Sar(req), expect) = file.cases[0].body.clone().unwrap() else {
            panic!("a SubjectAccessReview case")
        };
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
