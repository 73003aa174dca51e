//! Merging files and objects into one set, id clashes across them, and the
//! status an object gets.

use std::sync::Arc;

use super::status::{self, LastLoad};
use super::*;
use crate::policy::{LoadError, SchemaBundle, Snapshot};

fn schema() -> Arc<SchemaBundle> {
    Arc::new(SchemaBundle::load(None).expect("built-in schema"))
}

fn file(relative: &str, text: &str) -> PolicyFile {
    PolicyFile {
        relative: relative.into(),
        path: PathBuf::from(format!("/etc/policies/{relative}")),
        text: text.into(),
    }
}

fn object(name: &str, content: &str) -> PolicyObject {
    PolicyObject {
        name: name.into(),
        generation: 3,
        content: Some(content.into()),
    }
}

const ALICE_PODS: &str = r#"permit (
  principal == k8s::User::"alice",
  action == k8s::Action::"get",
  resource is k8s::Resource
) when { resource.resource == "pods" };
"#;

const CAROL_FORBID: &str = r#"@id("carol-no-secrets")
forbid (
  principal == k8s::User::"carol",
  action,
  resource is k8s::Resource
) when { resource.resource == "secrets" };
"#;

/// Line 4 names an attribute the schema does not have.
const BAD_ATTRIBUTE: &str = r#"permit (
  principal,
  action == k8s::Action::"get",
  resource is k8s::Resource
) when { resource.colour == "red" };
"#;

fn invalid(e: LoadError) -> Vec<Diagnostic> {
    match e {
        LoadError::Invalid(d) => d,
        other => panic!("expected diagnostics, got {other}"),
    }
}

#[test]
fn files_and_objects_merge_into_one_set_with_one_id_space() {
    let files = vec![file("base.cedar", CAROL_FORBID)];
    // Objects in arrival order: the merge sorts them by name.
    let objects = [object("zeta", ALICE_PODS), object("alpha", ALICE_PODS)];
    let merged = merge(files, &objects).unwrap();
    let names: Vec<&str> = merged.iter().map(|f| f.relative.as_str()).collect();
    assert_eq!(names, ["base.cedar", "policy/alpha", "policy/zeta"]);
    let snapshot = Snapshot::build(&merged, &schema(), 1).unwrap();
    let ids: Vec<&str> = snapshot.policies.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["carol-no-secrets", "policy/alpha#0", "policy/zeta#0"]);
    assert_eq!(snapshot.policies[1].file, "policy/alpha");
}

#[test]
fn merge_order_does_not_depend_on_arrival_order() {
    let a = merge(
        Vec::new(),
        &[object("a", ALICE_PODS), object("b", CAROL_FORBID)],
    )
    .unwrap();
    let b = merge(
        Vec::new(),
        &[object("b", CAROL_FORBID), object("a", ALICE_PODS)],
    )
    .unwrap();
    assert_eq!(policy::digest(&a), policy::digest(&b));
}

#[test]
fn an_id_used_by_a_file_and_an_object_fails_the_set_naming_both() {
    let files = vec![file("base.cedar", CAROL_FORBID)];
    let objects = [object("copy", CAROL_FORBID)];
    let merged = merge(files, &objects).unwrap();
    let diags = invalid(Snapshot::build(&merged, &schema(), 1).err().unwrap());
    assert_eq!(diags.len(), 1, "{diags:?}");
    let d = &diags[0];
    assert_eq!(d.file, PathBuf::from("policy/copy"));
    assert!(
        d.message
            .contains("duplicate policy id \"carol-no-secrets\": already used at /etc/policies/base.cedar:1:1"),
        "{}",
        d.message
    );
}

#[test]
fn an_id_used_by_two_objects_fails_the_set() {
    let objects = [object("one", CAROL_FORBID), object("two", CAROL_FORBID)];
    let merged = merge(Vec::new(), &objects).unwrap();
    let diags = invalid(Snapshot::build(&merged, &schema(), 1).err().unwrap());
    assert_eq!(diags[0].file, PathBuf::from("policy/two"));
    assert!(diags[0].message.contains("already used at policy/one:1:1"));
}

#[test]
fn an_object_without_text_fails_the_set_rather_than_being_left_out() {
    let mut missing = object("gone", "");
    missing.content = None;
    let diags = invalid(merge(Vec::new(), &[object("ok", ALICE_PODS), missing]).unwrap_err());
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].file, PathBuf::from("policy/gone"));
}

#[test]
fn too_much_text_fails_the_set() {
    let big = object("big", &" ".repeat(MAX_CONTENT_BYTES + 1));
    let diags = invalid(merge(Vec::new(), &[big]).unwrap_err());
    assert!(diags[0].message.contains("more than the"), "{}", diags[0]);
    let many: Vec<PolicyObject> = (0..=MAX_OBJECTS)
        .map(|i| object(&format!("p{i}"), ""))
        .collect();
    assert!(merge(Vec::new(), &many).is_err());
}

#[test]
fn status_of_an_invalid_object_has_line_column_and_cedars_message() {
    let o = object("bad", BAD_ATTRIBUTE);
    let own = status::check_alone(&o, &schema());
    let d = status::desired(&o, &own, &LastLoad::default());
    assert!(!d.ready);
    assert_eq!(d.reason, "Invalid");
    assert_eq!(d.observed_generation, 3);
    assert_eq!(d.policies, None);
    assert!(d.message.starts_with("spec.content:5:"), "{}", d.message);
    assert!(d.message.contains("colour"), "{}", d.message);
}

#[test]
fn status_of_a_parse_error_points_at_it() {
    let o = object("typo", "permit (\n  principal,\n  acton,\n  resource\n);");
    let own = status::check_alone(&o, &schema());
    let d = status::desired(&o, &own, &LastLoad::default());
    assert_eq!(d.reason, "Invalid");
    assert!(d.message.starts_with("spec.content:3:3: "), "{}", d.message);
}

#[test]
fn status_is_ready_only_for_the_text_being_served() {
    let o = object("alice", ALICE_PODS);
    let own = status::check_alone(&o, &schema());
    assert_eq!(own, Ok(1));
    let served = LastLoad {
        served: vec![("alice".into(), ALICE_PODS.into())],
        failure: None,
    };
    let d = status::desired(&o, &own, &served);
    assert!(d.ready, "{d:?}");
    assert_eq!(
        (d.reason, d.message.as_str()),
        ("Loaded", "1 policy served")
    );
    assert_eq!(d.policies, Some(1));

    // An edit that is valid on its own but is held back by another
    // object's error is not Ready: its new text is not what serves.
    let edited = object("alice", CAROL_FORBID);
    let blocked = LastLoad {
        served: served.served.clone(),
        failure: Some(vec![Diagnostic::at_offset(
            "policy/bad".into(),
            BAD_ATTRIBUTE,
            BAD_ATTRIBUTE.find("resource.colour").unwrap(),
            "attribute `colour` not found".into(),
            "error",
        )]),
    };
    let own = status::check_alone(&edited, &schema());
    let d = status::desired(&edited, &own, &blocked);
    assert!(!d.ready);
    assert_eq!(d.reason, "NotLoaded");
    assert!(
        d.message
            .contains("Policy \"bad\" spec.content:5:10: attribute `colour` not found"),
        "{}",
        d.message
    );
    // The unchanged text still serves, whatever else failed.
    assert!(status::desired(&o, &status::check_alone(&o, &schema()), &blocked).ready);
}

#[test]
fn status_of_a_clash_says_conflict_and_names_the_other_source() {
    let files = vec![file("base.cedar", CAROL_FORBID)];
    let o = object("copy", CAROL_FORBID);
    let merged = merge(files, std::slice::from_ref(&o)).unwrap();
    let failure = invalid(Snapshot::build(&merged, &schema(), 1).err().unwrap());
    let last = LastLoad {
        served: Vec::new(),
        failure: Some(failure),
    };
    let d = status::desired(&o, &status::check_alone(&o, &schema()), &last);
    assert_eq!(d.reason, "Conflict");
    assert!(
        d.message.contains("/etc/policies/base.cedar:1:1"),
        "{}",
        d.message
    );
    assert!(
        d.message.starts_with(
            "the previous policy set keeps serving: spec.content:1:1: duplicate policy id"
        ),
        "{}",
        d.message
    );
}

#[test]
fn a_written_status_is_current_and_a_changed_one_is_not() {
    let o = object("alice", ALICE_PODS);
    let own = status::check_alone(&o, &schema());
    let last = LastLoad {
        served: vec![("alice".into(), ALICE_PODS.into())],
        failure: None,
    };
    let d = status::desired(&o, &own, &last);
    assert!(!status::is_current(None, &d));
    let written = status::patch(None, &d, "2026-12-02T03:00:00Z");
    let st = written.get("status").unwrap();
    assert!(status::is_current(Some(st), &d));
    assert_eq!(
        st["conditions"][0]["lastTransitionTime"],
        "2026-12-02T03:00:00Z"
    );
    // Same condition status later: the transition time stays.
    let again = status::patch(Some(st), &d, "2026-12-02T04:00:00Z");
    assert_eq!(
        again["status"]["conditions"][0]["lastTransitionTime"],
        "2026-12-02T03:00:00Z"
    );
    // A new generation is not current, and a turn to False moves the time.
    let mut newer = o.clone();
    newer.generation = 4;
    let d4 = status::desired(&newer, &own, &last);
    assert!(!status::is_current(Some(st), &d4));
    let bad = status::desired(&newer, &Err(Vec::new()), &last);
    let turned = status::patch(Some(st), &bad, "2026-12-02T05:00:00Z");
    assert_eq!(turned["status"]["conditions"][0]["status"], "False");
    assert_eq!(
        turned["status"]["conditions"][0]["lastTransitionTime"],
        "2026-12-02T05:00:00Z"
    );
    assert!(turned["status"]["policies"].is_null());
}

#[test]
fn long_messages_are_bounded() {
    let text: String = (0..50)
        .map(|i| format!("permit (principal, action, resource) when {{ resource.nope{i} }};\n"))
        .collect();
    let o = object("many", &text);
    let d = status::desired(
        &o,
        &status::check_alone(&o, &schema()),
        &LastLoad::default(),
    );
    assert!(d.message.len() <= 4096 + 3);
    assert!(d.message.contains("more"), "{}", d.message);
}

#[test]
fn policy_source_flag_values() {
    assert_eq!("dir".parse::<PolicySource>(), Ok(PolicySource::Dir));
    assert_eq!("crd".parse::<PolicySource>(), Ok(PolicySource::Crd));
    assert_eq!("both".parse::<PolicySource>(), Ok(PolicySource::Both));
    assert!("objects".parse::<PolicySource>().is_err());
    assert!(PolicySource::Both.reads_dir() && PolicySource::Both.reads_objects());
    assert!(!PolicySource::Crd.reads_dir());
}

fn policy_review(content: &str, subresource: Option<&str>) -> Vec<u8> {
    let mut request = serde_json::json!({
        "uid": "u-1",
        "kind": {"group": "cedar.k8s.aws", "version": "v1alpha1", "kind": "Policy"},
        "resource": {"group": "cedar.k8s.aws", "version": "v1alpha1", "resource": "policies"},
        "name": "p",
        "operation": "CREATE",
        "userInfo": {"username": "alice"},
        "object": {
            "apiVersion": "cedar.k8s.aws/v1alpha1",
            "kind": "Policy",
            "metadata": {"name": "p"},
            "spec": {"content": content}
        },
        "oldObject": null,
        "dryRun": false,
        "options": null
    });
    if let Some(s) = subresource {
        request["subResource"] = s.into();
        request["operation"] = "UPDATE".into();
    }
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": request
    }))
    .unwrap()
}

#[test]
fn an_invalid_policy_object_is_refused_at_apply_time_with_the_line() {
    let input = crate::admission::parse_review(&policy_review(BAD_ATTRIBUTE, None)).unwrap();
    let why = admit::refusal(&input, &schema()).expect("refused");
    assert!(
        why.starts_with("Policy \"p\" does not load: spec.content:5:"),
        "{why}"
    );
    assert!(why.contains("colour"), "{why}");
}

#[test]
fn valid_policies_status_writes_and_other_kinds_are_not_refused_by_the_check() {
    let good = crate::admission::parse_review(&policy_review(ALICE_PODS, None)).unwrap();
    assert_eq!(admit::refusal(&good, &schema()), None);
    // The status writer's own updates carry whatever spec there is.
    let status =
        crate::admission::parse_review(&policy_review(BAD_ATTRIBUTE, Some("status"))).unwrap();
    assert_eq!(admit::refusal(&status, &schema()), None);
}
