//! `diff` on pairs of policy sets whose difference is known: it must find
//! exactly those differences, and every counterexample review, decided
//! again by the engine under each set, must give the two answers claimed.
//!
//! Needs cvc5 (`CVC5` or on `PATH`; `.ci/run` installs Debian's).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use cedar_authorizer::analysis::{compare, Change, DiffOptions, Finding, Report, SolverConfig};
use cedar_authorizer::decision::Verdict;
use cedar_authorizer::engine::{self, Exemptions};
use cedar_authorizer::policy::{self, SchemaBundle, Snapshot};
use cedar_authorizer::sar;

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn set(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for (name, text) in files {
        write(dir, name, text);
    }
    dir.to_owned()
}

fn load(dir: &Path) -> Snapshot {
    let schema = Arc::new(SchemaBundle::load(None).unwrap());
    policy::load(dir, &schema, 1).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

fn options() -> DiffOptions {
    DiffOptions {
        exemptions: Exemptions::default(),
        never_errors: false,
        solver: SolverConfig::from_env(Duration::from_secs(60)),
    }
}

fn diff(old: &Path, new: &Path, options: &DiffOptions) -> Report {
    let report = compare(load(old), load(new), options)
        .unwrap_or_else(|e| panic!("{e} (diff needs cvc5: apt-get install cvc5, or set CVC5)"));
    assert!(report.trouble.is_empty(), "trouble: {:?}", report.trouble);
    report
}

fn verdict(s: &str) -> Verdict {
    match s {
        "allowed" => Verdict::Allowed,
        "denied" => Verdict::Denied,
        _ => Verdict::NoOpinion,
    }
}

/// Decides the finding's review again, independently of `diff`, under
/// both sets, and checks it gives the answers the finding claims.
fn recheck(f: &Finding, old: &Path, new: &Path) -> sar::AccessRequest {
    assert!(f.confirmed, "not confirmed: {f:#?}");
    let review = f.review.as_ref().expect("a confirmed finding has a review");
    let parsed = sar::parse_review(review.to_string().as_bytes()).unwrap();
    let o = engine::evaluate(&load(old), &parsed.request);
    let n = engine::evaluate(&load(new), &parsed.request);
    assert!(
        f.change.holds(o.verdict, n.verdict),
        "{:?}: old {:?}, new {:?} for {review}",
        f.change,
        o.verdict,
        n.verdict
    );
    assert_eq!(o.verdict, verdict(f.old.as_ref().unwrap().decision));
    assert_eq!(n.verdict, verdict(f.new.as_ref().unwrap().decision));
    parsed.request
}

fn environments(report: &Report, change: Change) -> Vec<String> {
    let mut e: Vec<String> = report
        .findings
        .iter()
        .filter(|f| f.change == change)
        .map(|f| f.environment.clone())
        .collect();
    e.sort();
    e
}

fn env(principal: &str, action: &str) -> String {
    format!("k8s::{principal}, k8s::Action::\"{action}\", k8s::Resource")
}

const PRINCIPALS: [&str; 3] = ["Node", "ServiceAccount", "User"];

const POD_READERS: &str = r#"
@id("dev-reads-pods")
permit (principal in k8s::Group::"dev", action == k8s::Action::"get", resource is k8s::Resource)
when { resource.resource == "pods" };
"#;

#[test]
fn a_widened_permit_shows_as_newly_allowed_in_each_environment_it_reaches() {
    let tmp = tempfile::tempdir().unwrap();
    let old = set(&tmp.path().join("old"), &[("dev.cedar", POD_READERS)]);
    let new = set(
        &tmp.path().join("new"),
        &[(
            "dev.cedar",
            &POD_READERS.replace(
                r#"resource.resource == "pods""#,
                r#"["pods", "secrets"].contains(resource.resource)"#,
            ),
        )],
    );
    let report = diff(&old, &new, &options());
    let expected: Vec<String> = PRINCIPALS.iter().map(|p| env(p, "get")).collect();
    assert_eq!(environments(&report, Change::NewlyAllowed), expected);
    assert_eq!(report.findings.len(), 3, "{:#?}", report.findings);
    for f in &report.findings {
        let req = recheck(f, &old, &new);
        assert!(req.groups.contains(&"dev".to_owned()));
        let cedar_authorizer::sar::Attributes::Resource(r) = &req.attributes else {
            panic!("a resource request: {req:?}");
        };
        assert_eq!(r.resource, "secrets");
    }
    assert_eq!(report.exit_code(), 1);
}

const SECRETS_FORBID: &str = r#"
@id("dev-reads-everything")
permit (principal in k8s::Group::"dev", action == k8s::Action::"get", resource is k8s::Resource);

@id("no-secrets")
forbid (principal, action == k8s::Action::"get", resource is k8s::Resource)
when { resource.resource == "secrets" };
"#;

#[test]
fn a_narrowed_forbid_shows_as_no_longer_denied_and_newly_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let old = set(&tmp.path().join("old"), &[("p.cedar", SECRETS_FORBID)]);
    let new = set(
        &tmp.path().join("new"),
        &[(
            "p.cedar",
            &SECRETS_FORBID.replace(
                r#"resource.resource == "secrets""#,
                r#"resource.resource == "secrets" && resource has namespace && resource.namespace == "kube-system""#,
            ),
        )],
    );
    let report = diff(&old, &new, &options());
    let expected: Vec<String> = PRINCIPALS.iter().map(|p| env(p, "get")).collect();
    assert_eq!(environments(&report, Change::NoLongerDenied), expected);
    assert_eq!(environments(&report, Change::NewlyAllowed), expected);
    assert_eq!(report.findings.len(), 6, "{:#?}", report.findings);
    for f in &report.findings {
        let req = recheck(f, &old, &new);
        let cedar_authorizer::sar::Attributes::Resource(r) = &req.attributes else {
            panic!("a resource request: {req:?}");
        };
        assert_eq!(r.resource, "secrets");
        assert_ne!(r.namespace, "kube-system");
    }
}

#[test]
fn a_refactoring_that_changes_nothing_has_no_difference() {
    let tmp = tempfile::tempdir().unwrap();
    // Ids against attributes, an action list against one policy per
    // action, a group test moved from the scope into the condition.
    let old = set(
        &tmp.path().join("old"),
        &[(
            "p.cedar",
            r#"
@id("alice")
permit (principal == k8s::User::"alice", action in [k8s::Action::"get", k8s::Action::"list"], resource is k8s::Resource)
when { resource has namespace && resource.namespace == "alice" };

@id("ops-nodes")
permit (principal in k8s::Group::"ops", action, resource is k8s::Resource)
when { resource.resource == "nodes" };

@id("no-kube-system")
forbid (principal == k8s::ServiceAccount::"system:serviceaccount:ci:deployer", action, resource is k8s::Resource)
when { resource has namespace && resource.namespace == "kube-system" };
"#,
        )],
    );
    let new = set(
        &tmp.path().join("new"),
        &[(
            "p.cedar",
            r#"
@id("alice-get")
permit (principal is k8s::User, action == k8s::Action::"get", resource is k8s::Resource)
when { principal.name == "alice" && resource has namespace && resource.namespace == "alice" };

@id("alice-list")
permit (principal is k8s::User, action == k8s::Action::"list", resource is k8s::Resource)
when { principal.name == "alice" && resource has namespace && resource.namespace == "alice" };

@id("ops-nodes")
permit (principal, action, resource is k8s::Resource)
when { principal in k8s::Group::"ops" && resource.resource == "nodes" };

@id("no-kube-system")
forbid (principal is k8s::ServiceAccount, action, resource is k8s::Resource)
when { principal.namespace == "ci" && principal.name == "deployer" && resource has namespace && resource.namespace == "kube-system" };
"#,
        )],
    );
    let report = diff(&old, &new, &options());
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    assert_eq!(report.exit_code(), 0);
    assert!(report.queries > 0, "the environments must reach the solver");
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cedar-authorizer"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const RBAC: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: pod-reader}
rules:
- apiGroups: [""]
  resources: ["pods", "pods/log"]
  verbs: ["get", "list"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: alice-reads-pods}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pod-reader}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: dev-reads-pods, namespace: dev}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pod-reader}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: developers}
"#;

#[test]
fn converted_rbac_without_one_binding_no_longer_allows_exactly_that_subject() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "rbac.yaml", RBAC);
    let old = tmp.path().join("old");
    let o = bin()
        .args(["convert-rbac", "--out"])
        .arg(&old)
        .arg(tmp.path().join("rbac.yaml"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let new = tmp.path().join("new");
    std::fs::create_dir_all(&new).unwrap();
    for entry in std::fs::read_dir(&old).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.contains("alice") {
            std::fs::copy(&path, new.join(&name)).unwrap();
        }
    }
    let report = diff(&old, &new, &options());
    let expected = vec![env("User", "get"), env("User", "list")];
    assert_eq!(environments(&report, Change::NoLongerAllowed), expected);
    assert_eq!(report.findings.len(), 2, "{:#?}", report.findings);
    for f in &report.findings {
        let req = recheck(f, &old, &new);
        assert_eq!(req.user, "alice");
        assert_eq!(
            f.old.as_ref().unwrap().policies,
            ["crb/alice-reads-pods/rule-0"]
        );
    }

    // The same through the binary: exit 1, and the review pasted into
    // `check` gives NEW's answer.
    let o = bin()
        .args(["diff", "--format", "json"])
        .args([&old, &new])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let review = &json["findings"][0]["review"];
    let mut check = bin()
        .args(["check", "--policies"])
        .arg(&new)
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    check
        .stdin
        .take()
        .unwrap()
        .write_all(review.to_string().as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["status"]["allowed"], false, "{answer}");
}

#[test]
fn identical_sets_exit_zero_and_no_solver_is_trouble_with_one_line_saying_how_to_get_one() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let o = bin()
        .current_dir(root)
        .args(["diff", "policies", "policies"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let o = bin()
        .current_dir(root)
        .env("CVC5", "/nonexistent/cvc5")
        .args(["diff", "policies", "policies"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("apt-get install cvc5") && err.contains("CVC5"),
        "{err}"
    );
}

#[test]
fn a_solver_that_does_not_answer_is_trouble_never_no_difference() {
    let tmp = tempfile::tempdir().unwrap();
    let old = set(&tmp.path().join("old"), &[("dev.cedar", POD_READERS)]);
    let new = set(
        &tmp.path().join("new"),
        &[("dev.cedar", &POD_READERS.replace("\"pods\"", "\"secrets\""))],
    );
    // Starts, then exits without reading a query.
    let o = bin()
        .env("CVC5", "/bin/true")
        .arg("diff")
        .args([&old, &new])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("trouble:"), "{}", text(&o));
}

#[test]
fn never_errors_finds_a_forbid_that_can_error_and_a_forbid_of_an_exempt_user_never_matches() {
    let tmp = tempfile::tempdir().unwrap();
    let old = set(&tmp.path().join("old"), &[("dev.cedar", POD_READERS)]);
    // Strict validation cannot see an overflow; it errors only on the
    // path the condition lets through to it.
    let overflow = r#"
@id("overflowing-forbid")
forbid (principal, action == k8s::Action::"get", resource is k8s::NonResourceURL)
when { resource.path == "/x" && 9223372036854775807 + 1 > 0 };
"#;
    // Exempt principals are never evaluated: a forbid naming one can never
    // match a request the webhook evaluates.
    let never = r#"
@id("scheduler-never-evaluated")
forbid (principal == k8s::User::"system:kube-scheduler", action, resource);
"#;
    let new = set(
        &tmp.path().join("new"),
        &[
            ("dev.cedar", POD_READERS),
            ("never.cedar", never),
            ("overflow.cedar", overflow),
        ],
    );
    let mut opts = options();
    opts.never_errors = true;
    let report = diff(&old, &new, &opts);
    let warned: Vec<&str> = report.warnings.iter().map(|w| w.policy.as_str()).collect();
    // The overflowing forbid never *matches* either: it errors instead.
    assert_eq!(
        warned,
        ["overflowing-forbid", "scheduler-never-evaluated"],
        "{:#?}",
        report.warnings
    );
    // Cedar skips the erroring forbid, so the allowed and denied sets do
    // not change; only --never-errors sees it.
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    assert_eq!(report.errors.len(), 1, "{:#?}", report.errors);
    let e = &report.errors[0];
    assert_eq!(e.policy, "overflowing-forbid");
    assert_eq!(
        e.review.as_ref().unwrap()["spec"]["nonResourceAttributes"]["path"],
        "/x"
    );
    let answer = e.answer.as_ref().unwrap_or_else(|| panic!("{e:#?}"));
    assert_eq!(answer.decision, "denied", "{e:#?}");
    assert_eq!(answer.decision, "denied");
    assert!(answer.evaluation_error.contains("overflow"), "{answer:?}");
    assert_eq!(report.exit_code(), 1);
}
