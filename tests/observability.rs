//! Metrics and decision logs, black-box: drive the running server, scrape
//! /metrics (parsed as Prometheus text), and read the JSON decision log.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::server::{client_config, connect, runtime, Pki, Proto, Server, PATIENCE};
use serde_json::json;

/// Every sample of a Prometheus text exposition, and each metric's TYPE.
struct Scrape {
    samples: HashMap<String, f64>,
    types: HashMap<String, String>,
}

fn scrape(server: &Server) -> Scrape {
    let (status, text) = server.admin_get("/metrics");
    assert_eq!(status, 200);
    let mut samples = HashMap::new();
    let mut types = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').unwrap();
            types.insert(name.to_owned(), ty.to_owned());
        } else if !line.starts_with('#') && !line.is_empty() {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let v: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("bad sample {line}"));
            samples.insert(series.to_owned(), v);
        }
    }
    Scrape { samples, types }
}

impl Scrape {
    fn get(&self, series: &str) -> f64 {
        self.samples.get(series).copied().unwrap_or(0.0)
    }
}

const POLICIES: &str = r#"
@id("allow-pods") permit(principal, action, resource is k8s::Resource) when { resource.resource == "pods" };
@id("deny-secrets") forbid(principal, action, resource is k8s::Resource) when { resource.resource == "secrets" };
"#;

#[test]
fn every_metric_moves_as_it_should() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.cedar"), POLICIES).unwrap();
    let mut args = pki.serve_args();
    args.extend(["--reload-debounce", "50ms"].iter().map(|s| s.to_string()));
    let server = Server::start(dir.path(), &args);

    let before = scrape(&server);
    let expected_types = [
        ("cedar_authorizer_requests_total", "counter"),
        ("cedar_authorizer_request_errors_total", "counter"),
        ("cedar_authorizer_request_duration_seconds", "histogram"),
        ("cedar_authorizer_evaluation_duration_seconds", "histogram"),
        ("cedar_authorizer_cache_requests_total", "counter"),
        ("cedar_authorizer_evaluations_total", "counter"),
        ("cedar_authorizer_cache_entries", "gauge"),
        ("cedar_authorizer_policies", "gauge"),
        ("cedar_authorizer_policy_reloads_total", "counter"),
        ("cedar_authorizer_policy_generation", "gauge"),
        (
            "cedar_authorizer_last_reload_success_timestamp_seconds",
            "gauge",
        ),
        ("cedar_authorizer_evaluation_errors_total", "counter"),
        ("cedar_authorizer_exempt_total", "counter"),
        ("cedar_authorizer_tls_handshake_failures_total", "counter"),
        ("cedar_authorizer_build_info", "gauge"),
        ("process_resident_memory_bytes", "gauge"),
        ("process_open_fds", "gauge"),
        ("process_cpu_seconds_total", "counter"),
    ];
    for (name, ty) in expected_types {
        assert_eq!(
            before.types.get(name).map(String::as_str),
            Some(ty),
            "{name}"
        );
    }
    assert_eq!(
        before.get("cedar_authorizer_policies{effect=\"permit\"}"),
        1.0
    );
    assert_eq!(
        before.get("cedar_authorizer_policies{effect=\"forbid\"}"),
        1.0
    );
    assert_eq!(before.get("cedar_authorizer_policy_generation"), 1.0);
    assert!(before.get("cedar_authorizer_last_reload_success_timestamp_seconds") > 1.7e9);

    let config = client_config(&pki.ca, Some((&pki.client_cert, &pki.client_key)), &[]);
    runtime().block_on(async {
        let mut c = connect(server.addr, &config, Proto::H2).await.unwrap();
        let sar = common::server::sar;
        assert_eq!(
            c.authorize(&sar("alice", &[], "get", "pods", "a")).await["status"]["allowed"],
            true
        );
        assert_eq!(
            c.authorize(&sar("alice", &[], "get", "pods", "a")).await["status"]["allowed"],
            true
        );
        assert_eq!(
            c.authorize(&sar("alice", &[], "get", "secrets", "a")).await["status"]["denied"],
            true
        );
        assert_eq!(
            c.authorize(&sar("alice", &[], "get", "configmaps", "a"))
                .await["status"]["allowed"],
            false
        );
        c.authorize(&sar("system:kube-scheduler", &[], "get", "pods", "a"))
            .await;
        // An impersonation target: an entity the compiled policies do
        // not model, so Cedar decides it.
        assert_eq!(
            c.authorize(&sar("alice", &[], "impersonate", "users", "bob"))
                .await["status"]["allowed"],
            false
        );
        let (status, _) = c
            .request("POST", "/authorize", b"{not json".to_vec())
            .await
            .unwrap();
        assert_eq!(status, 400);
        // A client certificate from another CA is refused.
        let foreign = client_config(&pki.ca, Some((&pki.foreign_cert, &pki.foreign_key)), &[]);
        assert!(common::server::refused(server.addr, &foreign).await);
    });
    // The client can see its refusal before the server has counted it.
    server.wait_metric(
        "cedar_authorizer_tls_handshake_failures_total",
        before.get("cedar_authorizer_tls_handshake_failures_total") + 1.0,
    );

    let after = scrape(&server);
    let delta = |s: &str| after.get(s) - before.get(s);
    assert_eq!(
        delta("cedar_authorizer_requests_total{decision=\"allowed\"}"),
        2.0
    );
    assert_eq!(
        delta("cedar_authorizer_requests_total{decision=\"denied\"}"),
        1.0
    );
    assert_eq!(
        delta("cedar_authorizer_requests_total{decision=\"no_opinion\"}"),
        3.0
    );
    assert_eq!(delta("cedar_authorizer_exempt_total"), 1.0);
    assert_eq!(
        delta("cedar_authorizer_cache_requests_total{result=\"hit\"}"),
        1.0
    );
    assert_eq!(
        delta("cedar_authorizer_cache_requests_total{result=\"miss\"}"),
        4.0
    );
    assert_eq!(after.get("cedar_authorizer_cache_entries"), 4.0);
    // Each miss is evaluated once: the three RBAC-shaped ones without
    // Cedar, the impersonation through it.
    assert_eq!(
        delta("cedar_authorizer_evaluations_total{evaluator=\"compiled\"}"),
        3.0
    );
    assert_eq!(
        delta("cedar_authorizer_evaluations_total{evaluator=\"cedar\"}"),
        1.0
    );
    assert_eq!(
        delta("cedar_authorizer_request_errors_total{reason=\"malformed\"}"),
        1.0
    );
    assert!(delta("cedar_authorizer_tls_handshake_failures_total") >= 1.0);
    assert_eq!(
        delta("cedar_authorizer_request_duration_seconds_count{decision=\"allowed\"}"),
        2.0
    );
    assert_eq!(
        delta("cedar_authorizer_evaluation_duration_seconds_count"),
        5.0
    );
    // The smallest bucket is 10 µs: fine enough for cache hits.
    assert!(after.samples.contains_key(
        "cedar_authorizer_request_duration_seconds_bucket{decision=\"allowed\",le=\"0.00001\"}"
    ));
    assert_eq!(
        after.get(
            "cedar_authorizer_policy_decisions_total{effect=\"permit\",policy=\"allow-pods\"}"
        ),
        2.0
    );
    assert_eq!(
        after.get(
            "cedar_authorizer_policy_decisions_total{effect=\"forbid\",policy=\"deny-secrets\"}"
        ),
        1.0
    );
    assert_eq!(
        after.get(&format!(
            "cedar_authorizer_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        )),
        1.0
    );
    // No username, namespace or resource name is ever a label value.
    let (_, text) = server.admin_get("/metrics");
    for forbidden in ["alice", "kube-scheduler", "configmaps"] {
        assert!(!text.contains(forbidden), "{forbidden} appears in /metrics");
    }

    // A reload that fails, then one that succeeds.
    std::fs::write(dir.path().join("bad.cedar"), "permit(").unwrap();
    server.wait_metric(
        "cedar_authorizer_policy_reloads_total{result=\"failure\"}",
        1.0,
    );
    std::fs::remove_file(dir.path().join("bad.cedar")).unwrap();
    std::fs::write(
        dir.path().join("more.cedar"),
        r#"@id("more") permit(principal, action == k8s::Action::"list", resource);"#,
    )
    .unwrap();
    server.wait_metric(
        "cedar_authorizer_policy_reloads_total{result=\"success\"}",
        1.0,
    );
    let reloaded = scrape(&server);
    assert_eq!(reloaded.get("cedar_authorizer_policy_generation"), 2.0);
    assert_eq!(
        reloaded.get("cedar_authorizer_policies{effect=\"permit\"}"),
        2.0
    );
    assert_eq!(
        reloaded.get("cedar_authorizer_cache_entries"),
        0.0,
        "a new generation starts with an empty cache"
    );
}

#[test]
fn the_json_decision_log_has_its_fields_and_never_an_extra_value() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.cedar"), POLICIES).unwrap();
    let mut args = pki.serve_args();
    args.extend(["--decision-log", "all"].iter().map(|s| s.to_string()));
    let server = Server::start(dir.path(), &args);
    let secret = "AKIAEXAMPLESECRET0042";
    let config = client_config(&pki.ca, Some((&pki.client_cert, &pki.client_key)), &[]);
    runtime().block_on(async {
        let mut c = connect(server.addr, &config, Proto::H1).await.unwrap();
        let mut sar = common::server::sar("arn:aws:sts::111122223333:assumed-role/dev/s1", &["devs", "system:authenticated"], "get", "secrets", "prod");
        sar["spec"]["extra"] = json!({"accessKeyId": [secret], "canonicalArn": ["arn:aws:iam::111122223333:role/dev"]});
        assert_eq!(c.authorize(&sar).await["status"]["denied"], true);
        let nr = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": "bob", "extra": {"accessKeyId": [secret]}, "nonResourceAttributes": {"verb": "get", "path": "/healthz"}}});
        c.authorize(&nr).await;
        c.authorize(&sar).await;
    });
    let deny = server.wait_for_log(PATIENCE, |l| l.contains("\"decision\":\"denied\""));
    let v: serde_json::Value = serde_json::from_str(&deny).unwrap();
    assert_eq!(v["message"], "decision");
    assert_eq!(v["user"], "arn:aws:sts::111122223333:assumed-role/dev/s1");
    assert_eq!(
        v["groups"],
        serde_json::json!(["devs", "system:authenticated"]),
        "groups as a JSON array"
    );
    assert_eq!(v["group_count"], 2);
    assert_eq!(v["verb"], "get");
    assert_eq!(v["path"], "/api/v1/namespaces/prod/secrets");
    assert_eq!(
        v["policies"],
        serde_json::json!(["deny-secrets"]),
        "policies as a JSON array"
    );
    assert_eq!(v["why"], "cedar: denied by policy deny-secrets");
    assert_eq!(v["cache_hit"], false);
    assert!(v["latency_us"].as_u64().is_some());
    assert_eq!(
        v["extra_keys"],
        serde_json::json!(["accessKeyId", "canonicalArn"]),
        "extra keys as a JSON array"
    );
    server.wait_for_log(PATIENCE, |l| {
        l.contains("\"path\":\"/healthz\"") && l.contains("no_opinion")
    });
    server.wait_for_log(PATIENCE, |l| {
        l.contains("\"decision\":\"denied\"") && l.contains("\"cache_hit\":true")
    });
    for line in server.logs.lock().unwrap().iter() {
        assert!(!line.contains(secret), "an extra value was logged: {line}");
    }
}

#[test]
fn decision_log_denied_is_the_default_and_none_is_silent() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.cedar"), POLICIES).unwrap();
    for (flag, want_allowed, want_denied) in [(None, false, true), (Some("none"), false, false)] {
        let mut args = pki.serve_args();
        if let Some(f) = flag {
            args.extend(["--decision-log".to_string(), f.to_string()]);
        }
        let server = Server::start(dir.path(), &args);
        let config = client_config(&pki.ca, Some((&pki.client_cert, &pki.client_key)), &[]);
        runtime().block_on(async {
            let mut c = connect(server.addr, &config, Proto::H1).await.unwrap();
            c.authorize(&common::server::sar("a", &[], "get", "pods", "x"))
                .await;
            c.authorize(&common::server::sar("a", &[], "get", "secrets", "x"))
                .await;
        });
        std::thread::sleep(Duration::from_millis(200));
        let logs = server.logs.lock().unwrap().clone();
        let has = |d: &str| {
            logs.iter()
                .any(|l| l.contains(&format!("\"decision\":\"{d}\"")))
        };
        assert_eq!(has("allowed"), want_allowed, "{flag:?}");
        assert_eq!(has("denied"), want_denied, "{flag:?}");
    }
}
