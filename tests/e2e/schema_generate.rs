//! `schema generate --kubeconfig` against the real apiserver: the
//! built-in kinds and a CRD created in the test appear in the schema, and
//! the Go proof of concept's demo admission policies validate under it.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::server::binary;
use crate::common::shared_dir;
use crate::e2e::cluster::{poll, Cluster, Options};
use crate::e2e::http;

const WIDGET_CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.stable.example.com
spec:
  group: stable.example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [size]
              properties:
                size: {type: integer}
                owner: {type: string}
                extra: {type: object, x-kubernetes-preserve-unknown-fields: true}
";

const NOOP_POLICY: &str = r#"@id("nobody")
permit (principal == k8s::User::"nobody", action, resource is k8s::Resource);
"#;

/// A policy on the CRD's fields: valid only if the schema types them.
const WIDGET_POLICY: &str = r#"@id("small-widgets")
forbid (
  principal,
  action in [k8s::admission::Action::"create", k8s::admission::Action::"update"],
  resource is com::example::stable::v1::Widget
) when { resource has spec && resource.spec.size > 10 && !(resource.spec has owner) };
"#;

#[test]
#[ignore = "needs KUBEBUILDER_ASSETS (kube-apiserver + etcd); scripts/test.sh runs it"]
fn schema_generate_reads_the_clusters_openapi_and_sees_a_new_crd() {
    // The webhook only authorizes here; it needs a policy to start.
    let c = Cluster::start(
        "schema-generate",
        Options {
            policies: vec![("noop.cedar", NOOP_POLICY.to_owned())],
            ..Options::default()
        },
    );
    c.apply(WIDGET_CRD);
    poll(
        Duration::from_secs(60),
        "the Widget CRD to be established",
        || {
            let out = c.kubectl(
                "admin",
                &[
                    "get",
                    "crd",
                    "widgets.stable.example.com",
                    "-o",
                    "jsonpath={.status.conditions[?(@.type==\"Established\")].status}",
                ],
            );
            (out.ok() && out.stdout.trim() == "True").then_some(())
        },
        || c.apiserver_tail(),
    );
    // The OpenAPI controller publishes a new CRD a moment after it is
    // established.
    let started = Instant::now();
    poll(
        Duration::from_secs(60),
        "apis/stable.example.com/v1 in /openapi/v3",
        || {
            let (code, body) =
                http::https_get(c.api_port, &c.api_ca, "admin-token", "/openapi/v3").ok()?;
            (code == 200 && body.contains("\"apis/stable.example.com/v1\"")).then_some(())
        },
        || c.apiserver_tail(),
    );
    c.log(&format!(
        "CRD published in /openapi/v3 after {:.1}s",
        started.elapsed().as_secs_f64()
    ));

    let out_dir = c.dir.path().join("schema-generate");
    std::fs::create_dir_all(&out_dir).unwrap();
    let schema = out_dir.join("cluster.cedarschema");
    let started = Instant::now();
    let run = Command::new(binary())
        .args(["schema", "generate", "--kubeconfig"])
        .arg(c.kubeconfig("admin"))
        .arg("--save")
        .arg(out_dir.join("openapi"))
        .arg("--out")
        .arg(&schema)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "schema generate: {stderr}");
    c.log(&format!(
        "schema generate took {:.1}s: {}",
        started.elapsed().as_secs_f64(),
        stderr.trim().replace('\n', "; ")
    ));
    let text = std::fs::read_to_string(&schema).unwrap();
    assert!(
        text.contains("      com::example::stable::v1::Widget"),
        "{text}"
    );
    let widget = &text[text.find("entity Widget = ").expect("entity Widget")..];
    let widget = &widget[..widget.find("};").unwrap()];
    for attr in [
        r#""metadata": meta::v1::ObjectMeta"#,
        r#""oldObject"?: Widget"#,
        r#""size": Long"#,
        r#""owner"?: String"#,
    ] {
        assert!(widget.contains(attr), "{attr} in {widget}");
    }
    assert!(
        !widget.contains("\"extra\""),
        "free-form field kept: {widget}"
    );
    assert!(text.contains("entity ConfigMap = "), "built-in kinds too");
    assert!(
        out_dir
            .join("openapi/apis_stable.example.com_v1.json")
            .is_file(),
        "--save wrote the CRD's document"
    );

    // The demo admission policies and a policy on the CRD validate under
    // the generated schema.
    let policies = out_dir.join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    let demo = std::fs::read_to_string(
        shared_dir().join("anchors/cedar-access-control-for-k8s/demo-admission-policy.yaml"),
    )
    .unwrap();
    let mut n = 0;
    for doc in cedar_authorizer::yaml::documents::<serde_json::Value>(&demo).unwrap() {
        let Some(content) = doc.value["spec"]["content"].as_str() else {
            continue;
        };
        // Only the objects with admission policies: the demo's
        // self-node-policy reads the optional principal.extra without
        // `has`, which strict validation refuses under either schema.
        if content.contains("k8s::admission::Action") {
            n += 1;
            std::fs::write(policies.join(format!("demo-{n}.cedar")), content).unwrap();
        }
    }
    assert_eq!(n, 2);
    std::fs::write(policies.join("widget.cedar"), WIDGET_POLICY).unwrap();
    let validate = Command::new(binary())
        .args(["validate", "--policies"])
        .arg(&policies)
        .arg("--schema")
        .arg(&schema)
        .output()
        .unwrap();
    assert_eq!(
        validate.status.code(),
        Some(0),
        "validate under the generated schema: {}{}",
        String::from_utf8_lossy(&validate.stdout),
        String::from_utf8_lossy(&validate.stderr)
    );
    c.log(&format!(
        "validate: {}",
        String::from_utf8_lossy(&validate.stdout).trim()
    ));
}
