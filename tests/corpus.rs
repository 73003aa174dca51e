//! Every conformance scenario of `../shared/corpus`, through the library and
//! through the `check` binary: both must agree with every expectation.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

use cedar_authorizer::engine::{Engine, Exemptions};
use cedar_authorizer::policy::{self, SchemaBundle};
use cedar_authorizer::sar;

#[test]
fn corpus_through_the_library() {
    let schema = Arc::new(SchemaBundle::load(None).unwrap());
    let mut failures = Vec::new();
    let mut total = 0;
    for scenario in common::scenarios() {
        for cache_size in [0, 1024] {
            let snapshot = policy::load(&scenario.policies, &schema, 1)
                .unwrap_or_else(|e| panic!("{}: {e}", scenario.name));
            let engine = Engine::new(snapshot, Exemptions::default(), cache_size);
            // Twice with the cache on: the second pass answers from it.
            for _ in 0..if cache_size > 0 { 2 } else { 1 } {
                for case in &scenario.cases {
                    total += 1;
                    let body = serde_json::to_vec(&case.sar).unwrap();
                    let review = sar::parse_review(&body).unwrap();
                    let outcome = engine.decide(&review.request);
                    let response: serde_json::Value = serde_json::from_slice(&sar::response_json(
                        review.api_version,
                        &outcome.decision.status,
                    ))
                    .unwrap();
                    assert_eq!(response["apiVersion"], case.sar["apiVersion"]);
                    if let Some(m) = common::mismatch(&scenario.name, case, &response["status"]) {
                        failures.push(m);
                    }
                }
            }
        }
    }
    assert!(total >= 300, "only {total} cases ran");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn corpus_through_the_check_command() {
    let mut failures = Vec::new();
    for scenario in common::scenarios() {
        for case in &scenario.cases {
            let mut child = Command::new(env!("CARGO_BIN_EXE_cedar-authorizer"))
                .args(["check", "--policies"])
                .arg(&scenario.policies)
                .arg("-")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(&serde_json::to_vec(&case.sar).unwrap())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}: {}",
                case.name,
                String::from_utf8_lossy(&out.stderr)
            );
            let response: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(response["kind"], "SubjectAccessReview");
            if let Some(m) = common::mismatch(&scenario.name, case, &response["status"]) {
                failures.push(m);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
