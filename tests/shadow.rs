//! Shadow policies (`serve --shadow-policies DIR`), black-box: the real
//! binary over TLS, its /metrics and its JSON log. The shadow set decides
//! every request again and is never enforced; what it would change shows
//! up in `cedar_authorizer_shadow_decisions_total` and as a `shadow
//! divergence` log record, and a shadow set that does not load never
//! touches serving or readiness.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::server::{client_config, connect, runtime, sar, Conn, Pki, Proto, Server, PATIENCE};
use serde_json::{json, Value};

const LIVE: &str = r#"
@id("allow-pods") permit(principal, action, resource is k8s::Resource) when { resource.resource == "pods" };
@id("deny-secrets") forbid(principal, action, resource is k8s::Resource) when { resource.resource == "secrets" };
"#;

/// The live set plus a forbid on pods in team-b: the change under watch.
const SHADOW_FORBID: &str = r#"
@id("allow-pods") permit(principal, action, resource is k8s::Resource) when { resource.resource == "pods" };
@id("deny-secrets") forbid(principal, action, resource is k8s::Resource) when { resource.resource == "secrets" };
@id("shadow-no-team-b-pods") forbid(principal, action, resource is k8s::Resource)
  when { resource.resource == "pods" && resource has namespace && resource.namespace == "team-b" };
@id("shadow-configmaps-need-a-team") forbid(principal, action == k8s::admission::Action::"create", resource is core::v1::ConfigMap)
  unless { resource.metadata has labels && resource.metadata.labels.contains({"key": "team", "value": "x"}) };
"#;

fn series(live: &str, shadow: &str) -> String {
    format!("cedar_authorizer_shadow_decisions_total{{live=\"{live}\",shadow=\"{shadow}\"}}")
}

fn admission_series(live: &str, shadow: &str) -> String {
    format!(
        "cedar_authorizer_shadow_admission_decisions_total{{live=\"{live}\",shadow=\"{shadow}\"}}"
    )
}

/// The nine cells of the `{live, shadow}` matrix.
fn matrix(server: &Server) -> Vec<((&'static str, &'static str), f64)> {
    let verdicts = ["allowed", "denied", "no_opinion"];
    let mut out = Vec::new();
    for l in verdicts {
        for s in verdicts {
            out.push(((l, s), server.metric(&series(l, s))));
        }
    }
    out
}

fn policy_dir(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.cedar"), text).unwrap();
    dir
}

fn start(pki: &Pki, live: &Path, shadow: &Path) -> Server {
    let mut args = pki.serve_args();
    args.extend(
        [
            "--reload-debounce",
            "50ms",
            "--policy-poll-interval",
            "60s",
            "--shadow-policies",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    args.push(shadow.display().to_string());
    Server::start(live, &args)
}

fn configmap_review(team: &str) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "7e5a1c00-0000-4000-8000-00000000c0de",
            "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "resource": {"group": "", "version": "v1", "resource": "configmaps"},
            "name": "settings",
            "namespace": "default",
            "operation": "CREATE",
            "userInfo": {"username": "carol", "groups": ["devs"]},
            "object": {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "settings", "namespace": "default", "labels": {"team": team}},
                "data": {"k": "v"}
            },
            "oldObject": null,
        }
    })
}

async fn admit(c: &mut Conn, review: &Value) -> Value {
    let (status, body) = c
        .request("POST", "/admit", serde_json::to_vec(review).unwrap())
        .await
        .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

#[test]
fn a_shadow_forbid_that_live_traffic_hits_is_counted_and_logged_while_the_answer_stays_live() {
    let pki = Pki::new();
    let (live, shadow) = (policy_dir(LIVE), policy_dir(SHADOW_FORBID));
    let server = start(&pki, live.path(), shadow.path());
    assert_eq!(
        server.metric("cedar_authorizer_shadow_policy_generation"),
        1.0
    );
    assert_eq!(
        server.metric("cedar_authorizer_shadow_policies{effect=\"forbid\"}"),
        3.0
    );

    let config = client_config(&pki.ca, Some((&pki.client_cert, &pki.client_key)), &[]);
    runtime().block_on(async {
        let mut c = connect(server.addr, &config, Proto::H2).await.unwrap();
        // The shadow forbid matches; the live answer is still allowed.
        let hit = c
            .authorize(&sar("alice", &["devs"], "get", "pods", "team-b"))
            .await;
        assert_eq!(hit["status"]["allowed"], true, "{hit}");
        assert_ne!(hit["status"]["denied"], true, "{hit}");
        // Both sets agree on these.
        for (ns, resource) in [("team-a", "pods"), ("team-b", "secrets")] {
            c.authorize(&sar("alice", &["devs"], "get", resource, ns))
                .await;
        }
        // Admission: the live set has no admission policy, the shadow refuses.
        let answer = admit(&mut c, &configmap_review("y")).await;
        assert_eq!(answer["response"]["allowed"], true, "{answer}");
        let agreed = admit(&mut c, &configmap_review("x")).await;
        assert_eq!(agreed["response"]["allowed"], true, "{agreed}");
    });

    server.wait_metric(&series("allowed", "denied"), 1.0);
    server.wait_metric(&series("allowed", "allowed"), 1.0);
    server.wait_metric(&series("denied", "denied"), 1.0);
    server.wait_metric(&admission_series("admitted", "denied"), 1.0);
    server.wait_metric(&admission_series("admitted", "admitted"), 1.0);
    for ((l, s), n) in matrix(&server) {
        let want = match (l, s) {
            ("allowed", "denied") | ("allowed", "allowed") | ("denied", "denied") => 1.0,
            _ => 0.0,
        };
        assert_eq!(n, want, "live={l} shadow={s}");
    }
    // The live answers were not changed by the shadow's opinion.
    assert_eq!(
        server.metric("cedar_authorizer_requests_total{decision=\"allowed\"}"),
        2.0
    );
    assert_eq!(
        server.metric("cedar_authorizer_requests_total{decision=\"denied\"}"),
        1.0
    );
    assert_eq!(server.metric("cedar_authorizer_shadow_dropped_total"), 0.0);
    assert_eq!(
        server.metric("cedar_authorizer_shadow_divergences_total{review=\"authorize\"}"),
        1.0
    );
    assert_eq!(
        server.metric("cedar_authorizer_shadow_divergences_total{review=\"admit\"}"),
        1.0
    );

    let line = server.wait_for_log(PATIENCE, |l| {
        l.contains("\"message\":\"shadow divergence\"")
    });
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["decision"], "allowed", "{line}");
    assert_eq!(v["policies"], json!(["allow-pods"]), "{line}");
    assert_eq!(v["shadow_decision"], "denied", "{line}");
    assert_eq!(
        v["shadow_policies"],
        json!(["shadow-no-team-b-pods"]),
        "{line}"
    );
    assert_eq!(v["generation"], 1);
    assert_eq!(v["shadow_generation"], 1);
    assert_eq!(v["path"], "/api/v1/namespaces/team-b/pods");
    // The replayable request, as in a decision record.
    assert_eq!(v["record_version"], 1);
    assert_eq!(v["request"]["user"], "alice");
    assert_eq!(v["request"]["groups"], json!(["devs"]));
    assert_eq!(v["request"]["resource"]["namespace"], "team-b");

    let line = server.wait_for_log(PATIENCE, |l| {
        l.contains("\"message\":\"shadow admission divergence\"")
    });
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["decision"], "admitted", "{line}");
    assert_eq!(v["shadow_decision"], "denied", "{line}");
    assert_eq!(
        v["shadow_policies"],
        json!(["shadow-configmaps-need-a-team"]),
        "{line}"
    );
    assert_eq!(v["user"], "carol");
    let divergences = server
        .logs
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("divergence\""))
        .count();
    assert_eq!(divergences, 2, "one record per divergence");
}

#[test]
fn a_shadow_equal_to_live_never_diverges() {
    let pki = Pki::new();
    let (live, shadow) = (policy_dir(LIVE), policy_dir(LIVE));
    let server = start(&pki, live.path(), shadow.path());
    let config = client_config(&pki.ca, Some((&pki.client_cert, &pki.client_key)), &[]);
    let requests = [
        sar("alice", &[], "get", "pods", "a"),
        sar("alice", &[], "get", "pods", "a"),
        sar("alice", &[], "get", "secrets", "a"),
        sar("alice", &[], "get", "configmaps", "a"),
        sar("system:kube-scheduler", &[], "get", "secrets", "a"),
    ];
    runtime().block_on(async {
        let mut c = connect(server.addr, &config, Proto::H1).await.unwrap();
        for r in &requests {
            c.authorize(r).await;
        }
        admit(&mut c, &configmap_review("y")).await;
    });
    let total = |server: &Server| matrix(server).iter().map(|(_, n)| n).sum::<f64>();
    let start = Instant::now();
    while total(&server) < requests.len() as f64 {
        assert!(start.elapsed() < PATIENCE, "{:?}", matrix(&server));
        std::thread::sleep(Duration::from_millis(25));
    }
    server.wait_metric(&admission_series("admitted", "admitted"), 1.0);
    for ((l, s), n) in matrix(&server) {
        let want = match (l, s) {
            ("allowed", "allowed") => 2.0,
            ("denied", "denied") => 1.0,
            // One no policy matched, one exempt principal.
            ("no_opinion", "no_opinion") => 2.0,
            _ => 0.0,
        };
        assert_eq!(n, want, "live={l} shadow={s}");
    }
    assert_eq!(server.metric(&admission_series("admitted", "denied")), 0.0);
    for review in ["authorize", "admit"] {
        assert_eq!(
            server.metric(&format!(
                "cedar_authorizer_shadow_divergences_total{{review=\"{review}\"}}"
            )),
            0.0
        );
    }
    assert!(
        !server
            .logs
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("divergence\"")),
        "no divergence is logged"
    );
}

#[test]
fn a_broken_shadow_set_never_affects_serving_or_readiness() {
    let pki = Pki::new();
    let live = policy_dir(LIVE);
    let shadow = policy_dir("permit(");
    let server = start(&pki, live.path(), shadow.path());
    let config = client_config(&pki.ca, Some((&pki.client_cert, &pki.client_key)), &[]);
    let serves = |server: &Server| {
        assert_eq!(server.admin_get("/readyz").0, 200);
        runtime().block_on(async {
            let mut c = connect(server.addr, &config, Proto::H1).await.unwrap();
            let a = c
                .authorize(&sar("alice", &[], "get", "pods", "team-b"))
                .await;
            assert_eq!(a["status"]["allowed"], true, "{a}");
            let d = c.authorize(&sar("alice", &[], "get", "secrets", "x")).await;
            assert_eq!(d["status"]["denied"], true, "{d}");
        });
    };

    // At start: logged, counted, no shadow; serving and /readyz unaffected.
    let error = server.wait_for_log(PATIENCE, |l| {
        l.contains("shadow policy set not loaded") && l.contains("\"level\":\"ERROR\"")
    });
    assert!(error.contains("serving is not affected"), "{error}");
    assert_eq!(
        server.metric("cedar_authorizer_shadow_policy_generation"),
        0.0
    );
    assert!(
        server.metric("cedar_authorizer_shadow_policy_reloads_total{result=\"failure\"}") >= 1.0
    );
    assert_eq!(server.metric("cedar_authorizer_policy_generation"), 1.0);
    serves(&server);
    assert_eq!(
        matrix(&server).iter().map(|(_, n)| n).sum::<f64>(),
        0.0,
        "nothing is shadowed without a shadow set"
    );

    // Fixed: the shadow starts deciding, generation 1.
    std::fs::write(shadow.path().join("p.cedar"), SHADOW_FORBID).unwrap();
    server.wait_metric("cedar_authorizer_shadow_policy_generation", 1.0);
    serves(&server);
    server.wait_metric(&series("allowed", "denied"), 1.0);

    // A bad edit later: the last good shadow set keeps shadowing, serving
    // and readiness do not notice.
    let failures =
        server.metric("cedar_authorizer_shadow_policy_reloads_total{result=\"failure\"}");
    std::fs::write(shadow.path().join("bad.cedar"), "forbid(principal,").unwrap();
    server.wait_metric(
        "cedar_authorizer_shadow_policy_reloads_total{result=\"failure\"}",
        failures + 1.0,
    );
    assert_eq!(
        server.metric("cedar_authorizer_shadow_policy_generation"),
        1.0
    );
    serves(&server);
    server.wait_metric(&series("allowed", "denied"), 2.0);
    assert_eq!(server.metric("cedar_authorizer_policy_generation"), 1.0);
    assert_eq!(
        server.metric("cedar_authorizer_policy_reloads_total{result=\"failure\"}"),
        0.0,
        "the live set's reloads are counted apart"
    );

    // The shadow directory removed altogether: still serving and ready.
    let failures =
        server.metric("cedar_authorizer_shadow_policy_reloads_total{result=\"failure\"}");
    drop(shadow);
    server.wait_metric(
        "cedar_authorizer_shadow_policy_reloads_total{result=\"failure\"}",
        failures + 1.0,
    );
    serves(&server);
}

#[test]
fn an_empty_shadow_directory_shadows_nothing_and_emptying_it_ends_the_shadow() {
    let pki = Pki::new();
    let live = policy_dir(LIVE);
    let shadow = tempfile::tempdir().unwrap();
    let server = start(&pki, live.path(), shadow.path());
    let config = client_config(&pki.ca, Some((&pki.client_cert, &pki.client_key)), &[]);
    let send = |server: &Server| {
        runtime().block_on(async {
            let mut c = connect(server.addr, &config, Proto::H1).await.unwrap();
            let a = c
                .authorize(&sar("alice", &[], "get", "pods", "team-b"))
                .await;
            assert_eq!(a["status"]["allowed"], true, "{a}");
        });
    };
    let shadowed = |server: &Server| matrix(server).iter().map(|(_, n)| n).sum::<f64>();

    // Nothing staged: no error, nothing shadowed, no divergence.
    server.wait_for_log(PATIENCE, |l| l.contains("no shadow policy files"));
    send(&server);
    assert_eq!(shadowed(&server), 0.0);
    assert_eq!(
        server.metric("cedar_authorizer_shadow_policy_reloads_total{result=\"failure\"}"),
        0.0
    );
    assert!(!server
        .logs
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("\"level\":\"ERROR\"")));

    // Staged: generation 1, the forbid diverges.
    std::fs::write(shadow.path().join("p.cedar"), SHADOW_FORBID).unwrap();
    server.wait_metric("cedar_authorizer_shadow_policy_generation", 1.0);
    send(&server);
    server.wait_metric(&series("allowed", "denied"), 1.0);

    // Emptied: the shadow ends (generation 0) and nothing more is shadowed.
    std::fs::remove_file(shadow.path().join("p.cedar")).unwrap();
    server.wait_for_log(PATIENCE, |l| l.contains("shadow policy set cleared"));
    assert_eq!(
        server.metric("cedar_authorizer_shadow_policy_generation"),
        0.0
    );
    let before = shadowed(&server);
    send(&server);
    // Staged again: a new generation, and only the request after it is
    // shadowed (the one sent while empty never is).
    std::fs::write(shadow.path().join("p.cedar"), SHADOW_FORBID).unwrap();
    server.wait_metric("cedar_authorizer_shadow_policy_generation", 2.0);
    send(&server);
    server.wait_metric(&series("allowed", "denied"), 2.0);
    assert_eq!(shadowed(&server), before + 1.0);
}
