//! The built-in schema's admission part: generated from Kubernetes 1.36's
//! OpenAPI (the saved documents of tests/fixtures/openapi/k8s-1.36), loaded
//! without warnings, and strict enough for the Go proof of concept's demo
//! admission policies, which validate unchanged; and `schema generate`
//! as the command line drives it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use cedar_authorizer::admission::schemagen::{self, openapi};
use cedar_authorizer::policy::{self, SchemaBundle, AUTHORIZATION_SCHEMA, BUILTIN_SCHEMA};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixtures() -> PathBuf {
    root().join("tests/fixtures/openapi/k8s-1.36")
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cedar-authorizer"))
}

/// Schema text without its `//` comment lines.
fn without_comments(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The Cedar text of each Policy object of a Go proof of concept YAML.
fn anchor_policies(file: &str) -> Vec<(String, String)> {
    let path = common::shared_dir()
        .join("anchors/cedar-access-control-for-k8s")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    cedar_authorizer::yaml::documents::<serde_json::Value>(&text)
        .unwrap()
        .iter()
        .filter_map(|d| {
            let name = d.value["metadata"]["name"].as_str()?;
            let content = d.value["spec"]["content"].as_str()?;
            Some((format!("{name}.cedar"), content.to_owned()))
        })
        .collect()
}

/// Loads (parse + strict validation) these files under the schema file
/// (`None`: the built-in one).
fn load(files: &[(String, String)], schema: Option<&Path>) -> Result<policy::Snapshot, String> {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let schema = Arc::new(SchemaBundle::load(schema).map_err(|e| e.to_string())?);
    policy::load(dir.path(), &schema, 1).map_err(|e| e.to_string())
}

#[test]
fn committed_admission_schema_is_what_the_generator_makes_of_the_fixtures() {
    let docs = openapi::read_dir(&fixtures()).unwrap();
    let generated = schemagen::generate(&docs, "").unwrap();
    let committed = std::fs::read_to_string(root().join("schema/admission.cedarschema")).unwrap();
    assert!(
        without_comments(&committed) == without_comments(&generated.text),
        "schema/admission.cedarschema is stale: run scripts/regen-admission-schema.sh"
    );
    assert!(generated.entity_types >= 70, "{}", generated.entity_types);
}

#[test]
fn built_in_schema_loads_without_warnings() {
    let (schema, warnings) = cedar_policy::Schema::from_cedarschema_str(BUILTIN_SCHEMA).unwrap();
    let warnings: Vec<String> = warnings.map(|w| w.to_string()).collect();
    assert!(warnings.is_empty(), "{warnings:#?}");
    let types: Vec<String> = schema.entity_types().map(|t| t.to_string()).collect();
    for t in [
        "core::v1::ConfigMap",
        "core::v1::Pod",
        "core::v1::PodExecOptions",
        "apps::v1::Deployment",
        "rbac::v1::ClusterRole",
        "apiextensions::v1::CustomResourceDefinition",
        "k8s::User",
    ] {
        assert!(types.contains(&t.to_owned()), "{t} missing");
    }
    assert!(BUILTIN_SCHEMA.starts_with(AUTHORIZATION_SCHEMA));
}

#[test]
fn authorization_and_admission_actions_are_kept_apart() {
    let bundle = SchemaBundle::load(None).unwrap();
    for (verb, action) in &bundle.grouped_actions {
        assert_eq!(
            action.uid().type_name().to_string(),
            "k8s::Action",
            "{verb}"
        );
    }
    let mut ops: Vec<&str> = bundle
        .admission_actions
        .keys()
        .map(String::as_str)
        .collect();
    ops.sort();
    assert_eq!(ops, ["connect", "create", "delete", "update"]);
    for (op, action) in &bundle.admission_actions {
        assert_eq!(
            action.uid().to_string(),
            format!("k8s::admission::Action::\"{op}\"")
        );
    }
    let all: cedar_policy::EntityUid = r#"k8s::admission::Action::"all""#.parse().unwrap();
    assert_eq!(bundle.action_members[&all].len(), 4);
}

/// The demo's Policy objects with admission policies in them. Its third,
/// `self-node-policy`, holds only authorization policies, which read the
/// optional `principal.extra` without `has` and so fail strict validation
/// under the Go proof of concept's own schema as under ours (the demo sets
/// `validation.enforced: false`).
fn demo_admission_policies() -> Vec<(String, String)> {
    let files: Vec<_> = anchor_policies("demo-admission-policy.yaml")
        .into_iter()
        .filter(|(_, text)| text.contains("k8s::admission::Action"))
        .collect();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["combined-policy.cedar", "label-enforcement-policy.cedar"]
    );
    files
}

#[test]
fn go_demo_admission_policies_validate_against_the_built_in_schema() {
    let snapshot = load(&demo_admission_policies(), None).unwrap_or_else(|e| panic!("{e}"));
    // 2 + 4 policies, 3 of them admission forbids.
    assert_eq!(snapshot.policies.len(), 6);
}

#[test]
fn admission_policies_are_type_checked() {
    // A misspelt attribute and a wrong type are errors, as for authorization.
    for bad in [
        r#"forbid (principal, action == k8s::admission::Action::"create", resource is core::v1::ConfigMap)
           when { resource.metadata.nmae == "x" };"#,
        r#"forbid (principal, action == k8s::admission::Action::"create", resource is apps::v1::Deployment)
           when { resource has spec && resource.spec.replicas == "3" };"#,
    ] {
        let files = vec![("p.cedar".to_owned(), bad.to_owned())];
        assert!(load(&files, None).is_err(), "{bad}");
    }
    let good = r#"forbid (principal, action == k8s::admission::Action::"create", resource is apps::v1::Deployment)
        when { resource has spec && resource.spec has replicas && resource.spec.replicas > 10 };"#;
    load(&[("p.cedar".to_owned(), good.to_owned())], None).unwrap();
}

#[test]
fn schema_generate_from_saved_documents_is_a_drop_in_schema() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("full.cedarschema");
    let status = bin()
        .args(["schema", "generate", "--openapi"])
        .arg(fixtures())
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.starts_with(AUTHORIZATION_SCHEMA));
    assert_eq!(without_comments(&text), without_comments(BUILTIN_SCHEMA));
    load(&demo_admission_policies(), Some(&out)).unwrap_or_else(|e| panic!("{e}"));

    let only = bin()
        .args(["schema", "generate", "--admission-only", "--openapi"])
        .arg(fixtures())
        .output()
        .unwrap();
    assert_eq!(only.status.code(), Some(0));
    let only = String::from_utf8(only.stdout).unwrap();
    assert!(
        only.starts_with("// Admission schema generated by"),
        "{only:.200}"
    );
    assert!(!only.contains("namespace k8s {"));
}

#[test]
fn schema_without_a_subcommand_prints_the_built_in_schema() {
    let out = bin().arg("schema").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), BUILTIN_SCHEMA);
}

#[test]
fn schema_generate_exits_2_on_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = bin()
            .args(["schema", "generate"])
            .args(args)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8(out.stderr).unwrap())
    };
    let empty = dir.path().to_str().unwrap();
    let (code, err) = run(&["--openapi", empty]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no OpenAPI documents"), "{err}");

    std::fs::write(
        dir.path().join("bad.json"),
        r#"{"components": {"schemas": {"X": {"x-kubernetes-group-version-kind": "v1"}}}}"#,
    )
    .unwrap();
    let (code, err) = run(&["--openapi", empty]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("bad.json: X: x-kubernetes-group-version-kind is not an array"),
        "{err}"
    );

    let (code, err) = run(&["--kubeconfig", "/nonexistent/kubeconfig"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("kubeconfig"), "{err}");

    // Nothing listens on port 1.
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}}]\n\
         users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
    )
    .unwrap();
    let (code, err) = run(&["--kubeconfig", kubeconfig.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("https://127.0.0.1:1/openapi/v3"), "{err}");

    let (code, _) = run(&["--openapi", empty, "--kubeconfig", "k"]);
    assert_eq!(code, Some(2), "conflicting flags are a usage error");
}
