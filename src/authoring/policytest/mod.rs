//! Policy tests: YAML files of requests and the decisions expected of
//! them, run through [`Engine::decide`], the server's own decision path.
//!
//! A run yields one [`CaseResult`] per case, and one per test file that
//! could not be read (so a broken file fails the run instead of being
//! skipped). The `test` command prints the failures as
//! `FILE:LINE: case NAME: expected X, got Y (reason)`; [`junit`] writes the
//! same results for CI systems.

mod file;
mod junit;

use std::path::{Path, PathBuf};

pub use file::{Case, Expectation, Input, TestFile, TestFileError};
pub use junit::junit;

use crate::decision::{Decision, Verdict};
use crate::engine::Engine;

/// Why test files could not be found.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    /// A path could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The paths hold no `.yaml` or `.yml` file.
    #[error("no test files (*.yaml, *.yml) found in {0}")]
    Empty(String),
}

/// The test files named by `paths`: files as given, directories searched
/// recursively for `*.yaml` and `*.yml` (names starting with `.` skipped),
/// each directory's files sorted.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, DiscoverError> {
    let out = crate::walk::expand(paths, &["yaml", "yml"]).map_err(|e| DiscoverError::Io {
        path: e.path,
        source: e.source,
    })?;
    if out.is_empty() {
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(DiscoverError::Empty(names.join(", ")));
    }
    Ok(out)
}

/// Reads a test file; see the `file` module for the format.
pub fn read(path: &Path) -> Result<TestFile, TestFileError> {
    file::read(path)
}

/// Parses test file text; `path` names it in results.
pub fn parse(path: &Path, text: &str) -> Result<TestFile, TestFileError> {
    file::parse(path, text)
}

/// How one case (or one unreadable file) ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Passed,
    /// The decision differs from the expectation.
    Failed {
        expected: String,
        got: String,
        reason: String,
    },
    /// The case or its file could not be run.
    Error(String),
}

/// One line of the report.
#[derive(Clone, Debug)]
pub struct CaseResult {
    pub file: PathBuf,
    pub line: usize,
    pub name: String,
    pub status: Status,
}

impl CaseResult {
    /// True unless the case failed or could not run.
    pub fn passed(&self) -> bool {
        self.status == Status::Passed
    }

    /// What went wrong, without the location: `expected X, got Y (reason)`.
    pub fn message(&self) -> Option<String> {
        match &self.status {
            Status::Passed => None,
            Status::Failed {
                expected,
                got,
                reason,
            } => Some(format!("expected {expected}, got {got} ({reason})")),
            Status::Error(message) => Some(message.clone()),
        }
    }

    /// `FILE:LINE: case NAME: message` (`FILE:LINE: message` for a whole
    /// file), or `None` when it passed.
    pub fn report_line(&self) -> Option<String> {
        let message = self.message()?;
        let case = if self.name.is_empty() {
            String::new()
        } else {
            format!("case {}: ", self.name)
        };
        Some(format!(
            "{}:{}: {case}{message}",
            self.file.display(),
            self.line
        ))
    }
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Allowed => "allow",
        Verdict::Denied => "deny",
        Verdict::NoOpinion => "no-opinion",
    }
}

fn describe(verdict: Verdict, policies: Option<&[String]>) -> String {
    match policies {
        Some(p) => format!("{} by [{}]", verdict_word(verdict), p.join(", ")),
        None => verdict_word(verdict).to_owned(),
    }
}

/// Compares a decision with an expectation.
pub fn judge(expect: &Expectation, decision: &Decision) -> Status {
    let verdict_ok = decision.verdict == expect.verdict;
    let policies_ok = expect
        .policies
        .as_ref()
        .is_none_or(|p| *p == decision.policies);
    if verdict_ok && policies_ok {
        return Status::Passed;
    }
    let mut reason = decision.explanation();
    if !decision.status.evaluation_error.is_empty() {
        reason.push_str("; evaluation error: ");
        reason.push_str(&decision.status.evaluation_error);
    }
    let checked = expect
        .policies
        .as_ref()
        .map(|_| decision.policies.as_slice());
    Status::Failed {
        expected: describe(expect.verdict, expect.policies.as_deref()),
        got: describe(decision.verdict, checked),
        reason,
    }
}

/// Compares an admission decision with an expectation: exempt principals'
/// no-opinion answers admit, like an allow.
pub fn judge_admission(expect: &Expectation, decision: &Decision) -> Status {
    let mut seen = decision.clone();
    if seen.verdict == Verdict::NoOpinion {
        seen.verdict = Verdict::Allowed;
    }
    match judge(expect, &seen) {
        Status::Failed {
            expected,
            got,
            reason,
        } => Status::Failed {
            expected: admission_words(&expected),
            got: admission_words(&got),
            reason,
        },
        other => other,
    }
}

fn admission_words(s: &str) -> String {
    match s.strip_prefix("allow") {
        Some(rest) => format!("admit{rest}"),
        None => s.to_owned(),
    }
}

/// Runs every case of a file.
pub fn run_file(engine: &Engine, file: &TestFile) -> Vec<CaseResult> {
    file.cases
        .iter()
        .map(|case| CaseResult {
            file: file.path.clone(),
            line: case.line,
            name: case.name.clone(),
            status: match &case.body {
                Ok((Input::Sar(request), expect)) => {
                    judge(expect, &engine.decide(request).decision)
                }
                Ok((Input::Admission(input), expect)) => {
                    judge_admission(expect, &engine.admit(input).decision)
                }
                Err(e) => Status::Error(format!("invalid case: {e}")),
            },
        })
        .collect()
}

/// The result standing for a test file that could not be read.
pub fn file_error(e: &TestFileError) -> CaseResult {
    let (path, line) = e.location();
    CaseResult {
        file: path.to_owned(),
        line,
        // No case name: the report line is about the whole file.
        name: String::new(),
        status: Status::Error(format!("invalid test file: {}", e.detail())),
    }
}

/// Reads and runs every file; unreadable files become failed results.
pub fn run(engine: &Engine, files: &[PathBuf]) -> Vec<CaseResult> {
    let mut results = Vec::new();
    for path in files {
        match read(path) {
            Ok(file) => results.extend(run_file(engine, &file)),
            Err(e) => results.push(file_error(&e)),
        }
    }
    results
}

/// `N passed, M failed`.
pub fn summary(results: &[CaseResult]) -> String {
    let passed = results.iter().filter(|r| r.passed()).count();
    format!("{passed} passed, {} failed", results.len() - passed)
}
