//! `replay` on a log recorded by the running server: replayed under a
//! changed policy set, it reports exactly the changes that deciding the
//! same requests offline (the `check` path) shows, and counts as not
//! replayable exactly the records a policy would read an unrecorded
//! `extra` value of.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cedar_authorizer::engine::{Engine, Exemptions};
use cedar_authorizer::policy::{self, SchemaBundle};
use cedar_authorizer::sar;
use common::server::{client_config, connect, runtime, Pki, Proto, Server};
use serde_json::{json, Value};

fn copy_dir(from: &Path, to: &Path) {
    for entry in walk(from) {
        let rel = entry.strip_prefix(from).unwrap();
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&entry, dest).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "cedar") {
            out.push(p);
        }
    }
    out
}

/// A few thousand varied reviews against the example library's policies.
fn reviews() -> Vec<Value> {
    let users = [
        ("alice", vec!["team-a", "developers"]),
        ("bob", vec!["platform"]),
        ("carol", vec!["viewers"]),
        (
            "system:serviceaccount:team-a:builder",
            vec!["system:serviceaccounts"],
        ),
        ("system:node:worker-1", vec!["system:nodes"]),
        (
            "arn:aws:sts::111122223333:assumed-role/ci-deployer/s1",
            vec!["system:authenticated"],
        ),
        ("mallory", vec![]),
    ];
    let verbs = [
        "get", "list", "watch", "create", "update", "delete", "patch",
    ];
    let resources = [
        ("", "pods"),
        ("", "secrets"),
        ("", "events"),
        ("", "configmaps"),
        ("apps", "deployments"),
        ("", "nodes"),
    ];
    let namespaces = ["team-a", "team-b", "kube-system", "default", ""];
    let mut out = Vec::new();
    for (i, (user, groups)) in users.iter().enumerate() {
        for verb in verbs {
            for (group, resource) in resources {
                for ns in namespaces {
                    let mut spec = json!({
                        "user": user,
                        "groups": groups,
                        "resourceAttributes": {"verb": verb, "group": group, "version": "v1",
                            "resource": resource, "namespace": ns, "name": if verb == "get" { "x" } else { "" }},
                    });
                    if user.starts_with("arn:") {
                        spec["extra"] =
                            json!({"canonicalArn": ["arn:aws:iam::111122223333:role/ci-deployer"]});
                        // Half the role's requests also carry an access key id.
                        if ns.len() % 2 == 0 {
                            spec["extra"]["accessKeyId"] = json!(["AKIAEXAMPLE"]);
                        }
                    }
                    if i == 4 {
                        spec["extra"] =
                            json!({"authentication.kubernetes.io/node-name": ["worker-1"]});
                    }
                    out.push(json!({"apiVersion": "authorization.k8s.io/v1",
                        "kind": "SubjectAccessReview", "spec": spec}));
                }
            }
        }
    }
    out.push(json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": "carol", "groups": ["viewers"], "nonResourceAttributes": {"verb": "get", "path": "/healthz"}}}));
    out
}

/// Records the decisions of `reviews` as the server logs them.
fn record(policies: &Path, reviews: &[Value]) -> Vec<String> {
    let pki = Pki::new();
    let mut args = pki.serve_args();
    args.extend(["--decision-log", "all"].iter().map(|s| s.to_string()));
    let server = Server::start(policies, &args);
    let config = client_config(&pki.ca, Some((&pki.client_cert, &pki.client_key)), &[]);
    runtime().block_on(async {
        let mut c = connect(server.addr, &config, Proto::H1).await.unwrap();
        for r in reviews {
            c.authorize(r).await;
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let lines: Vec<String> = server
            .logs
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("\"target\":\"cedar_authorizer::decision\""))
            .cloned()
            .collect();
        if lines.len() >= reviews.len() {
            // Other events too, as a real log would hold them.
            return server.logs.lock().unwrap().clone();
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} decisions logged",
            lines.len(),
            reviews.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn engine(dir: &Path) -> Engine {
    let schema = Arc::new(SchemaBundle::load(None).unwrap());
    Engine::new(
        policy::load(dir, &schema, 1).unwrap(),
        Exemptions::default(),
        0,
    )
}

const CHANGE: &str = r#"
// Events readable in every namespace, not only team ones.
@id("all-events")
permit (principal in k8s::Group::"developers", action in [k8s::Action::"get", k8s::Action::"list"], resource is k8s::Resource)
when { resource.resource == "events" };

// A forbid that reads an extra key whose values are never recorded.
@id("no-static-keys")
forbid (principal is k8s::User, action == k8s::Action::"delete", resource)
when { principal.hasTag("accessKeyId") };
"#;

#[test]
fn replay_of_a_served_log_reports_exactly_the_changes_check_shows() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let live = root.join("policies");
    let reviews = reviews();
    assert!(reviews.len() > 1000);
    let log_lines = record(&live, &reviews);
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("decisions.log");
    std::fs::write(&log, log_lines.join("\n") + "\n").unwrap();
    assert!(
        !log_lines.iter().any(|l| l.contains("AKIAEXAMPLE")),
        "an access key id was logged"
    );

    let changed = tmp.path().join("changed");
    copy_dir(&live, &changed);
    std::fs::write(changed.join("change.cedar"), CHANGE).unwrap();
    // The secrets guardrail goes: kube-system secrets fall through to RBAC.
    std::fs::remove_file(changed.join("guardrails/secrets.cedar")).unwrap();

    // What the same reviews get offline, under each set.
    let (old, new) = (engine(&live), engine(&changed));
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    let mut inexact = 0;
    for r in &reviews {
        let req = sar::parse_review(r.to_string().as_bytes()).unwrap().request;
        if req.extra.contains_key("accessKeyId") {
            inexact += 1;
            continue;
        }
        let (o, n) = (old.decide(&req).decision, new.decide(&req).decision);
        if o.verdict != n.verdict {
            *expected
                .entry(format!("{} -> {}", o.verdict.as_str(), n.verdict.as_str()))
                .or_default() += 1;
        }
    }
    assert!(
        expected.len() >= 2,
        "the change must move answers more than one way: {expected:?}"
    );

    let replay_under = |policies: &Path, extra: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_cedar-authorizer"))
            .arg("replay")
            .arg("--policies")
            .arg(policies)
            .args(["--format", "json"])
            .args(extra)
            .arg(&log)
            .output()
            .unwrap();
        let report: Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
        (o.status.code(), report)
    };
    let replay = |extra: &[&str]| replay_under(&changed, extra);
    for baseline in [None, Some(&live)] {
        let extra: Vec<&str> = match baseline {
            Some(b) => vec!["--baseline", b.to_str().unwrap()],
            None => vec![],
        };
        let (code, report) = replay(&extra);
        assert_eq!(code, Some(0));
        assert_eq!(report["records"], reviews.len() as u64, "{report}");
        assert_eq!(report["not_replayable_exactly"], inexact, "{report}");
        assert_eq!(report["unrecorded_keys_read"], json!(["accessKeyId"]));
        assert_eq!(
            report["replayed"],
            reviews.len() as u64 - inexact,
            "{report}"
        );
        let got: BTreeMap<String, u64> = report["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    format!(
                        "{} -> {}",
                        c["from"].as_str().unwrap(),
                        c["to"].as_str().unwrap()
                    ),
                    c["count"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(got, expected, "baseline {baseline:?}");
        let causes: Vec<&str> = report["changes"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["policies"].as_object().unwrap().keys())
            .map(String::as_str)
            .collect();
        assert!(causes.contains(&"all-events"), "{causes:?}");
        assert!(causes.contains(&"forbid-kube-system-secrets"), "{causes:?}");
        for c in report["changes"].as_array().unwrap() {
            assert!(!c["examples"].as_array().unwrap().is_empty());
        }
    }
    let (code, _) = replay(&["--fail-on-change"]);
    assert_eq!(code, Some(1));
    // The live set itself replays without a change: the record holds all
    // the engine reads.
    let (code, report) = replay_under(&live, &["--fail-on-change"]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["changed"], 0);
}
