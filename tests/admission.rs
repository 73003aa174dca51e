//! Admission: AdmissionReviews decided by the same policies as
//! authorization (docs/policy-model.md, "Admission"). The Go proof of
//! concept's demo admission policies, unchanged, over reviews shaped as the
//! apiserver sends them; the object conversion's edges; `/admit` over TLS;
//! `check` and policy tests with admission cases.

mod common;

use std::path::Path;
use std::sync::Arc;

use cedar_authorizer::admission::{self, AdmissionInput};
use cedar_authorizer::decision::Verdict;
use cedar_authorizer::engine::{self, Engine, Exemptions};
use cedar_authorizer::policy::{PolicyFile, SchemaBundle, Snapshot};
use common::server::{client_config, connect, runtime, InProcess, Pki, Proto};
use serde_json::{json, Value};

/// The demo Policy objects of the Go proof of concept as policy files.
/// `self-node-policy` reads the optional `principal.extra` without `has`,
/// which no strict validator accepts (the Go schema's `extra` is optional
/// too); it is left out here and checked apart below.
fn go_demo(include_self_node: bool) -> Vec<PolicyFile> {
    let path = common::shared_dir()
        .join("anchors/cedar-access-control-for-k8s/demo-admission-policy.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let docs = cedar_authorizer::yaml::documents::<Value>(&text).unwrap();
    docs.iter()
        .filter_map(|d| {
            let name = d.value["metadata"]["name"].as_str()?;
            (include_self_node || name != "self-node-policy").then(|| PolicyFile {
                relative: format!("demo/{name}.cedar"),
                path: format!("demo/{name}.cedar").into(),
                text: d.value["spec"]["content"].as_str().unwrap().into(),
            })
        })
        .collect()
}

fn snapshot(files: &[PolicyFile]) -> Snapshot {
    let schema = Arc::new(SchemaBundle::load(None).unwrap());
    Snapshot::build(files, &schema, 1).unwrap_or_else(|e| panic!("{e}"))
}

fn text_snapshot(text: &str) -> Snapshot {
    snapshot(&[PolicyFile {
        relative: "p.cedar".into(),
        path: "p.cedar".into(),
        text: text.into(),
    }])
}

/// An AdmissionReview as the apiserver sends it.
fn review(
    op: &str,
    user: &str,
    groups: &[&str],
    object: Option<Value>,
    old: Option<Value>,
) -> Value {
    let typed = object.as_ref().or(old.as_ref()).unwrap();
    let api_version = typed["apiVersion"].as_str().unwrap();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let kind = typed["kind"].as_str().unwrap();
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0b1a2c3d",
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": format!("{}s", kind.to_lowercase())},
            "name": typed["metadata"]["name"],
            "namespace": typed["metadata"]["namespace"],
            "operation": op,
            "userInfo": {"username": user, "groups": groups},
            "object": object,
            "oldObject": old,
        }
    })
}

fn configmap(name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "data": {"k": "v"}
    })
}

fn input(review: &Value) -> AdmissionInput {
    admission::parse_review(&serde_json::to_vec(review).unwrap()).unwrap()
}

fn decide(s: &Snapshot, review: &Value) -> (Verdict, Vec<String>) {
    let d = engine::evaluate_admission(s, &input(review));
    (d.verdict, d.policies)
}

#[test]
fn the_go_demo_admission_policies_validate_unchanged() {
    let s = snapshot(&go_demo(false));
    let admission_forbids = s
        .policies
        .iter()
        .filter(|p| s.forbids.contains(&p.id))
        .count();
    assert!(admission_forbids >= 4, "{:?}", s.policies);

    // The one demo file that does not validate fails on `principal.extra`
    // alone, an authorization policy that the Go schema rejects as well.
    let schema = Arc::new(SchemaBundle::load(None).unwrap());
    let err = Snapshot::build(&go_demo(true), &schema, 1)
        .err()
        .expect("self-node-policy reads an optional attribute without `has`")
        .to_string();
    assert!(err.contains("self-node-policy.cedar"), "{err}");
    for line in err.lines().filter(|l| l.contains(": for policy")) {
        assert!(line.contains("optional attribute `extra`"), "{line}");
    }
}

#[test]
fn the_go_demo_decides_as_its_documentation_says() {
    let s = snapshot(&go_demo(false));
    let combined = "demo/combined-policy.cedar#1".to_owned();
    let owner_label = "demo/label-enforcement-policy.cedar#2".to_owned();
    let owner_only = "demo/label-enforcement-policy.cedar#3".to_owned();
    let none = json!({});
    let owned_by = |who: &str| json!({"owner": who});

    // test-user may not create or update configmaps named prod*.
    for op in ["CREATE", "UPDATE"] {
        let old = (op == "UPDATE").then(|| configmap("prod-x", none.clone()));
        let r = review(
            op,
            "test-user",
            &["system:authenticated"],
            Some(configmap("prod-x", none.clone())),
            old,
        );
        assert_eq!(
            decide(&s, &r),
            (Verdict::Denied, vec![combined.clone()]),
            "{op}"
        );
    }
    let dev = review(
        "CREATE",
        "test-user",
        &[],
        Some(configmap("dev-x", none.clone())),
        None,
    );
    assert_eq!(decide(&s, &dev).0, Verdict::Allowed);
    // Deleting is not covered by that forbid.
    let delete = review(
        "DELETE",
        "test-user",
        &[],
        None,
        Some(configmap("prod-x", none.clone())),
    );
    assert_eq!(decide(&s, &delete).0, Verdict::Allowed);
    // Someone else may create prod configmaps.
    let other = review(
        "CREATE",
        "bob",
        &[],
        Some(configmap("prod-x", none.clone())),
        None,
    );
    assert_eq!(decide(&s, &other).0, Verdict::Allowed);

    // requires-labels: the owner label must name the user...
    let g = &["requires-labels"];
    let unlabeled = review(
        "CREATE",
        "sample-user",
        g,
        Some(configmap("a", none.clone())),
        None,
    );
    assert_eq!(
        decide(&s, &unlabeled),
        (Verdict::Denied, vec![owner_label.clone()])
    );
    let wrong = review(
        "CREATE",
        "sample-user",
        g,
        Some(configmap("a", owned_by("bob"))),
        None,
    );
    assert_eq!(decide(&s, &wrong).0, Verdict::Denied);
    let right = review(
        "CREATE",
        "sample-user",
        g,
        Some(configmap("a", owned_by("sample-user"))),
        None,
    );
    assert_eq!(decide(&s, &right).0, Verdict::Allowed);
    // ...and an update needs the old object to be theirs too.
    let takeover = review(
        "UPDATE",
        "sample-user",
        g,
        Some(configmap("a", owned_by("sample-user"))),
        Some(configmap("a", owned_by("bob"))),
    );
    assert_eq!(decide(&s, &takeover), (Verdict::Denied, vec![owner_only]));
    let own_update = review(
        "UPDATE",
        "sample-user",
        g,
        Some(configmap("a", json!({"owner": "sample-user", "x": "y"}))),
        Some(configmap("a", owned_by("sample-user"))),
    );
    assert_eq!(decide(&s, &own_update).0, Verdict::Allowed);
    // On delete the object evaluated is the one being deleted.
    let delete_theirs = review(
        "DELETE",
        "sample-user",
        g,
        None,
        Some(configmap("a", owned_by("bob"))),
    );
    assert_eq!(
        decide(&s, &delete_theirs),
        (Verdict::Denied, vec![owner_label])
    );
    let delete_own = review(
        "DELETE",
        "sample-user",
        g,
        None,
        Some(configmap("a", owned_by("sample-user"))),
    );
    assert_eq!(decide(&s, &delete_own).0, Verdict::Allowed);
    // Users outside the group are not concerned.
    let outside = review(
        "CREATE",
        "alice",
        &["devs"],
        Some(configmap("a", none)),
        None,
    );
    assert_eq!(decide(&s, &outside).0, Verdict::Allowed);
}

#[test]
fn permits_do_not_matter_and_an_erroring_forbid_refuses() {
    let s = text_snapshot(
        r#"
        @id("permit-everything")
        permit (principal, action, resource);
        @id("needs-team-label")
        forbid (principal, action == k8s::admission::Action::"create", resource is core::v1::ConfigMap)
        unless { resource.metadata has labels && resource.metadata.labels.contains({"key": "team", "value": "x"}) };
        @id("overflows")
        forbid (principal, action == k8s::admission::Action::"create", resource is apps::v1::Deployment)
        when { resource has spec && resource.spec has replicas && resource.spec.replicas * 9223372036854775807 > 0 };
        "#,
    );
    let cm = review(
        "CREATE",
        "alice",
        &[],
        Some(configmap("a", json!({"team": "y"}))),
        None,
    );
    assert_eq!(
        decide(&s, &cm),
        (Verdict::Denied, vec!["needs-team-label".into()])
    );
    let ok = review(
        "CREATE",
        "alice",
        &[],
        Some(configmap("a", json!({"team": "x"}))),
        None,
    );
    let d = engine::evaluate_admission(&s, &input(&ok));
    assert_eq!(d.verdict, Verdict::Allowed);
    assert!(d.policies.is_empty(), "a permit is never a reason: {d:?}");
    assert_eq!(d.status.reason, "");

    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "default"}, "spec": {"replicas": 2}});
    let d = engine::evaluate_admission(
        &s,
        &input(&review("CREATE", "alice", &[], Some(deployment), None)),
    );
    assert_eq!(d.verdict, Verdict::Denied, "{d:?}");
    assert!(
        d.status.reason.contains("overflows") && d.status.reason.contains("could not be evaluated"),
        "{}",
        d.status.reason
    );
}

#[test]
fn objects_convert_by_the_schema_and_cannot_forge_their_old_version() {
    let s = text_snapshot(
        r#"
        @id("replicas")
        forbid (principal, action, resource is apps::v1::Deployment)
        when { resource has spec && resource.spec has replicas && resource.spec.replicas > 5 };
        @id("spoofed-old")
        forbid (principal, action == k8s::admission::Action::"create", resource)
        when { resource has oldObject };
        @id("gold-tier")
        forbid (principal, action, resource)
        when { resource has metadata && resource.metadata has labels &&
               resource.metadata.labels.contains({"key": "tier", "value": "gold"}) };
        "#,
    );
    let deployment = |replicas: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "d", "namespace": "default", "labels": {"app": "web"}},
               "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                        "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}})
    };
    let big = review("CREATE", "alice", &[], Some(deployment(json!(9))), None);
    assert_eq!(decide(&s, &big), (Verdict::Denied, vec!["replicas".into()]));
    assert_eq!(
        decide(
            &s,
            &review("CREATE", "alice", &[], Some(deployment(json!(2))), None)
        )
        .0,
        Verdict::Allowed
    );
    // A value of the wrong type is left out: `has` is false.
    assert_eq!(
        decide(
            &s,
            &review("CREATE", "alice", &[], Some(deployment(json!("9"))), None)
        )
        .0,
        Verdict::Allowed
    );

    // A kind the schema does not know converts as it is, its metadata as
    // ObjectMeta (labels as key/value sets, for policies over any
    // resource); an `oldObject` field written into the object is never
    // the old object.
    let widget = |tier: &str| {
        json!({"apiVersion": "stable.example.com/v1", "kind": "Widget",
               "metadata": {"name": "w", "namespace": "default", "labels": {"tier": tier}},
               "spec": {"size": 3},
               "oldObject": {"metadata": {"labels": {"owner": "alice"}}}})
    };
    let gold = review("CREATE", "alice", &[], Some(widget("gold")), None);
    let d = engine::evaluate_admission(&s, &input(&gold));
    assert_eq!(d.policies, vec!["gold-tier".to_owned()], "{d:?}");
    let silver = review("CREATE", "alice", &[], Some(widget("silver")), None);
    assert_eq!(decide(&s, &silver).0, Verdict::Allowed);
}

#[test]
fn hostile_objects_get_an_error_or_an_answer() {
    let s = text_snapshot(
        r#"@id("labels")
        forbid (principal, action, resource)
        when { resource has metadata && resource.metadata has labels &&
               resource.metadata.labels.contains({"key": "bad", "value": "1"}) };"#,
    );
    // Deep nesting beyond the JSON parser's limit: a 400-class error.
    let mut deep = json!(1);
    for _ in 0..200 {
        deep = json!({ "x": deep });
    }
    let mut body = serde_json::to_string(&review(
        "CREATE",
        "alice",
        &[],
        Some(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {}}),
        ),
        None,
    ))
    .unwrap();
    body = body.replace(
        r#""data":{}"#,
        &format!(
            r#""data":{}"#,
            serde_json::to_string(&deep).unwrap_or_default()
        ),
    );
    assert!(admission::parse_review(body.as_bytes()).is_err());

    // Nesting under the parser's limit, in a kind without a shape: the
    // conversion stops at its own depth and the request is refused.
    let mut nested = json!(1);
    for _ in 0..100 {
        nested = json!({ "x": nested });
    }
    let crd = json!({"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": nested});
    let d =
        engine::evaluate_admission(&s, &input(&review("CREATE", "alice", &[], Some(crd), None)));
    assert_eq!(d.verdict, Verdict::Denied);
    assert!(d.status.evaluation_error.contains("deeper"), "{d:?}");

    // A huge label map: beyond the value budget the request is refused...
    let labels: serde_json::Map<String, Value> = (0..250_000)
        .map(|i| (format!("k{i}"), json!("v")))
        .collect();
    let huge = review(
        "CREATE",
        "alice",
        &[],
        Some(configmap("a", Value::Object(labels))),
        None,
    );
    let d = engine::evaluate_admission(&s, &input(&huge));
    assert_eq!(d.verdict, Verdict::Denied);
    assert!(d.status.evaluation_error.contains("values"), "{d:?}");
    // ...unless no policy can apply, when the object is not converted at all.
    let quiet = text_snapshot(r#"permit (principal, action == k8s::Action::"get", resource);"#);
    assert_eq!(
        engine::evaluate_admission(&quiet, &input(&huge)).verdict,
        Verdict::Allowed
    );

    // Wrong types where the apiserver has typed fields: a clear error.
    for (field, value) in [
        (
            "/request/object/metadata/labels",
            json!(["not", "a", "map"]),
        ),
        ("/request/userInfo/groups", json!("admins")),
        ("/request/operation", json!("EXPLODE")),
    ] {
        let mut r = review(
            "CREATE",
            "alice",
            &[],
            Some(configmap("a", json!({}))),
            None,
        );
        *r.pointer_mut(field).unwrap() = value;
        let err = admission::parse_review(&serde_json::to_vec(&r).unwrap())
            .unwrap_err()
            .to_string();
        let name = field.rsplit('/').next().unwrap();
        assert!(err.contains(name), "{field}: {err}");
    }
    for body in [
        &b"[]"[..],
        b"{}",
        b"null",
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
    ] {
        assert!(admission::parse_review(body).is_err());
    }
}

#[test]
fn admit_over_tls_answers_with_the_requests_uid_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    for f in go_demo(false) {
        let p = dir.path().join(&f.relative);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, f.text.as_bytes()).unwrap();
    }
    let pki = Pki::new();
    let server = InProcess::start(dir.path(), &pki.serve_args());
    let config = client_config(&pki.ca, Some((&pki.client_cert, &pki.client_key)), &[]);
    runtime().block_on(async {
        for proto in [Proto::H1, Proto::H2] {
            let mut conn = connect(server.addr, &config, proto).await.unwrap();
            for (path, name, allowed) in [("/admit", "prod-x", false), ("/v1/admit", "dev-x", true)] {
                let r = review("CREATE", "test-user", &[], Some(configmap(name, json!({}))), None);
                let (status, body) = conn
                    .request("POST", path, serde_json::to_vec(&r).unwrap())
                    .await
                    .unwrap();
                assert_eq!(status, 200);
                let answer: Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
                assert_eq!(answer["kind"], "AdmissionReview");
                assert_eq!(answer["response"]["uid"], "0b1a2c3d");
                assert_eq!(answer["response"]["allowed"], allowed, "{answer}");
                if !allowed {
                    assert_eq!(answer["response"]["status"]["code"], 403);
                    assert!(answer["response"]["status"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("demo/combined-policy.cedar#1"));
                }
            }
            // An update of a ConfigMap near etcd's 1.5 MiB limit carries it
            // twice: over --max-body-bytes, within the admission limit, and
            // decided (a 413 would be admitted unread under Ignore).
            let big = |name: &str| {
                let mut cm = configmap(name, json!({}));
                cm["data"]["k"] = json!("x".repeat(1_500_000));
                cm
            };
            let r = review("UPDATE", "test-user", &[], Some(big("prod-big")), Some(big("prod-big")));
            let body = serde_json::to_vec(&r).unwrap();
            assert!(body.len() > 2 * 1024 * 1024);
            let (status, answer) = conn.request("POST", "/admit", body).await.unwrap();
            assert_eq!(status, 200);
            let answer: Value = serde_json::from_slice(&answer).unwrap();
            assert_eq!(answer["response"]["allowed"], false, "{answer}");
            let (status, body) = conn
                .request("POST", "/admit", br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":5}}"#.to_vec())
                .await
                .unwrap();
            assert_eq!(status, 400);
            let err: Value = serde_json::from_slice(&body).unwrap();
            assert!(err["error"].as_str().unwrap().contains("request.uid"), "{err}");
        }
    });
    assert_eq!(
        server.metric(
            r#"cedar_authorizer_admission_requests_total{decision="denied",operation="create"}"#
        ),
        2.0
    );
    assert_eq!(
        server.metric(
            r#"cedar_authorizer_admission_requests_total{decision="admitted",operation="create"}"#
        ),
        2.0
    );
    server.shutdown().unwrap();
}

#[test]
fn exempt_users_are_admitted_without_evaluation() {
    let s = text_snapshot(r#"forbid (principal, action, resource is core::v1::ConfigMap);"#);
    let engine = Engine::new(s, Exemptions::default(), 0);
    let controller = review(
        "CREATE",
        "system:kube-controller-manager",
        &[],
        Some(configmap("a", json!({}))),
        None,
    );
    let out = engine.admit(&input(&controller));
    assert!(out.decision.exempt);
    assert_ne!(out.decision.verdict, Verdict::Denied);
    let user = review(
        "CREATE",
        "alice",
        &[],
        Some(configmap("a", json!({}))),
        None,
    );
    assert_eq!(
        engine.admit(&input(&user)).decision.verdict,
        Verdict::Denied
    );
}

#[test]
fn check_and_policy_tests_take_admission_reviews() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(policies.join("demo")).unwrap();
    for f in go_demo(false) {
        std::fs::write(policies.join(&f.relative), f.text.as_bytes()).unwrap();
    }
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/admission");
    for (file, allowed) in [
        ("configmap-create-prod.json", false),
        ("configmap-create-dev.json", true),
    ] {
        let out = std::process::Command::new(common::server::binary())
            .args(["check", "--policies"])
            .arg(&policies)
            .arg(fixtures.join(file))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(answer["response"]["allowed"], allowed, "{file}: {answer}");
        assert!(answer["response"]["uid"]
            .as_str()
            .unwrap()
            .starts_with("705ab4f5"));
    }

    std::fs::write(
        dir.path().join("old.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: default, labels: {owner: bob}}\n",
    )
    .unwrap();
    let tests = dir.path().join("admission.yaml");
    std::fs::write(
        &tests,
        r#"cases:
  - name: no prod configmaps for test-user
    admission:
      user: test-user
      operation: create
      object: {apiVersion: v1, kind: ConfigMap, metadata: {name: prod-x, namespace: default}}
    expect: deny
    policies: [demo/combined-policy.cedar#1]
  - name: dev is fine
    admission:
      user: test-user
      operation: create
      object: {apiVersion: v1, kind: ConfigMap, metadata: {name: dev-x, namespace: default}}
    expect: admit
  - name: no takeover
    admission:
      user: sample-user
      groups: [requires-labels]
      operation: update
      object: {apiVersion: v1, kind: ConfigMap, metadata: {name: a, namespace: default, labels: {owner: sample-user}}}
      oldObjectFile: old.yaml
    expect: deny
  - name: this one is wrong on purpose
    admission:
      user: test-user
      operation: update
      object: {apiVersion: v1, kind: ConfigMap, metadata: {name: prod-y, namespace: default}}
      oldObject: {apiVersion: v1, kind: ConfigMap, metadata: {name: prod-y, namespace: default}}
    expect: admit
"#,
    )
    .unwrap();
    let out = std::process::Command::new(common::server::binary())
        .args(["test", "--policies"])
        .arg(&policies)
        .arg(&tests)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("3 passed, 1 failed"), "{stdout}");
    assert!(
        stdout.contains("case this one is wrong on purpose: expected admit, got deny"),
        "{stdout}"
    );
}
