//! The policy author's loop through the binary: `test` on the example
//! library and on a fixture that must fail, JUnit output, `fmt` and
//! `fmt --check`, and `validate`'s diagnostics in text and JSON.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cedar-authorizer"))
        .current_dir(root())
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

const WRONG: &str = "tests/fixtures/policy-tests/wrong-expectation.yaml";

#[test]
fn example_library_tests_pass() {
    let o = run(&["test", "--policies", "policies", "policies/tests"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    let last = out.lines().last().unwrap();
    let (passed, failed) = last.split_once(" passed, ").unwrap();
    assert_eq!(failed, "0 failed", "{out}");
    assert!(passed.parse::<usize>().unwrap() >= 40, "{out}");
}

#[test]
fn every_example_policy_is_tested() {
    let policies = std::fs::read_dir(root().join("policies"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).into_iter().flatten())
        .map(|f| f.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cedar"))
        .flat_map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            text.lines()
                .filter_map(|l| {
                    l.strip_prefix("@id(\"")?
                        .strip_suffix("\")")
                        .map(str::to_owned)
                })
                .collect::<Vec<_>>()
        })
        .collect::<Vec<_>>();
    assert!(policies.len() >= 8, "{policies:?}");
    let tests: String = std::fs::read_dir(root().join("policies/tests"))
        .unwrap()
        .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
        .collect();
    for id in policies {
        assert!(tests.contains(&id), "no test names policy {id}");
    }
}

#[test]
fn a_wrong_expectation_fails_with_its_file_and_line() {
    let o = run(&["test", WRONG]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "{WRONG}:8: case viewers <delete> & \"pods\": expected allow by [viewers-read-all-but-secrets], got no-opinion by [] (no policy matched)"
        )),
        "{out}"
    );
    assert!(out.contains(&format!("{WRONG}:13: case the ids are checked too: expected allow by [platform-admin], got allow by [viewers-read-all-but-secrets]")), "{out}");
    assert_eq!(out.lines().last(), Some("1 passed, 2 failed"), "{out}");
}

#[test]
fn junit_output_is_valid_xml_naming_every_case() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("report.xml");
    let o = run(&[
        "test",
        "--junit",
        junit.to_str().unwrap(),
        WRONG,
        "policies/tests/nodes.yaml",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("failures"), Some("2"));
    let cases: Vec<_> = root
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len().to_string(), root.attribute("tests").unwrap());
    let failing = cases
        .iter()
        .find(|c| c.attribute("name") == Some("viewers <delete> & \"pods\""))
        .expect("the escaped case name survives the round trip");
    assert_eq!(failing.attribute("line"), Some("8"));
    let failure = failing
        .children()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    assert!(failure
        .attribute("message")
        .unwrap()
        .starts_with("expected allow"));
}

#[test]
fn a_malformed_test_file_fails_the_run_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.yaml",
        "cases:\n  - name: fine\n    request: {user: a, verb: get, path: /x}\n    expect: no-opinion\n  - name: typo\n    request: {user: a, verb: get, resoruce: pods}\n    expect: allow\n",
    );
    let o = run(&["test", bad.to_str().unwrap()]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!("{}:5: case typo: invalid case:", bad.display())),
        "{out}"
    );
    assert!(out.contains("resoruce"), "{out}");
    assert_eq!(out.lines().last(), Some("1 passed, 1 failed"));

    let not_yaml = write(dir.path(), "worse.yaml", "cases: [\n");
    let o = run(&["test", not_yaml.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("worse.yaml:"), "{}", stdout(&o));
}

#[test]
fn tests_do_not_run_against_invalid_policies() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "p/bad.cedar",
        "permit(principal, action, resource) when { nope };",
    );
    let o = run(&[
        "test",
        "--policies",
        dir.path().join("p").to_str().unwrap(),
        "policies/tests",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("bad.cedar:1:"), "{}", stderr(&o));
}

#[test]
fn example_library_is_formatted() {
    let o = run(&["fmt", "--check", "policies"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn fmt_check_names_an_unformatted_file_and_fmt_rewrites_it() {
    let dir = tempfile::tempdir().unwrap();
    let messy = write(
        dir.path(),
        "lib/messy.cedar",
        "// keep me\n@id(\"m\")\npermit(principal in k8s::Group::\"g\",action,resource is k8s::Resource) when {resource.resource==\"pods\"};\n",
    );
    let tidy = write(
        dir.path(),
        "lib/tidy.cedar",
        &std::fs::read_to_string(root().join("policies/nodes/node-self.cedar")).unwrap(),
    );
    let lib = dir.path().join("lib");
    let o = run(&["fmt", "--check", lib.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains(&messy.display().to_string()), "{out}");
    assert!(!out.contains(&tidy.display().to_string()), "{out}");
    let before = std::fs::read_to_string(&messy).unwrap();

    let o = run(&["fmt", lib.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let after = std::fs::read_to_string(&messy).unwrap();
    assert_ne!(before, after);
    assert!(
        after.starts_with("// keep me\n@id(\"m\")\npermit (\n"),
        "{after}"
    );
    assert_eq!(
        run(&["fmt", "--check", lib.to_str().unwrap()])
            .status
            .code(),
        Some(0)
    );
}

#[test]
fn fmt_checks_the_cedar_text_of_policy_objects_and_leaves_yaml_alone() {
    let dir = tempfile::tempdir().unwrap();
    let tidy = std::fs::read_to_string(root().join("policies/nodes/node-self.cedar")).unwrap();
    let indent = |t: &str| t.lines().map(|l| format!("    {l}\n")).collect::<String>();
    let yaml = format!(
        "# kept\napiVersion: cedar.k8s.aws/v1alpha1\nkind: Policy\nmetadata: {{name: tidy}}\nspec:\n  content: |\n{}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: other}}\n---\napiVersion: cedar.k8s.aws/v1alpha1\nkind: Policy\nmetadata: {{name: messy}}\nspec:\n  content: |\n    permit(principal,action,resource);\n",
        indent(&tidy)
    );
    let file = write(dir.path(), "objects.yaml", &yaml);
    let o = run(&["fmt", "--check", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("objects.yaml: Policy messy, spec.content"),
        "{out}"
    );
    assert!(!out.contains("Policy tidy"), "{out}");
    let o = run(&["fmt", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("does not rewrite YAML"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), yaml);
    let only_tidy = write(dir.path(), "tidy.yaml", yaml.split("---").next().unwrap());
    let o = run(&["fmt", "--check", only_tidy.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn fmt_reports_files_that_do_not_parse() {
    let dir = tempfile::tempdir().unwrap();
    let broken = write(dir.path(), "broken.cedar", "permit(principal,");
    let o = run(&["fmt", "--check", broken.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("broken.cedar: cannot format"),
        "{}",
        stderr(&o)
    );
}

/// `file:line:col: message`, then `N | source line`, then a caret under
/// the column.
fn assert_caret(err: &str, file: &str, line: usize, col: usize, source: &str) {
    let lines: Vec<&str> = err.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains(&format!("{file}:{line}:{col}: ")))
        .unwrap_or_else(|| panic!("no {file}:{line}:{col} in:\n{err}"));
    let gutter = format!("{line} | ");
    assert_eq!(lines[at + 1], format!("{gutter}{source}"), "{err}");
    assert_eq!(
        lines[at + 2],
        format!("{}^", " ".repeat(gutter.len() + col - 1)),
        "{err}"
    );
}

#[test]
fn validate_shows_syntax_errors_with_a_caret() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a.cedar",
        "permit (\n  principal,\n  actoin,\n  resource\n);\n",
    );
    let o = run(&["validate", "--policies", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_caret(&stderr(&o), "a.cedar", 3, 3, "  actoin,");
}

#[test]
fn validate_shows_type_errors_with_a_caret() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "t.cedar",
        "permit (principal, action, resource is k8s::Resource)\nwhen { resource.namespace == \"x\" };\n",
    );
    let o = run(&["validate", "--policies", dir.path().to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("namespace"), "{err}");
    assert_caret(
        &err,
        "t.cedar",
        2,
        8,
        "when { resource.namespace == \"x\" };",
    );
}

#[test]
fn validate_json_lists_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "t.cedar",
        "permit (principal, action, resource is k8s::Resource)\nwhen { resource.namespace == \"x\" };\n",
    );
    let o = run(&[
        "validate",
        "--format",
        "json",
        "--policies",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["valid"], false);
    let d = &v["diagnostics"][0];
    assert!(d["file"].as_str().unwrap().ends_with("t.cedar"), "{v}");
    assert_eq!(d["line"], 2);
    assert_eq!(d["column"], 8);
    assert_eq!(d["severity"], "error");
    assert!(d["message"].as_str().unwrap().contains("namespace"), "{v}");

    let o = run(&["validate", "--format", "json", "--policies", "policies"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert!(v["policies"].as_u64().unwrap() >= 8);
}

/// The fenced blocks of a Markdown file whose info string is `lang`.
fn fenced_blocks(markdown: &str, lang: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line.trim_start() == format!("```{lang}") => current = Some(String::new()),
            Some(block) if line.trim_start() == "```" => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    blocks
}

#[test]
fn authoring_guide_examples_validate_and_its_test_file_passes() {
    let guide = std::fs::read_to_string(root().join("docs/policy-authoring.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    let cedar = fenced_blocks(&guide, "cedar");
    assert!(cedar.len() >= 9, "only {} cedar blocks", cedar.len());
    for (i, block) in cedar.iter().enumerate() {
        write(&policies, &format!("block-{i:02}.cedar"), block);
    }
    let o = run(&["validate", "--policies", policies.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).is_empty(), "warnings: {}", stderr(&o));

    let tests: Vec<String> = fenced_blocks(&guide, "yaml")
        .into_iter()
        .filter(|b| b.contains("cases:"))
        .collect();
    assert_eq!(tests.len(), 1);
    let file = write(dir.path(), "guide.yaml", &tests[0]);
    let o = run(&[
        "test",
        "--policies",
        policies.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(stdout(&o).trim(), "8 passed, 0 failed");
}

/// `convert-rbac --format crd` writes Policy objects that `validate
/// --policy-objects` loads, with the ids the webhook would give them; an
/// invalid object is reported at its file, name and line.
#[test]
fn policy_objects_from_convert_rbac_validate_and_errors_name_the_object() {
    let dir = tempfile::tempdir().unwrap();
    let rbac = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: pod-reader}\nrules:\n- apiGroups: [\"\"]\n  resources: [pods]\n  verbs: [get]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: \"team:readers\"}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pod-reader}\nsubjects:\n- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: readers}\n";
    let rbac_file = write(dir.path(), "rbac.yaml", rbac);
    let o = run(&[
        "convert-rbac",
        "--format",
        "crd",
        rbac_file.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let objects = stdout(&o);
    assert!(objects.contains("kind: Policy\n"), "{objects}");
    assert!(
        objects.contains("apiVersion: cedar.k8s.aws/v1alpha1\n"),
        "{objects}"
    );
    let objects_file = write(dir.path(), "objects.yaml", &objects);
    let empty = dir.path().join("no-dir");
    let o = run(&[
        "validate",
        "--policies",
        empty.to_str().unwrap(),
        "--policy-objects",
        objects_file.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(0), "{report}{}", stderr(&o));
    assert!(report["policies"].as_u64().unwrap() >= 1, "{report}");

    let broken = write(
        dir.path(),
        "broken.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n---\napiVersion: cedar.k8s.aws/v1alpha1\nkind: Policy\nmetadata:\n  name: broken\nspec:\n  content: |\n    permit (\n      principal,\n      acton,\n      resource\n    );\n",
    );
    let o = run(&[
        "validate",
        "--policies",
        empty.to_str().unwrap(),
        "--policy-objects",
        broken.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "{}: Policy broken, spec.content:3:3:",
            broken.display()
        )),
        "{err}"
    );
}
