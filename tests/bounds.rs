//! What one client can make the webhook hold is bounded: the decision
//! cache in bytes, the answer's `reason` and `evaluationError`, and the
//! decision log line, whatever the number of matching policies or the
//! length of the strings a client sends.

mod common;

use std::sync::Arc;
use std::time::Duration;

use cedar_authorizer::decision::MAX_STATUS_TEXT_BYTES;
use cedar_authorizer::engine::{CacheLimits, Engine, Exemptions, Outcome};
use cedar_authorizer::policy::{self, SchemaBundle};
use cedar_authorizer::sar;
use common::server::{client_config, connect, runtime, Pki, Proto, Server};
use serde_json::json;

const ALLOW_PODS: &str = r#"@id("allow-pods") permit(principal, action, resource is k8s::Resource) when { resource.resource == "pods" };"#;

fn dir_with(files: &[(&str, String)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

/// The body of a review of about `size` bytes, different for every `i`.
fn large_review(i: usize, size: usize) -> Vec<u8> {
    let groups: Vec<String> = (0..size / 64)
        .map(|g| format!("group-{i:08}-{g:04}-{}", "x".repeat(40)))
        .collect();
    let body = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": format!("user-{i}"), "groups": groups,
                 "resourceAttributes": {"verb": "get", "version": "v1", "resource": "pods", "namespace": "ns"}}});
    serde_json::to_vec(&body).unwrap()
}

/// Feeds thousands of distinct large reviews through `decide` and checks
/// that the cache fills up to near its byte bound, never past it, and
/// that a review over the per-key cap is answered but not cached.
fn check_cache_bound(decide: impl Fn(&Engine, &[u8]) -> Outcome) {
    let dir = dir_with(&[("p.cedar", ALLOW_PODS.to_owned())]);
    let schema = Arc::new(SchemaBundle::load(None).unwrap());
    let max_bytes = 1 << 20;
    let engine = Engine::new(
        policy::load(dir.path(), &schema, 1).unwrap(),
        Exemptions::default(),
        CacheLimits {
            entries: 1_000_000,
            max_bytes,
        },
    );
    let mut highest = 0;
    for i in 0..5_000 {
        let body = large_review(i, 2 * 1024);
        assert!(decide(&engine, &body).decision.status.allowed);
        let (held, bound) = engine.cache_weight();
        assert!(held <= bound, "{held} bytes held, bound {bound}");
        highest = highest.max(held);
    }
    assert_eq!(engine.cache_weight().1, max_bytes);
    // The cache was used, and filled up to near its bound, never past it.
    assert!(highest > max_bytes / 2, "highest weight {highest}");
    let entries = engine.cache_entries();
    assert!(entries > 100 && entries < 5_000, "{entries} entries");
    // A request over the per-key cap is answered but never cached.
    let huge = large_review(99_999, 16 * 1024);
    let before = engine.cache_entries();
    assert!(decide(&engine, &huge).decision.status.allowed);
    assert!(!decide(&engine, &huge).cache_hit);
    assert!(engine.cache_entries() <= before);
}

#[test]
fn many_distinct_large_reviews_keep_the_cache_under_its_byte_bound() {
    check_cache_bound(|engine, body| engine.decide(&sar::parse_review(body).unwrap().request));
}

#[test]
fn many_distinct_large_review_bodies_keep_the_cache_under_its_byte_bound() {
    check_cache_bound(|engine, body| engine.answer_review(body).unwrap().outcome);
}

#[test]
fn thousands_of_matching_policies_and_a_megabyte_username_give_bounded_answers_and_log_lines() {
    let many: String = (0..3_000)
        .map(|i| format!("@id(\"rbac-binding-{i:05}\") permit(principal, action, resource is k8s::Resource) when {{ resource.resource == \"pods\" }};\n"))
        .collect();
    let dir = dir_with(&[("many.cedar", many)]);
    let pki = Pki::new();
    let mut args = pki.serve_args();
    args.extend(
        [
            "--decision-log",
            "all",
            "--max-body-bytes",
            "4194304",
            "--request-timeout",
            "60s",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let server = Server::start(dir.path(), &args);
    let config = client_config(&pki.ca, Some((&pki.client_cert, &pki.client_key)), &[]);
    let user = format!("u{}", "x".repeat(1 << 20));
    let status = runtime().block_on(async {
        let mut c = connect(server.addr, &config, Proto::H2).await.unwrap();
        let sar = common::server::sar(&user, &["devs"], "get", "pods", "ns");
        c.authorize(&sar).await["status"].clone()
    });
    assert_eq!(status["allowed"], true);
    let reason = status["reason"].as_str().unwrap();
    assert!(
        reason.len() <= MAX_STATUS_TEXT_BYTES + 64,
        "{} bytes",
        reason.len()
    );
    assert!(reason.starts_with("cedar: allowed by policies rbac-binding-00000, rbac-binding-00001"));
    assert!(reason.ends_with("and 2992 more"), "{reason}");
    let line = server.wait_for_log(Duration::from_secs(10), |l| {
        l.contains("\"message\":\"decision\"")
    });
    assert!(
        line.len() < 8 * 1024,
        "a {} byte decision log line",
        line.len()
    );
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["policy_count"], 3000);
    assert_eq!(
        v["policies"].as_array().unwrap().len(),
        17,
        "16 ids and a count"
    );
    assert!(v["user"]
        .as_str()
        .unwrap()
        .ends_with(&format!("... ({} bytes)", user.len())));
    let log_bytes: usize = server.logs.lock().unwrap().iter().map(String::len).sum();
    assert!(
        log_bytes < 64 * 1024,
        "{log_bytes} bytes of log for one request"
    );
}
