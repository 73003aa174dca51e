//! Policies as `cedar.k8s.aws/v1alpha1` Policy objects through the real
//! apiserver: the CRD and RBAC from `deploy/`, the webhook reading objects
//! and the directory (`--policy-source both`) as the identity the RBAC
//! binds, answers that follow applies and deletes, status on the objects,
//! and a start while the apiserver is unreachable.

use std::path::Path;
use std::time::Instant;

use serde_json::Value;

use crate::common::server::{kubectl_authorize, sar, try_http_get, PATIENCE};
use crate::e2e::cluster::{poll, webhook_kubeconfig, Cluster, Options};
use crate::e2e::kubectl::Out;
use crate::{assert_forbidden, CAROL_NO_SECRETS};

/// No `@id`: named `policy/alice-pods#0`.
const ALICE_PODS: &str = r#"// alice may read pods in every namespace; RBAC gives her nothing.
permit (
  principal == k8s::User::"alice",
  action in [k8s::Action::"get", k8s::Action::"list"],
  resource is k8s::Resource
)
when { resource.apiGroup == "" && resource.resource == "pods" };
"#;

/// Would take alice's pods away if any of it loaded; line 7 names an
/// attribute the schema does not have.
const BROKEN: &str = r#"// forbids alice her pods, but does not validate
@id("alice-no-pods")
forbid (
  principal == k8s::User::"alice",
  action,
  resource is k8s::Resource
) when { resource.colour == "red" };
"#;

/// Applies `deploy/policy-crd.yaml` and waits until the apiserver serves it.
fn install_crd(c: &Cluster) {
    c.apply(&repo_file("deploy/policy-crd.yaml"));
    let out = c.kubectl(
        "admin",
        &[
            "wait",
            "--for=condition=Established",
            "crd/policies.cedar.k8s.aws",
            "--timeout=60s",
        ],
    );
    assert!(out.ok(), "{out}");
}

fn repo_file(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A Policy object in the Go proof of concept's shape.
fn policy_yaml(name: &str, content: &str) -> String {
    let body: String = content.lines().map(|l| format!("    {l}\n")).collect();
    format!(
        "apiVersion: cedar.k8s.aws/v1alpha1
kind: Policy
metadata:
  name: {name}
spec:
  validation:
    enforced: false
  content: |
{body}"
    )
}

/// The object as the admin reads it.
fn policy_object(c: &Cluster, name: &str) -> Value {
    let out = c.kubectl("admin", &["get", "policy", name, "-o", "json"]);
    assert!(out.ok(), "kubectl get policy {name}: {out}");
    serde_json::from_str(&out.stdout).unwrap()
}

/// The Ready condition once the status describes the object's current
/// generation.
fn ready_condition(c: &Cluster, name: &str) -> Option<Value> {
    let o = policy_object(c, name);
    let generation = o["metadata"]["generation"].as_i64()?;
    let status = &o["status"];
    if status["observedGeneration"].as_i64() != Some(generation) {
        return None;
    }
    let ready = status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?
        .clone();
    (ready["observedGeneration"].as_i64() == Some(generation)).then_some(ready)
}

fn readyz(c: &Cluster) -> (u16, String) {
    try_http_get(c.webhook().admin, "/readyz").unwrap_or((0, String::new()))
}

/// A list of pods in a namespace no earlier request named, so the
/// apiserver's cache of webhook answers cannot answer it.
fn fresh_pods(n: &mut u32) -> Vec<String> {
    *n += 1;
    vec![
        "get".into(),
        "--raw".into(),
        format!("/api/v1/namespaces/ns-{n}/pods"),
    ]
}

fn alice(c: &Cluster, n: &mut u32) -> Out {
    let args = fresh_pods(n);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = c.kubectl("alice", &args);
    c.log(&format!("alice {}: {}", args[2], out.summary()));
    out
}

#[test]
#[ignore = "needs KUBEBUILDER_ASSETS (kube-apiserver + etcd); scripts/test.sh runs it"]
fn policy_objects_change_answers_report_status_and_survive_an_outage() {
    let mut c = Cluster::start(
        "policy-store",
        Options {
            policies: vec![("carol.cedar", CAROL_NO_SECRETS.into())],
            ..Options::default()
        },
    );
    install_crd(&c);
    c.apply(&repo_file("deploy/policy-rbac.yaml"));

    // The webhook again, now also reading Policy objects, as the user the
    // shipped RBAC binds.
    c.kill_webhook();
    let kubeconfig = c.kubeconfig("system:cedar-authorizer");
    c.webhook_args.extend([
        "--policy-source".into(),
        "both".into(),
        "--kubeconfig".into(),
        kubeconfig.display().to_string(),
    ]);
    c.start_webhook();
    poll(
        PATIENCE,
        "/readyz once the objects are listed",
        || (readyz(&c).0 == 200).then_some(()),
        || format!("{:?}", readyz(&c)),
    );
    let mut n = 0;
    assert_forbidden(&alice(&c, &mut n));

    // Apply: the answer changes.
    c.apply(&policy_yaml("alice-pods", ALICE_PODS));
    let applied = Instant::now();
    // A namespace of its own per attempt: no cached denial delays the flip.
    let allowed = poll(
        PATIENCE,
        "alice allowed after the apply",
        || Some(alice(&c, &mut n)).filter(Out::ok),
        String::new,
    );
    let flip = applied.elapsed();
    c.log(&format!(
        "Policy applied: alice's answer changed after {:.2}s (time of the kubectl run included): {}",
        flip.as_secs_f64(),
        allowed.summary()
    ));
    let ready = poll(
        PATIENCE,
        "alice-pods Ready",
        || ready_condition(&c, "alice-pods"),
        || policy_object(&c, "alice-pods").to_string(),
    );
    assert_eq!(ready["status"], "True", "{ready}");
    assert_eq!(ready["reason"], "Loaded", "{ready}");
    assert_eq!(
        policy_object(&c, "alice-pods")["status"]["policies"],
        1,
        "status.policies"
    );
    c.log(&format!("alice-pods status: {ready}"));

    // Apply an invalid one: the last good set keeps serving, the object
    // says why with the line.
    let failures = || {
        c.webhook().metric(
            "cedar_authorizer_policy_reloads_total",
            &[("result", "failure")],
        )
    };
    let failures_before = failures();
    c.apply(&policy_yaml("broken", BROKEN));
    let refused = poll(
        PATIENCE,
        "broken Ready=False",
        || ready_condition(&c, "broken"),
        || policy_object(&c, "broken").to_string(),
    );
    c.log(&format!("broken status: {refused}"));
    assert_eq!(refused["status"], "False", "{refused}");
    assert_eq!(refused["reason"], "Invalid", "{refused}");
    let message = refused["message"].as_str().unwrap();
    assert!(message.starts_with("spec.content:7:"), "{message}");
    assert!(message.contains("colour"), "{message}");
    assert!(
        failures() > failures_before,
        "the set with broken in it did not load"
    );
    assert!(
        alice(&c, &mut n).ok(),
        "the invalid forbid loosened or tightened the set"
    );
    let still = ready_condition(&c, "alice-pods").unwrap();
    assert_eq!(still["status"], "True", "{still}");
    let table = c.kubectl("admin", &["get", "policies"]);
    c.log(&format!("kubectl get policies:\n{}", table.stdout));
    let header = table.stdout.lines().next().unwrap_or_default();
    for column in ["NAME", "POLICIES", "READY", "MESSAGE"] {
        assert!(header.contains(column), "{}", table.stdout);
    }
    assert!(
        table.stdout.lines().any(|l| l.starts_with("broken")
            && l.contains("False")
            && l.contains("spec.content:7:")),
        "{}",
        table.stdout
    );

    // Delete: its policies are gone (once the broken one is gone too: while
    // any source is invalid, the last good set stays whole).
    let out = c.kubectl("admin", &["delete", "policy", "broken"]);
    assert!(out.ok(), "{out}");
    let out = c.kubectl("admin", &["delete", "policy", "alice-pods"]);
    assert!(out.ok(), "{out}");
    let deleted = Instant::now();
    let refused = poll(
        PATIENCE,
        "alice refused after the delete",
        || Some(alice(&c, &mut n)).filter(|o| !o.ok()),
        String::new,
    );
    c.log(&format!(
        "Policy deleted: alice refused again after {:.2}s",
        deleted.elapsed().as_secs_f64()
    ));
    assert_forbidden(&refused);

    // A restart while the apiserver is unreachable: unready, answering
    // nothing (not the directory alone), until the objects are listed.
    c.apply(&policy_yaml("alice-pods", ALICE_PODS));
    poll(
        PATIENCE,
        "alice-pods Ready again",
        || ready_condition(&c, "alice-pods").filter(|r| r["status"] == "True"),
        || policy_object(&c, "alice-pods").to_string(),
    );
    c.kill_webhook();
    c.signal_apiserver("STOP");
    c.start_webhook();
    let (code, body) = readyz(&c);
    c.log(&format!(
        "started with the apiserver stopped: /readyz {code} {body}"
    ));
    assert_eq!(code, 503, "{body}");
    let direct = c.dir.path().join("direct.kubeconfig");
    let port = c.webhook_port;
    std::fs::write(
        &direct,
        webhook_kubeconfig(port, &c.pki)
            .replace(&format!(":{port}/authorize"), &format!(":{port}")),
    )
    .unwrap();
    let out = kubectl_authorize(&direct, &sar("alice", &[], "list", "pods", "default"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    c.log(&format!("a review while not loaded: {}", stderr.trim()));
    assert!(
        !out.status.success(),
        "answered before the objects were listed"
    );
    // kubectl shows its own words for a 503; the webhook counts why.
    assert!(stderr.contains("ServiceUnavailable"), "{stderr}");
    let not_loaded = c.webhook().metric(
        "cedar_authorizer_request_errors_total",
        &[("reason", "not_loaded")],
    );
    assert!(not_loaded >= 1.0, "refused for another reason: {stderr}");
    c.signal_apiserver("CONT");
    let resumed = Instant::now();
    poll(
        PATIENCE,
        "/readyz after the apiserver came back",
        || (readyz(&c).0 == 200).then_some(()),
        || format!("{:?}", readyz(&c)),
    );
    c.log(&format!(
        "apiserver back: webhook ready after {:.2}s",
        resumed.elapsed().as_secs_f64()
    ));
    let out = kubectl_authorize(&direct, &sar("alice", &[], "list", "pods", "default"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["status"]["allowed"], true, "{answer}");
    let carol = kubectl_authorize(&direct, &sar("carol", &[], "get", "secrets", "default"));
    let carol: Value = serde_json::from_slice(&carol.stdout).unwrap();
    assert_eq!(
        carol["status"]["denied"], true,
        "the directory's forbid: {carol}"
    );
}

#[test]
#[ignore = "needs KUBEBUILDER_ASSETS (kube-apiserver + etcd); scripts/test.sh runs it"]
fn an_invalid_policy_is_refused_at_apply_time() {
    let c = Cluster::start(
        "policy-admission",
        Options {
            policies: vec![("carol.cedar", CAROL_NO_SECRETS.into())],
            admission: true,
            ..Options::default()
        },
    );
    install_crd(&c);
    let file = c.dir.path().join("broken.yaml");
    std::fs::write(&file, policy_yaml("broken", BROKEN)).unwrap();
    let refused = c.kubectl("admin", &["apply", "-f", file.to_str().unwrap()]);
    c.log(&format!("apply of an invalid Policy: {refused}"));
    assert!(!refused.ok(), "{refused}");
    assert!(refused.stderr.contains("denied the request"), "{refused}");
    assert!(refused.stderr.contains("spec.content:7:10"), "{refused}");
    let out = c.kubectl("admin", &["get", "policies", "-o", "name"]);
    assert!(!out.stdout.contains("broken"), "{out}");
    // A valid one goes through.
    c.apply(&policy_yaml("alice-pods", ALICE_PODS));
}
