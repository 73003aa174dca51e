//! The files under `deploy/` are what a cluster admin copies onto control-plane
//! nodes, and the kube-apiserver refuses to start on a bad authorization
//! configuration. These tests hold those files to the rules the apiserver and
//! the kubelet apply (as of Kubernetes 1.32+, `AuthorizationConfiguration` v1),
//! so a mistake shows up here rather than as a control plane that does not come
//! back. They read the files only; nothing here talks to a cluster.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use cedar_authorizer::yaml;
use serde_json::Value;

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn read(relative: &str) -> String {
    let path = repo_path(relative);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every file under `dir`, recursively, in sorted order.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let entries = fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The documents of a YAML stream, empty ones left out.
fn parse_yaml_stream(text: &str) -> Result<Vec<Value>, String> {
    let docs = yaml::documents(text).map_err(|e| e.to_string())?;
    Ok(docs.into_iter().map(|d| d.value).collect())
}

fn load_yaml(relative: &str) -> Value {
    let mut docs = parse_yaml_stream(&read(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"));
    assert_eq!(
        docs.len(),
        1,
        "{relative}: expected exactly one YAML document"
    );
    docs.remove(0)
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn seq_at<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn keys_of(v: &Value) -> Vec<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Go-compatible helpers: durations and DNS-1123 names as the apiserver parses them.

/// Parses a duration the way Go's `time.ParseDuration` does (`metav1.Duration`
/// in the apiserver's config types), returning seconds.
fn parse_go_duration(s: &str) -> Result<f64, String> {
    let (negative, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0.0);
    }
    if rest.is_empty() {
        return Err(format!("invalid duration {s:?}"));
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(format!("invalid duration {s:?}"));
        }
        let value: f64 = number
            .parse()
            .map_err(|_| format!("invalid duration {s:?}"))?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("missing unit in duration {s:?}")),
            other => return Err(format!("unknown unit {other:?} in duration {s:?}")),
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Ok(if negative { -total } else { total })
}

/// `k8s.io/apimachinery/pkg/util/validation.IsDNS1123Subdomain`.
fn is_dns1123_subdomain(name: &str) -> bool {
    let label_ok = |label: &str| {
        let bytes = label.as_bytes();
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        !bytes.is_empty()
            && alnum(bytes[0])
            && alnum(bytes[bytes.len() - 1])
            && bytes.iter().all(|&b| alnum(b) || b == b'-')
    };
    !name.is_empty() && name.len() <= 253 && name.split('.').all(label_ok)
}

// ---------------------------------------------------------------------------
// A light CEL check: the apiserver compiles matchConditions at start-up and
// refuses the whole file on an error, so catch the common mistakes here.

/// Fields of the `request` variable (a SubjectAccessReviewSpec) in the
/// apiserver's CEL environment for authorization match conditions.
const SAR_SPEC_FIELDS: &[&str] = &[
    "user",
    "groups",
    "uid",
    "extra",
    "resourceAttributes",
    "nonResourceAttributes",
];

/// Returns what is wrong with a CEL expression, if anything: unbalanced
/// brackets or quotes, `request.<field>` naming no SubjectAccessReviewSpec
/// field, or a field read on a string field (`request.user.groups`).
fn cel_problems(expr: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let chars: Vec<char> = expr.chars().collect();
    let mut stack: Vec<char> = Vec::new();
    // Outside string literals, the code with each literal blanked out, so the
    // `request.` scan below never looks inside a string.
    let mut code = String::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' => {
                let triple = i + 2 < chars.len() && chars[i + 1] == c && chars[i + 2] == c;
                let delimiter_len = if triple { 3 } else { 1 };
                let mut j = i + delimiter_len;
                let mut closed = false;
                while j < chars.len() {
                    if chars[j] == '\\' {
                        j += 2;
                        continue;
                    }
                    let at_end = if triple {
                        j + 2 < chars.len()
                            && chars[j] == c
                            && chars[j + 1] == c
                            && chars[j + 2] == c
                    } else {
                        chars[j] == c
                    };
                    if at_end {
                        closed = true;
                        break;
                    }
                    if !triple && chars[j] == '\n' {
                        break;
                    }
                    j += 1;
                }
                if !closed {
                    problems.push(format!("unterminated string literal at offset {i}"));
                    return problems;
                }
                code.push_str("\"\"");
                i = j + delimiter_len;
                continue;
            }
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => {
                let expected = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if stack.pop() != Some(expected) {
                    problems.push(format!("unbalanced {c:?} at offset {i}"));
                    return problems;
                }
            }
            _ => {}
        }
        code.push(c);
        i += 1;
    }
    if let Some(open) = stack.last() {
        problems.push(format!("unclosed {open:?}"));
    }

    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let code: Vec<char> = code.chars().collect();
    let mut k = 0;
    while k < code.len() {
        let starts_word = k == 0 || !(is_ident(code[k - 1]) || code[k - 1] == '.');
        let rest: String = code[k..].iter().take(8).collect();
        if starts_word && rest == "request." {
            let field: String = code[k + 8..].iter().take_while(|&&c| is_ident(c)).collect();
            if !SAR_SPEC_FIELDS.contains(&field.as_str()) {
                problems.push(format!(
                    "request.{field} is not a SubjectAccessReviewSpec field (have: {})",
                    SAR_SPEC_FIELDS.join(", ")
                ));
            }
            let after = k + 8 + field.chars().count();
            if (field == "user" || field == "uid") && code.get(after) == Some(&'.') {
                let member: String = code[after + 1..]
                    .iter()
                    .take_while(|&&c| is_ident(c))
                    .collect();
                let next = code
                    .get(after + 1 + member.chars().count()..)
                    .and_then(|s| s.iter().find(|c| !c.is_whitespace()));
                if next != Some(&'(') {
                    problems.push(format!(
                        "request.{field} is a string; request.{field}.{member} reads a field of it"
                    ));
                }
            }
            k += 8;
            continue;
        }
        k += 1;
    }
    problems
}

// ---------------------------------------------------------------------------
// The AuthorizationConfiguration rules.

const AUTHORIZER_TYPES: &[&str] = &[
    "Webhook",
    "Node",
    "RBAC",
    "ABAC",
    "AlwaysAllow",
    "AlwaysDeny",
];
const WEBHOOK_FIELDS: &[&str] = &[
    "timeout",
    "authorizedTTL",
    "unauthorizedTTL",
    "subjectAccessReviewVersion",
    "matchConditionSubjectAccessReviewVersion",
    "failurePolicy",
    "connectionInfo",
    "matchConditions",
];

fn duration_field(webhook: &Value, field: &str, at: &str, errors: &mut Vec<String>) -> Option<f64> {
    match webhook.get(field) {
        None => {
            errors.push(format!("{at}.{field}: required"));
            None
        }
        Some(Value::String(s)) => match parse_go_duration(s) {
            Ok(d) => Some(d),
            Err(e) => {
                errors.push(format!("{at}.{field}: {e}"));
                None
            }
        },
        Some(other) => {
            errors.push(format!(
                "{at}.{field}: must be a duration string such as \"3s\", got {other:?}"
            ));
            None
        }
    }
}

fn validate_webhook(webhook: &Value, at: &str, errors: &mut Vec<String>) {
    for key in keys_of(webhook) {
        if !WEBHOOK_FIELDS.contains(&key.as_str()) {
            errors.push(format!("{at}.{key}: unknown field"));
        }
    }

    if let Some(timeout) = duration_field(webhook, "timeout", at, errors) {
        if timeout <= 0.0 || timeout > 30.0 {
            errors.push(format!("{at}.timeout: must be > 0s and <= 30s"));
        }
    }
    for ttl in ["authorizedTTL", "unauthorizedTTL"] {
        if let Some(d) = duration_field(webhook, ttl, at, errors) {
            if d <= 0.0 {
                errors.push(format!("{at}.{ttl}: must be > 0s"));
            }
        }
    }

    match str_at(webhook, "subjectAccessReviewVersion") {
        Some("v1" | "v1beta1") => {}
        Some(v) => errors.push(format!(
            "{at}.subjectAccessReviewVersion: {v:?} not one of v1, v1beta1"
        )),
        None => errors.push(format!("{at}.subjectAccessReviewVersion: required")),
    }

    let conditions = seq_at(webhook, "matchConditions");
    match str_at(webhook, "matchConditionSubjectAccessReviewVersion") {
        Some("v1") => {}
        Some(v) => errors.push(format!(
            "{at}.matchConditionSubjectAccessReviewVersion: {v:?} not supported (only v1)"
        )),
        None if !conditions.is_empty() => errors.push(format!(
            "{at}.matchConditionSubjectAccessReviewVersion: required when matchConditions are set"
        )),
        None => {}
    }

    match str_at(webhook, "failurePolicy") {
        Some("NoOpinion" | "Deny") => {}
        Some(v) => errors.push(format!(
            "{at}.failurePolicy: {v:?} not one of NoOpinion, Deny"
        )),
        None => errors.push(format!("{at}.failurePolicy: required")),
    }

    let connection = webhook.get("connectionInfo").unwrap_or(&Value::Null);
    match str_at(connection, "type") {
        Some("KubeConfigFile") => match str_at(connection, "kubeConfigFile") {
            Some(p) if p.starts_with('/') => {}
            Some(p) => errors.push(format!(
                "{at}.connectionInfo.kubeConfigFile: {p:?} must be an absolute path"
            )),
            None => errors.push(format!("{at}.connectionInfo.kubeConfigFile: required")),
        },
        Some("InClusterConfig") => {
            if connection.get("kubeConfigFile").is_some() {
                errors.push(format!(
                    "{at}.connectionInfo.kubeConfigFile: only allowed with type KubeConfigFile"
                ));
            }
        }
        Some(t) => errors.push(format!(
            "{at}.connectionInfo.type: {t:?} not one of KubeConfigFile, InClusterConfig"
        )),
        None => errors.push(format!("{at}.connectionInfo.type: required")),
    }

    if conditions.len() > 64 {
        errors.push(format!(
            "{at}.matchConditions: {} given, at most 64",
            conditions.len()
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, condition) in conditions.iter().enumerate() {
        let cat = format!("{at}.matchConditions[{i}].expression");
        let Some(expr) = str_at(condition, "expression") else {
            errors.push(format!("{cat}: required"));
            continue;
        };
        if expr.trim().is_empty() {
            errors.push(format!("{cat}: required"));
            continue;
        }
        if !seen.insert(expr.to_owned()) {
            errors.push(format!("{cat}: duplicate expression"));
        }
        for problem in cel_problems(expr) {
            errors.push(format!("{cat}: {problem}"));
        }
    }
}

/// Every rule of `ValidateAuthorizationConfiguration` that can be checked
/// without the apiserver's file system and CEL compiler, plus the ordering this
/// project depends on: Node, then the webhook(s), then RBAC.
fn authorization_config_errors(config: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    if str_at(config, "apiVersion") != Some("apiserver.config.k8s.io/v1") {
        errors.push(format!(
            "apiVersion: expected apiserver.config.k8s.io/v1, got {:?}",
            str_at(config, "apiVersion")
        ));
    }
    if str_at(config, "kind") != Some("AuthorizationConfiguration") {
        errors.push(format!(
            "kind: expected AuthorizationConfiguration, got {:?}",
            str_at(config, "kind")
        ));
    }
    let authorizers = seq_at(config, "authorizers");
    if authorizers.is_empty() {
        errors.push("authorizers: at least one authorization mode must be defined".to_owned());
    }

    let mut seen_types = BTreeSet::new();
    let mut seen_names = BTreeSet::new();
    for (i, authorizer) in authorizers.iter().enumerate() {
        let at = format!("authorizers[{i}]");
        for key in keys_of(authorizer) {
            if !["type", "name", "webhook"].contains(&key.as_str()) {
                errors.push(format!("{at}.{key}: unknown field"));
            }
        }
        let Some(kind) = str_at(authorizer, "type") else {
            errors.push(format!("{at}.type: required"));
            continue;
        };
        if !AUTHORIZER_TYPES.contains(&kind) {
            errors.push(format!(
                "{at}.type: {kind:?} not one of {}",
                AUTHORIZER_TYPES.join(", ")
            ));
            continue;
        }
        if !seen_types.insert(kind) && kind != "Webhook" {
            errors.push(format!(
                "{at}.type: duplicate {kind} (only Webhook may repeat)"
            ));
            continue;
        }
        match str_at(authorizer, "name") {
            None | Some("") => errors.push(format!("{at}.name: required")),
            Some(name) if !seen_names.insert(name) => {
                errors.push(format!("{at}.name: duplicate name {name:?}"));
            }
            Some(name) if !is_dns1123_subdomain(name) => {
                errors.push(format!("{at}.name: {name:?} is not a DNS-1123 subdomain"));
            }
            Some(_) => {}
        }
        match (kind, authorizer.get("webhook")) {
            ("Webhook", Some(webhook)) => {
                validate_webhook(webhook, &format!("{at}.webhook"), &mut errors)
            }
            ("Webhook", None) => errors.push(format!("{at}.webhook: required when type=Webhook")),
            (_, Some(_)) => errors.push(format!("{at}.webhook: only allowed when type=Webhook")),
            (_, None) => {}
        }
    }

    let position = |kind: &str| {
        authorizers
            .iter()
            .position(|a| str_at(a, "type") == Some(kind))
    };
    let webhooks: Vec<usize> = authorizers
        .iter()
        .enumerate()
        .filter(|(_, a)| str_at(a, "type") == Some("Webhook"))
        .map(|(i, _)| i)
        .collect();
    match (
        position("Node"),
        webhooks.first(),
        webhooks.last(),
        position("RBAC"),
    ) {
        (Some(node), Some(&first), Some(&last), Some(rbac)) => {
            if node > first {
                errors.push("order: Node must come before the webhook".to_owned());
            }
            if last > rbac {
                errors.push(
                    "order: the webhook must come before RBAC, or a Cedar forbid can never deny"
                        .to_owned(),
                );
            }
        }
        _ => errors.push("order: expected Node, a Webhook and RBAC".to_owned()),
    }
    errors
}

fn config_with_webhook(webhook_yaml: &str) -> Value {
    let indented: String = webhook_yaml
        .lines()
        .map(|l| format!("      {l}\n"))
        .collect();
    let text = format!(
        "apiVersion: apiserver.config.k8s.io/v1\n\
         kind: AuthorizationConfiguration\n\
         authorizers:\n\
         - type: Node\n  name: node\n\
         - type: Webhook\n  name: cedar\n  webhook:\n{indented}\
         - type: RBAC\n  name: rbac\n"
    );
    yaml::from_str(&text).unwrap_or_else(|e| panic!("test fixture: {e}\n{text}"))
}

const GOOD_WEBHOOK: &str = "timeout: 3s
authorizedTTL: 30s
unauthorizedTTL: 10s
subjectAccessReviewVersion: v1
matchConditionSubjectAccessReviewVersion: v1
failurePolicy: NoOpinion
connectionInfo:
  type: KubeConfigFile
  kubeConfigFile: /etc/kubernetes/cedar/webhook.kubeconfig
matchConditions:
- expression: '!(\"system:serviceaccounts:kube-system\" in request.groups)'
";

// ---------------------------------------------------------------------------
// Tests.

#[test]
fn every_yaml_and_json_file_under_deploy_parses() {
    let deploy = repo_path("deploy");
    let mut checked = Vec::new();
    let mut failures = Vec::new();
    for path in files_under(&deploy) {
        let name = path.to_string_lossy().into_owned();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let is_kubeconfig = path.file_name().and_then(|n| n.to_str()) == Some("webhook.kubeconfig");
        let text = match ext {
            "yaml" | "yml" | "json" => fs::read_to_string(&path),
            _ if is_kubeconfig => fs::read_to_string(&path),
            _ => continue,
        };
        let text = match text {
            Ok(t) => t,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let result = if ext == "json" {
            serde_json::from_str::<serde_json::Value>(&text)
                .map(|_| ())
                .map_err(|e| e.to_string())
        } else {
            parse_yaml_stream(&text).and_then(|docs| {
                if docs.is_empty() {
                    Err("no YAML document".to_owned())
                } else {
                    Ok(())
                }
            })
        };
        match result {
            Ok(()) => checked.push(name),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "files that do not parse:\n{}",
        failures.join("\n")
    );
    for expected in [
        "authorization-config.yaml",
        "static-pod.yaml",
        "kind-config.yaml",
        "cluster-patch.yaml",
        "alerts.yaml",
        "grafana-dashboard.json",
        "webhook.kubeconfig",
    ] {
        assert!(
            checked.iter().any(|c| c.ends_with(expected)),
            "{expected} was not found under deploy/ (checked: {checked:?})"
        );
    }
}

#[test]
fn yaml_streams_split_into_their_documents() {
    let text =
        "# leading comment\n---\na: 1\n---\n# only a comment\n---\nb: |\n  text\n...\n--- {c: 3}\n";
    let docs = parse_yaml_stream(text).expect("valid stream");
    assert_eq!(docs.len(), 3, "{docs:?}");
    assert_eq!(docs[1].get("b").and_then(Value::as_str), Some("text\n"));
    assert_eq!(docs[2].get("c").and_then(Value::as_i64), Some(3));
    assert!(parse_yaml_stream("a: [1\n---\nb: 2\n").is_err());
}

#[test]
fn authorization_config_passes_apiserver_validation() {
    let config = load_yaml("deploy/authorization-config.yaml");
    let errors = authorization_config_errors(&config);
    assert!(
        errors.is_empty(),
        "deploy/authorization-config.yaml:\n{}",
        errors.join("\n")
    );
}

#[test]
fn authorization_config_keeps_control_plane_off_the_webhook() {
    let config = load_yaml("deploy/authorization-config.yaml");
    let webhook = seq_at(&config, "authorizers")
        .iter()
        .find(|a| str_at(a, "type") == Some("Webhook"))
        .and_then(|a| a.get("webhook"))
        .expect("a Webhook authorizer");
    let expressions: Vec<&str> = seq_at(webhook, "matchConditions")
        .iter()
        .filter_map(|c| str_at(c, "expression"))
        .collect();
    assert!(
        expressions
            .iter()
            .any(|e| e.contains("system:serviceaccounts:kube-system")),
        "kube-system service accounts should be kept off the webhook: {expressions:?}"
    );
    assert!(
        expressions.iter().any(|e| e.contains("request.user") && e.contains("\"system:\"")),
        "control-plane users (system:kube-scheduler, ...) should be kept off the webhook: {expressions:?}"
    );
    assert_eq!(
        str_at(webhook, "subjectAccessReviewVersion"),
        Some("v1"),
        "the webhook speaks SubjectAccessReview v1"
    );
}

#[test]
fn validator_accepts_a_minimal_good_config() {
    let errors = authorization_config_errors(&config_with_webhook(GOOD_WEBHOOK));
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn validator_rejects_mistakes_seen_in_published_examples() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "type: KubeConfigFile",
            "type: KubeConfig",
            "connectionInfo.type",
        ),
        (
            "in request.groups",
            "in request.user.groups",
            "request.user is a string",
        ),
        (
            "in request.groups",
            "in request.group",
            "not a SubjectAccessReviewSpec field",
        ),
        (
            "timeout: 3s",
            "timeout: 45s",
            "timeout: must be > 0s and <= 30s",
        ),
        (
            "timeout: 3s",
            "timeout: 0s",
            "timeout: must be > 0s and <= 30s",
        ),
        (
            "timeout: 3s",
            "timeout: 3",
            "timeout: must be a duration string",
        ),
        (
            "authorizedTTL: 30s",
            "authorizedTTL: 5 minutes",
            "authorizedTTL",
        ),
        (
            "matchConditionSubjectAccessReviewVersion: v1\n",
            "",
            "required when matchConditions are set",
        ),
        (
            "matchConditionSubjectAccessReviewVersion: v1",
            "matchConditionSubjectAccessReviewVersion: v1beta1",
            "only v1",
        ),
        (
            "subjectAccessReviewVersion: v1\n",
            "subjectAccessReviewVersion: v2\n",
            "subjectAccessReviewVersion",
        ),
        (
            "failurePolicy: NoOpinion",
            "failurePolicy: Ignore",
            "failurePolicy",
        ),
        (
            "kubeConfigFile: /etc/kubernetes/cedar/webhook.kubeconfig",
            "kubeConfigFile: webhook.kubeconfig",
            "absolute path",
        ),
        (
            "unauthorizedTTL: 10s",
            "unauthorizedTTl: 10s",
            "unknown field",
        ),
        ("in request.groups)'", "in request.groups'", "unclosed"),
        ("in request.groups)'", "in request.groups))'", "unbalanced"),
        ("kube-system\" in", "kube-system in", "unterminated string"),
    ];
    for (from, to, expected) in cases {
        assert!(GOOD_WEBHOOK.contains(from), "fixture lacks {from:?}");
        let webhook = GOOD_WEBHOOK.replacen(from, to, 1);
        let errors = authorization_config_errors(&config_with_webhook(&webhook));
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{from:?} -> {to:?}: expected an error containing {expected:?}, got {errors:?}"
        );
    }
}

#[test]
fn validator_rejects_bad_chains() {
    let chain = |authorizers: &str| -> Vec<String> {
        let text = format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthorizationConfiguration\nauthorizers:\n{authorizers}"
        );
        authorization_config_errors(&yaml::from_str(&text).expect("fixture"))
    };
    let webhook: String = GOOD_WEBHOOK.lines().map(|l| format!("    {l}\n")).collect();
    let hook = format!("- type: Webhook\n  name: cedar\n  webhook:\n{webhook}");

    let errors = chain(&format!(
        "- {{type: Node, name: node}}\n- {{type: RBAC, name: rbac}}\n{hook}"
    ));
    assert!(
        errors.iter().any(|e| e.contains("before RBAC")),
        "{errors:?}"
    );

    let errors = chain(&format!(
        "{hook}- {{type: Node, name: node}}\n- {{type: RBAC, name: rbac}}\n"
    ));
    assert!(
        errors.iter().any(|e| e.contains("Node must come before")),
        "{errors:?}"
    );

    let errors = chain(&format!(
        "- {{type: Node, name: node}}\n{hook}- {{type: RBAC, name: node}}\n"
    ));
    assert!(
        errors.iter().any(|e| e.contains("duplicate name")),
        "{errors:?}"
    );

    let errors = chain(&format!(
        "- {{type: Node, name: Node_1}}\n{hook}- {{type: RBAC, name: rbac}}\n"
    ));
    assert!(errors.iter().any(|e| e.contains("DNS-1123")), "{errors:?}");

    let errors = chain(&format!("- {{type: Node, name: node}}\n{hook}- {{type: RBAC, name: rbac}}\n- {{type: RBAC, name: rbac2}}\n"));
    assert!(
        errors.iter().any(|e| e.contains("duplicate RBAC")),
        "{errors:?}"
    );

    let errors = chain(&format!(
        "- {{type: Node, name: node}}\n{hook}- {{type: Rbac, name: rbac}}\n"
    ));
    assert!(
        errors.iter().any(|e| e.contains("not one of")),
        "{errors:?}"
    );

    let errors = chain(
        "- {type: Node, name: node}\n- {type: Webhook, name: cedar}\n- {type: RBAC, name: rbac}\n",
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("required when type=Webhook")),
        "{errors:?}"
    );

    let conditions: String = (0..65)
        .map(|i| format!("    - expression: 'request.user != \"u{i}\"'\n"))
        .collect();
    let many = format!("{webhook}    - expression: 'true'\n{conditions}");
    let errors = chain(&format!(
        "- {{type: Node, name: node}}\n- type: Webhook\n  name: cedar\n  webhook:\n{many}- {{type: RBAC, name: rbac}}\n"
    ));
    assert!(
        errors.iter().any(|e| e.contains("at most 64")),
        "{errors:?}"
    );
}

#[test]
fn go_durations_parse_like_go() {
    assert_eq!(parse_go_duration("3s"), Ok(3.0));
    assert_eq!(parse_go_duration("1m30s"), Ok(90.0));
    assert_eq!(parse_go_duration("1.5h"), Ok(5400.0));
    let quarter = parse_go_duration("250ms").expect("250ms");
    assert!((quarter - 0.25).abs() < 1e-12, "{quarter}");
    assert_eq!(parse_go_duration("0"), Ok(0.0));
    assert_eq!(parse_go_duration("-2s"), Ok(-2.0));
    for bad in ["", "3", "s", "3 s", "3sec", "1d", "..5s"] {
        assert!(parse_go_duration(bad).is_err(), "{bad:?} should not parse");
    }
}

#[test]
fn dns1123_subdomains_follow_apimachinery() {
    for good in ["cedar", "cedar-authorizer", "a.b-c.d", "0cedar"] {
        assert!(is_dns1123_subdomain(good), "{good}");
    }
    let too_long = "a".repeat(254);
    for bad in [
        "",
        "Cedar",
        "cedar_authorizer",
        "-cedar",
        "cedar-",
        "a..b",
        too_long.as_str(),
    ] {
        assert!(!is_dns1123_subdomain(bad), "{bad}");
    }
}

#[test]
fn cel_check_reads_request_fields_and_brackets() {
    assert!(
        cel_problems("request.resourceAttributes.namespace == 'x' && has(request.extra)")
            .is_empty()
    );
    assert!(cel_problems("request.user.startsWith(\"system:\")").is_empty());
    assert!(
        cel_problems("\"request.nope\" == request.user").is_empty(),
        "text in strings is not code"
    );
    assert!(
        cel_problems("myrequest.nope == 1").is_empty(),
        "only the `request` variable is checked"
    );
    assert!(!cel_problems("request.verb == 'get'").is_empty());
    assert!(!cel_problems("request.uid.value == 'x'").is_empty());
    assert!(!cel_problems("[1, 2").is_empty());
    assert!(!cel_problems("'abc").is_empty());
}

/// Every long flag of `cedar-authorizer serve`, read from the real command
/// line definition (so a renamed or removed flag fails here).
fn serve_flags() -> Vec<String> {
    use clap::CommandFactory;
    let cli = cedar_authorizer::cmd::Cli::command();
    let serve = cli
        .get_subcommands()
        .find(|c| c.get_name() == "serve")
        .expect("a serve subcommand");
    serve
        .get_arguments()
        .filter_map(|a| a.get_long())
        .map(|l| format!("--{l}"))
        .collect()
}

/// `--flag=value` arguments of a container, as (flag, value) pairs.
fn flag_values(args: &[Value]) -> Vec<(String, String)> {
    args.iter()
        .filter_map(Value::as_str)
        .filter(|a| a.starts_with("--"))
        .map(|a| match a.split_once('=') {
            Some((f, v)) => (f.to_owned(), v.to_owned()),
            None => (a.to_owned(), String::new()),
        })
        .collect()
}

fn flag<'a>(flags: &'a [(String, String)], name: &str) -> Option<&'a str> {
    flags
        .iter()
        .find(|(f, _)| f == name)
        .map(|(_, v)| v.as_str())
}

fn static_pod_container() -> (Value, Value) {
    let pod = load_yaml("deploy/static-pod.yaml");
    let containers = pod
        .get("spec")
        .map(|s| seq_at(s, "containers"))
        .unwrap_or(&[]);
    assert_eq!(containers.len(), 1, "one container expected");
    let container = containers[0].clone();
    (pod, container)
}

#[test]
fn static_pod_runs_locked_down_as_non_root() {
    let (pod, container) = static_pod_container();
    assert_eq!(str_at(&pod, "apiVersion"), Some("v1"));
    assert_eq!(str_at(&pod, "kind"), Some("Pod"));
    let spec = pod.get("spec").expect("spec");
    assert_eq!(spec.get("hostNetwork").and_then(Value::as_bool), Some(true));
    assert_eq!(
        str_at(spec, "priorityClassName"),
        Some("system-node-critical")
    );

    let pod_sc = spec.get("securityContext").cloned().unwrap_or(Value::Null);
    let sc = container
        .get("securityContext")
        .cloned()
        .unwrap_or(Value::Null);
    // A container setting wins over the Pod's, as in the kubelet.
    let effective = |key: &str| sc.get(key).or_else(|| pod_sc.get(key)).cloned();
    assert_eq!(
        effective("runAsNonRoot").and_then(|v| v.as_bool()),
        Some(true)
    );
    let uid = effective("runAsUser").and_then(|v| v.as_i64());
    assert!(
        matches!(uid, Some(u) if u > 0),
        "runAsUser must be a non-root uid, got {uid:?}"
    );
    assert_eq!(uid, Some(65532));
    assert_eq!(
        sc.get("readOnlyRootFilesystem").and_then(Value::as_bool),
        Some(true)
    );
    assert_eq!(
        sc.get("allowPrivilegeEscalation").and_then(Value::as_bool),
        Some(false)
    );
    assert_ne!(sc.get("privileged").and_then(Value::as_bool), Some(true));
    let dropped: Vec<&str> = sc
        .get("capabilities")
        .map(|c| seq_at(c, "drop"))
        .unwrap_or(&[])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        dropped.contains(&"ALL"),
        "capabilities.drop must contain ALL, got {dropped:?}"
    );
    assert!(
        sc.get("capabilities")
            .map(|c| seq_at(c, "add").is_empty())
            .unwrap_or(true),
        "no capabilities may be added"
    );
    let seccomp = effective("seccompProfile");
    assert_eq!(
        seccomp.as_ref().and_then(|s| str_at(s, "type")),
        Some("RuntimeDefault"),
        "seccompProfile"
    );

    let resources = container.get("resources").expect("resources");
    for section in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                resources
                    .get(section)
                    .and_then(|s| s.get(resource))
                    .is_some(),
                "resources.{section}.{resource} missing"
            );
        }
    }

    // Only read-only hostPath mounts: the webhook writes nothing to the node.
    for mount in seq_at(&container, "volumeMounts") {
        assert_eq!(
            mount.get("readOnly").and_then(Value::as_bool),
            Some(true),
            "mount {:?} must be read-only",
            str_at(mount, "name")
        );
    }
    for volume in seq_at(spec, "volumes") {
        let path = volume.get("hostPath").and_then(|h| str_at(h, "path"));
        assert!(
            matches!(path, Some(p) if p.starts_with("/etc/kubernetes/cedar/")),
            "volume {:?} should be a hostPath under /etc/kubernetes/cedar/",
            str_at(volume, "name")
        );
    }
}

#[test]
fn static_pod_probes_hit_healthz_and_readyz_on_the_admin_port() {
    let (_, container) = static_pod_container();
    let args = seq_at(&container, "args");
    assert_eq!(args.first().and_then(Value::as_str), Some("serve"));
    let flags = flag_values(args);
    let admin = flag(&flags, "--metrics-bind-address").unwrap_or("127.0.0.1:10289");
    let (admin_host, admin_port) = admin.rsplit_once(':').expect("host:port");
    let admin_port: i64 = admin_port.parse().expect("admin port");

    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = container
            .get(probe)
            .and_then(|p| p.get("httpGet"))
            .unwrap_or_else(|| panic!("{probe}.httpGet missing"));
        assert_eq!(str_at(get, "path"), Some(path), "{probe}.httpGet.path");
        assert_eq!(
            get.get("port").and_then(Value::as_i64),
            Some(admin_port),
            "{probe} port"
        );
        assert_eq!(
            str_at(get, "scheme").unwrap_or("HTTP"),
            "HTTP",
            "{probe}: the admin listener is plain HTTP"
        );
        // With hostNetwork the kubelet probes the node address unless told otherwise.
        assert_eq!(
            str_at(get, "host"),
            Some(admin_host),
            "{probe} host must match --metrics-bind-address"
        );
    }
}

#[test]
fn static_pod_uses_only_real_serve_flags() {
    let (_, container) = static_pod_container();
    let flags = flag_values(seq_at(&container, "args"));
    let known = serve_flags();
    assert!(known.iter().any(|f| f == "--cache-max-bytes"), "{known:?}");
    for (name, _) in &flags {
        assert!(known.contains(name), "unknown serve flag {name}");
    }
    for required in [
        "--tls-cert-file",
        "--tls-private-key-file",
        "--client-ca-file",
        "--allowed-client-cn",
        "--policies",
    ] {
        assert!(
            flag(&flags, required).is_some(),
            "{required} should be set in the static Pod"
        );
    }
    for (name, value) in &flags {
        if name.ends_with("-file") || name == "--policies" {
            assert!(value.starts_with('/'), "{name}={value} should be absolute");
        }
    }
}

fn kubeconfig() -> Value {
    load_yaml("deploy/webhook.kubeconfig")
}

#[test]
fn webhook_kubeconfig_targets_authorize_with_absolute_paths() {
    let config = kubeconfig();
    assert_eq!(str_at(&config, "kind"), Some("Config"));
    let clusters = seq_at(&config, "clusters");
    let users = seq_at(&config, "users");
    assert_eq!(clusters.len(), 1);
    assert_eq!(users.len(), 1);

    let cluster = clusters[0].get("cluster").expect("clusters[0].cluster");
    let server = str_at(cluster, "server").expect("server");
    let rest = server
        .strip_prefix("https://")
        .expect("server must be https");
    let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("");
    assert_eq!(
        path, "/authorize",
        "the apiserver POSTs to the exact server URL"
    );

    let user = users[0].get("user").expect("users[0].user");
    for (section, key) in [
        (cluster, "certificate-authority"),
        (user, "client-certificate"),
        (user, "client-key"),
    ] {
        let value = str_at(section, key).unwrap_or_else(|| panic!("{key} missing"));
        assert!(
            value.starts_with("/etc/kubernetes/cedar/"),
            "{key}: {value} should be an absolute path under /etc/kubernetes/cedar/"
        );
    }
    assert!(
        str_at(&config, "current-context").is_some(),
        "current-context"
    );
}

#[test]
fn kubeconfig_points_where_the_static_pod_listens() {
    let (_, container) = static_pod_container();
    let flags = flag_values(seq_at(&container, "args"));
    let config = kubeconfig();
    let cluster = seq_at(&config, "clusters")[0]
        .get("cluster")
        .cloned()
        .expect("cluster");
    let server = str_at(&cluster, "server").expect("server");
    let authority = server
        .strip_prefix("https://")
        .and_then(|r| r.split('/').next())
        .expect("authority");
    let bind = flag(&flags, "--bind-address").unwrap_or("127.0.0.1");
    let port = flag(&flags, "--secure-port").unwrap_or("10288");
    assert_eq!(authority, format!("{bind}:{port}"));

    // One CA signs both sides: the apiserver trusts it for the serving
    // certificate and the webhook trusts it for the apiserver's client one.
    assert_eq!(
        str_at(&cluster, "certificate-authority"),
        flag(&flags, "--client-ca-file")
    );
    let user = seq_at(&config, "users")[0]
        .get("user")
        .cloned()
        .expect("user");
    let client_cert = str_at(&user, "client-certificate").expect("client-certificate");
    assert!(
        client_cert.ends_with("/apiserver-client.pem"),
        "{client_cert}"
    );
    assert_eq!(
        flag(&flags, "--allowed-client-cn"),
        Some("system:apiserver")
    );

    let authz = load_yaml("deploy/authorization-config.yaml");
    let kubeconfig_file = seq_at(&authz, "authorizers")
        .iter()
        .find_map(|a| a.get("webhook"))
        .and_then(|w| w.get("connectionInfo"))
        .and_then(|c| str_at(c, "kubeConfigFile"))
        .expect("kubeConfigFile");
    assert_eq!(kubeconfig_file, "/etc/kubernetes/cedar/webhook.kubeconfig");
}

#[test]
fn kind_config_hands_the_authorization_config_to_the_apiserver() {
    let config = load_yaml("deploy/kind/kind-config.yaml");
    assert_eq!(str_at(&config, "kind"), Some("Cluster"));
    assert_eq!(
        str_at(&config, "apiVersion"),
        Some("kind.x-k8s.io/v1alpha4")
    );
    let control_plane = seq_at(&config, "nodes")
        .iter()
        .find(|n| str_at(n, "role") == Some("control-plane"))
        .expect("a control-plane node");
    let mounts: Vec<&str> = seq_at(control_plane, "extraMounts")
        .iter()
        .filter_map(|m| str_at(m, "containerPath"))
        .collect();
    assert!(mounts.contains(&"/etc/kubernetes/cedar"), "{mounts:?}");
    assert!(
        mounts.iter().any(|m| m.starts_with("/etc/kubernetes/manifests/")),
        "the static Pod manifest should be mounted into the kubelet's manifest directory: {mounts:?}"
    );

    let patches: Vec<Value> = seq_at(&config, "kubeadmConfigPatches")
        .iter()
        .filter_map(Value::as_str)
        .map(|p| yaml::from_str(p).expect("kubeadm patch parses"))
        .collect();
    let cluster_config = patches
        .iter()
        .find(|p| str_at(p, "kind") == Some("ClusterConfiguration"))
        .expect("a ClusterConfiguration patch");
    let api_server = cluster_config.get("apiServer").expect("apiServer");
    let args = seq_at(api_server, "extraArgs");
    let authz = args
        .iter()
        .find(|a| str_at(a, "name") == Some("authorization-config"))
        .and_then(|a| str_at(a, "value"))
        .expect("apiServer.extraArgs authorization-config (kubeadm v1beta4 list form)");
    assert!(
        args.iter()
            .all(|a| str_at(a, "name") != Some("authorization-mode")),
        "authorization-mode cannot be combined with authorization-config"
    );
    let mounted = seq_at(api_server, "extraVolumes")
        .iter()
        .filter_map(|v| str_at(v, "mountPath"))
        .any(|m| authz.starts_with(&format!("{}/", m.trim_end_matches('/'))));
    assert!(
        mounted,
        "{authz} must be inside an apiServer.extraVolumes mount"
    );
}

#[test]
fn eks_anywhere_patch_sets_an_absolute_authorization_config() {
    let config = load_yaml("deploy/eks-anywhere/cluster-patch.yaml");
    assert_eq!(str_at(&config, "kind"), Some("Cluster"));
    let path = config
        .get("spec")
        .and_then(|s| s.get("controlPlaneConfiguration"))
        .and_then(|c| c.get("apiServerExtraArgs"))
        .and_then(|a| str_at(a, "authorization-config"))
        .expect("spec.controlPlaneConfiguration.apiServerExtraArgs.authorization-config");
    assert!(path.starts_with('/'), "{path} should be absolute");
}
