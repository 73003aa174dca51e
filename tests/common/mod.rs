//! Helpers shared by the black-box tests: the conformance corpus, and
//! certificates and servers made at test time.
#![allow(dead_code)]

pub mod server;

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// `../shared` beside the project root (CI lays it there too).
pub fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared")
}

pub fn corpus_dir() -> PathBuf {
    shared_dir().join("corpus")
}

/// What a corpus case expects.
#[derive(Debug, Deserialize)]
pub struct Expect {
    pub allowed: bool,
    pub denied: bool,
    pub policies: Vec<String>,
}

/// One corpus case.
#[derive(Debug, Deserialize)]
pub struct Case {
    pub name: String,
    pub sar: serde_json::Value,
    pub expect: Expect,
}

/// One scenario: a policy directory and its cases.
pub struct Scenario {
    pub name: String,
    pub policies: PathBuf,
    pub cases: Vec<Case>,
}

/// Every scenario of the corpus, sorted by name.
pub fn scenarios() -> Vec<Scenario> {
    let mut out = Vec::new();
    let dir = corpus_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the corpus must be at ../shared/corpus)",
            dir.display()
        )
    });
    for entry in entries {
        let path = entry.unwrap().path();
        let cases = path.join("cases.json");
        if !cases.exists() {
            continue;
        }
        let text = std::fs::read_to_string(&cases).unwrap();
        out.push(Scenario {
            name: path.file_name().unwrap().to_string_lossy().into_owned(),
            policies: path.join("policies"),
            cases: serde_json::from_str(&text).unwrap(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(
        out.len() >= 2,
        "expected the corpus scenarios in {}",
        dir.display()
    );
    out
}

/// Checks a response status against a case's expectation; returns a
/// description of the mismatch.
pub fn mismatch(scenario: &str, case: &Case, status: &serde_json::Value) -> Option<String> {
    let allowed = status["allowed"].as_bool().unwrap_or(false);
    let denied = status["denied"].as_bool().unwrap_or(false);
    let reason = status["reason"].as_str().unwrap_or("");
    let missing: Vec<&String> = case
        .expect
        .policies
        .iter()
        .filter(|p| !reason_names(reason, p))
        .collect();
    if allowed != case.expect.allowed || denied != case.expect.denied || !missing.is_empty() {
        Some(format!(
            "{scenario}/{}: expected allowed={} denied={} policies={:?}, got {status}",
            case.name, case.expect.allowed, case.expect.denied, case.expect.policies
        ))
    } else {
        None
    }
}

/// True when `reason` names policy `id` as a whole list item.
pub fn reason_names(reason: &str, id: &str) -> bool {
    let list = reason
        .split_once(" by policies ")
        .or_else(|| reason.split_once(" by policy "))
        .map(|(_, l)| l)
        .unwrap_or("");
    let list = list.split(" (").next().unwrap_or(list);
    list.split(", ").any(|item| item == id)
}
