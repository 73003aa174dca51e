//! The Grafana dashboard and the Prometheus alerts under `deploy/monitoring/`
//! are only useful if every series they query exists. These tests pull each
//! metric name out of their PromQL and hold it to the list of metrics
//! cedar-authorizer exports (plus `up`, `process_*` and the kube-apiserver's
//! authorization-webhook metrics), so renaming a metric without updating the
//! dashboards and alerts fails here instead of leaving an empty panel or an
//! alert that can never fire.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use cedar_authorizer::yaml;
use serde_json::Value as Json;
// What the YAML files are read into; the same type as `Json`.
use serde_json::Value as Yaml;

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---------------------------------------------------------------------------
// What exists.

/// Metrics cedar-authorizer exports, by their exposition names.
const EXPORTED: &[&str] = &[
    "cedar_authorizer_requests_total",
    "cedar_authorizer_request_errors_total",
    "cedar_authorizer_cache_requests_total",
    "cedar_authorizer_cache_entries",
    "cedar_authorizer_evaluations_total",
    "cedar_authorizer_policies",
    "cedar_authorizer_policy_reloads_total",
    "cedar_authorizer_policy_generation",
    "cedar_authorizer_last_reload_success_timestamp_seconds",
    "cedar_authorizer_policy_decisions_total",
    "cedar_authorizer_evaluation_errors_total",
    "cedar_authorizer_exempt_total",
    "cedar_authorizer_tls_handshake_failures_total",
    "cedar_authorizer_build_info",
    "cedar_authorizer_shadow_decisions_total",
    "cedar_authorizer_shadow_admission_decisions_total",
    "cedar_authorizer_shadow_divergences_total",
    "cedar_authorizer_shadow_dropped_total",
    "cedar_authorizer_shadow_policy_reloads_total",
    "cedar_authorizer_shadow_policy_generation",
    "cedar_authorizer_shadow_policies",
];

/// Histograms cedar-authorizer exports; each also appears as `_bucket`, `_sum`
/// and `_count`.
const EXPORTED_HISTOGRAMS: &[&str] = &[
    "cedar_authorizer_request_duration_seconds",
    "cedar_authorizer_evaluation_duration_seconds",
];

/// The kube-apiserver's own metrics about its authorization webhooks.
const APISERVER: &[&str] = &[
    "apiserver_authorization_webhook_evaluations_total",
    "apiserver_authorization_webhook_evaluations_fail_open_total",
    "apiserver_authorization_decisions_total",
];

const APISERVER_HISTOGRAMS: &[&str] = &["apiserver_authorization_webhook_duration_seconds"];

fn is_known_metric(name: &str) -> bool {
    let histogram_series = |bases: &[&str]| {
        bases.iter().any(|base| {
            name == *base
                || ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|suffix| name.strip_suffix(suffix) == Some(base))
        })
    };
    EXPORTED.contains(&name)
        || APISERVER.contains(&name)
        || histogram_series(EXPORTED_HISTOGRAMS)
        || histogram_series(APISERVER_HISTOGRAMS)
        || name.starts_with("process_")
        || name == "up"
}

// ---------------------------------------------------------------------------
// Pulling metric names out of PromQL.

/// Aggregation operators, binary-operator keywords and modifiers: identifiers
/// in PromQL that are never metric names.
const KEYWORDS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "and",
    "or",
    "unless",
    "atan2",
    "inf",
    "nan",
];

/// Keywords followed by a parenthesised list of label names.
const LABEL_LIST_KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Index just past the bracket that closes the one at `open`, skipping
/// string literals; an error when it never closes.
fn skip_balanced(chars: &[char], open: usize) -> Result<usize, String> {
    let mut depth = 0usize;
    let mut i = open;
    while i < chars.len() {
        match chars[i] {
            '"' | '\'' | '`' => i = skip_string(chars, i)?,
            '(' | '[' | '{' => {
                depth += 1;
                i += 1;
            }
            ')' | ']' | '}' => {
                depth -= 1;
                i += 1;
                if depth == 0 {
                    return Ok(i);
                }
            }
            _ => i += 1,
        }
    }
    Err(format!(
        "{:?} at offset {open} is never closed",
        chars[open]
    ))
}

/// Index just past the string literal starting at `start`.
fn skip_string(chars: &[char], start: usize) -> Result<usize, String> {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() {
        if chars[i] == '\\' && quote != '`' {
            i += 2;
            continue;
        }
        if chars[i] == quote {
            return Ok(i + 1);
        }
        i += 1;
    }
    Err(format!("string at offset {start} is never closed"))
}

fn next_non_space(chars: &[char], mut i: usize) -> Option<(usize, char)> {
    while i < chars.len() {
        if !chars[i].is_whitespace() {
            return Some((i, chars[i]));
        }
        i += 1;
    }
    None
}

/// Names selected by `{__name__="..."}` inside a label matcher block.
fn names_in_matchers(block: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = block;
    while let Some(at) = rest.find("__name__") {
        rest = &rest[at + "__name__".len()..];
        let trimmed = rest.trim_start();
        if let Some(value) = trimmed.strip_prefix('=') {
            let value = value.trim_start();
            if let Some(q) = value
                .chars()
                .next()
                .filter(|c| matches!(c, '"' | '\'' | '`'))
            {
                if let Some(end) = value[1..].find(q) {
                    out.push(value[1..1 + end].to_owned());
                }
            }
        }
    }
    out
}

/// Every metric name a PromQL expression selects. Grafana variables (`$job`,
/// `${job}`, `$__rate_interval`) are skipped, as are label matchers, ranges,
/// durations, numbers, strings, functions (any identifier followed by `(`),
/// aggregation operators and label lists after by/without/on/ignoring/
/// group_left/group_right. Unbalanced brackets or quotes are an error.
fn metric_names(expr: &str) -> Result<BTreeSet<String>, String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut stack = Vec::new();
    let is_ident_start = |c: char| c.is_ascii_alphabetic() || c == '_' || c == ':';
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '"' | '\'' | '`' => i = skip_string(&chars, i)?,
            '{' => {
                let end = skip_balanced(&chars, i)?;
                let block: String = chars[i + 1..end - 1].iter().collect();
                names.extend(names_in_matchers(&block));
                i = end;
            }
            '[' => i = skip_balanced(&chars, i)?,
            '$' => {
                i += 1;
                if chars.get(i) == Some(&'{') {
                    i = skip_balanced(&chars, i)?;
                } else {
                    while i < chars.len() && is_ident(chars[i]) {
                        i += 1;
                    }
                }
            }
            '(' => {
                stack.push(i);
                i += 1;
            }
            ')' => {
                stack
                    .pop()
                    .ok_or_else(|| format!("unbalanced ')' at offset {i}"))?;
                i += 1;
            }
            ']' | '}' => return Err(format!("unbalanced {c:?} at offset {i}")),
            _ if c.is_ascii_digit()
                || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                // Numbers and durations (1e-9, 0x1F, 5m, 1h30m).
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == '_')
                {
                    i += 1;
                }
            }
            _ if is_ident_start(c) => {
                let start = i;
                while i < chars.len() && is_ident(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let next = next_non_space(&chars, i);
                let lower = word.to_ascii_lowercase();
                if LABEL_LIST_KEYWORDS.contains(&lower.as_str()) {
                    if let Some((at, '(')) = next {
                        i = skip_balanced(&chars, at)?;
                    }
                } else if KEYWORDS.contains(&lower.as_str()) || matches!(next, Some((_, '('))) {
                    // An operator, or a function call.
                } else {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    if let Some(open) = stack.pop() {
        return Err(format!("'(' at offset {open} is never closed"));
    }
    Ok(names)
}

/// Grafana's `label_values(selector, label)` is not PromQL; its selector is.
fn grafana_query_expr(query: &str) -> Option<String> {
    let inner = query
        .trim()
        .strip_prefix("label_values(")?
        .strip_suffix(')')?;
    let chars: Vec<char> = inner.chars().collect();
    let mut depth = 0i32;
    let mut last_comma = None;
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '"' | '\'' | '`' => {
                i = skip_string(&chars, i).ok()?;
                continue;
            }
            '(' | '{' | '[' => depth += 1,
            ')' | '}' | ']' => depth -= 1,
            ',' if depth == 0 => last_comma = Some(i),
            _ => {}
        }
        i += 1;
    }
    last_comma.map(|at| chars[..at].iter().collect())
}

fn check_metrics(source: &str, expr: &str, unknown: &mut Vec<String>, seen: &mut BTreeSet<String>) {
    match metric_names(expr) {
        Ok(names) => {
            if names.is_empty() {
                unknown.push(format!("{source}: selects no metric: {expr}"));
            }
            for name in names {
                if !is_known_metric(&name) {
                    unknown.push(format!("{source}: {name} is not exported (in {expr})"));
                }
                seen.insert(name);
            }
        }
        Err(e) => unknown.push(format!("{source}: {e}: {expr}")),
    }
}

fn compact(expr: &str) -> String {
    expr.chars().filter(|c| !c.is_whitespace()).collect()
}

// ---------------------------------------------------------------------------
// The dashboard.

fn dashboard() -> Json {
    serde_json::from_str(&read("deploy/monitoring/grafana-dashboard.json"))
        .expect("grafana-dashboard.json is JSON")
}

/// All panels, including those nested in collapsed rows.
fn all_panels(dashboard: &Json) -> Vec<&Json> {
    let mut out = Vec::new();
    let mut pending: Vec<&Json> = dashboard["panels"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    pending.reverse();
    while let Some(panel) = pending.pop() {
        if let Some(nested) = panel["panels"].as_array() {
            pending.extend(nested.iter().rev());
        }
        out.push(panel);
    }
    out
}

fn panel_exprs(panel: &Json) -> Vec<String> {
    panel["targets"]
        .as_array()
        .map(|targets| {
            targets
                .iter()
                .filter_map(|t| t["expr"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn dashboard_queries_only_metrics_that_exist() {
    let dashboard = dashboard();
    let mut unknown = Vec::new();
    let mut seen = BTreeSet::new();
    for panel in all_panels(&dashboard) {
        let title = panel["title"].as_str().unwrap_or("?");
        for expr in panel_exprs(panel) {
            check_metrics(&format!("panel {title:?}"), &expr, &mut unknown, &mut seen);
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let query = variable["query"]["query"]
            .as_str()
            .or_else(|| variable["definition"].as_str());
        if variable["type"] == "query" {
            let query =
                query.unwrap_or_else(|| panic!("variable {} has no query", variable["name"]));
            let expr = grafana_query_expr(query).unwrap_or_else(|| query.to_owned());
            check_metrics(
                &format!("variable {}", variable["name"]),
                &expr,
                &mut unknown,
                &mut seen,
            );
        }
    }
    for annotation in dashboard["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(expr) = annotation["expr"].as_str() {
            check_metrics(
                &format!("annotation {}", annotation["name"]),
                expr,
                &mut unknown,
                &mut seen,
            );
        }
    }
    assert!(unknown.is_empty(), "{}", unknown.join("\n"));
    assert!(seen.len() >= 10, "suspiciously few metrics found: {seen:?}");
}

#[test]
fn dashboard_has_a_panel_for_each_required_view() {
    let dashboard = dashboard();
    let panels = all_panels(&dashboard);
    let exprs_of: Vec<(String, Vec<String>)> = panels
        .iter()
        .map(|p| {
            (
                p["title"].as_str().unwrap_or("").to_owned(),
                panel_exprs(p).iter().map(|e| compact(e)).collect(),
            )
        })
        .collect();
    let has_panel = |what: &str, matches: &dyn Fn(&[String]) -> bool| {
        assert!(
            exprs_of.iter().any(|(_, exprs)| matches(exprs)),
            "no dashboard panel shows {what}"
        );
    };
    let any = |exprs: &[String], needles: &[&str]| {
        exprs.iter().any(|e| needles.iter().all(|n| e.contains(n)))
    };

    has_panel("the request rate by decision", &|e| {
        any(
            e,
            &["cedar_authorizer_requests_total", "by(decision)", "rate("],
        )
    });
    has_panel("p50 and p99 request latency", &|e| {
        any(
            e,
            &[
                "histogram_quantile(0.5,",
                "cedar_authorizer_request_duration_seconds_bucket",
            ],
        ) && any(
            e,
            &[
                "histogram_quantile(0.99,",
                "cedar_authorizer_request_duration_seconds_bucket",
            ],
        )
    });
    has_panel("the cache hit ratio", &|e| {
        any(
            e,
            &[
                "cedar_authorizer_cache_requests_total",
                "result=\"hit\"",
                "/",
            ],
        )
    });
    has_panel("policy reloads and failures", &|e| {
        any(e, &["cedar_authorizer_policy_reloads_total", "by(result)"])
            || (any(
                e,
                &[
                    "cedar_authorizer_policy_reloads_total",
                    "result=\"success\"",
                ],
            ) && any(
                e,
                &[
                    "cedar_authorizer_policy_reloads_total",
                    "result=\"failure\"",
                ],
            ))
    });
    has_panel("the policy generation", &|e| {
        any(e, &["cedar_authorizer_policy_generation"])
    });
    has_panel("the top determining policies", &|e| {
        any(
            e,
            &["topk(", "cedar_authorizer_policy_decisions_total", "policy"],
        )
    });
    has_panel("the shadow set's divergence from live", &|e| {
        any(e, &["cedar_authorizer_shadow_divergences_total", "rate("])
    });
    has_panel("the shadow-vs-live decision matrix", &|e| {
        any(
            e,
            &["cedar_authorizer_shadow_decisions_total", "by(live,shadow)"],
        )
    });
    has_panel("the apiserver's webhook latency", &|e| {
        any(
            e,
            &[
                "histogram_quantile(",
                "apiserver_authorization_webhook_duration_seconds_bucket",
            ],
        )
    });
    has_panel("the apiserver's fail-open count", &|e| {
        any(
            e,
            &["apiserver_authorization_webhook_evaluations_fail_open_total"],
        )
    });
}

#[test]
fn dashboard_panels_are_well_formed() {
    let dashboard = dashboard();
    assert!(
        dashboard["title"].as_str().is_some_and(|t| !t.is_empty()),
        "title"
    );
    assert!(
        dashboard["uid"]
            .as_str()
            .is_some_and(|u| !u.is_empty() && u.len() <= 40),
        "uid"
    );
    let names: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert!(
        names.contains(&"datasource"),
        "a datasource variable lets the dashboard be imported anywhere"
    );

    let mut ids = BTreeSet::new();
    for panel in all_panels(&dashboard) {
        let title = panel["title"].as_str().unwrap_or("");
        assert!(!title.is_empty(), "panel without a title: {panel}");
        let id = panel["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("{title}: no id"));
        assert!(ids.insert(id), "{title}: duplicate panel id {id}");
        let grid = &panel["gridPos"];
        let (x, w) = (grid["x"].as_i64(), grid["w"].as_i64());
        assert!(
            matches!((x, w), (Some(x), Some(w)) if x >= 0 && w > 0 && x + w <= 24),
            "{title}: gridPos must fit the 24-column grid: {grid}"
        );
        if panel["type"] == "row" {
            continue;
        }
        let targets = panel["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        assert!(!targets.is_empty(), "{title}: no queries");
        let mut ref_ids = BTreeSet::new();
        for target in targets {
            assert!(
                target["expr"]
                    .as_str()
                    .is_some_and(|e| !e.trim().is_empty()),
                "{title}: empty query"
            );
            assert!(
                ref_ids.insert(target["refId"].to_string()),
                "{title}: duplicate refId"
            );
        }
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "{title}: use the datasource variable"
        );
    }
}

// ---------------------------------------------------------------------------
// The alerts.

fn alert_rules() -> Vec<Yaml> {
    let doc: Yaml =
        yaml::from_str(&read("deploy/monitoring/alerts.yaml")).expect("alerts.yaml is YAML");
    // A plain rules file has `groups` at the top; a PrometheusRule under `spec`.
    let groups = doc
        .get("groups")
        .or_else(|| doc.get("spec").and_then(|s| s.get("groups")))
        .and_then(Yaml::as_array)
        .expect("groups");
    assert!(!groups.is_empty(), "no rule groups");
    let mut rules = Vec::new();
    for group in groups {
        assert!(
            group.get("name").and_then(Yaml::as_str).is_some(),
            "group without a name"
        );
        rules.extend(
            group
                .get("rules")
                .and_then(Yaml::as_array)
                .cloned()
                .unwrap_or_default(),
        );
    }
    rules
}

fn yaml_str<'a>(v: &'a Yaml, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, key| v.get(*key))?.as_str()
}

/// Prometheus durations: one or more `<number><unit>` with units y, w, d, h,
/// m, s, ms, from largest to smallest.
fn is_prometheus_duration(s: &str) -> bool {
    const UNITS: &[&str] = &["y", "w", "d", "h", "m", "s", "ms"];
    let mut rest = s;
    let mut last_unit = None;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let unit = if rest.starts_with("ms") {
            "ms"
        } else {
            match rest.chars().next() {
                Some(c) => &rest[..c.len_utf8()],
                None => return false,
            }
        };
        let Some(position) = UNITS.iter().position(|u| *u == unit) else {
            return false;
        };
        if last_unit.is_some_and(|last| position <= last) {
            return false;
        }
        last_unit = Some(position);
        rest = &rest[unit.len()..];
    }
    true
}

#[test]
fn alerts_query_only_metrics_that_exist() {
    let mut unknown = Vec::new();
    let mut seen = BTreeSet::new();
    for rule in alert_rules() {
        let name = yaml_str(&rule, &["alert"])
            .or_else(|| yaml_str(&rule, &["record"]))
            .unwrap_or("?")
            .to_owned();
        let expr = yaml_str(&rule, &["expr"]).unwrap_or_else(|| panic!("{name}: no expr"));
        check_metrics(&name, expr, &mut unknown, &mut seen);
    }
    assert!(unknown.is_empty(), "{}", unknown.join("\n"));
}

#[test]
fn every_alert_has_a_severity_summary_and_runbook() {
    let mut names = BTreeSet::new();
    for rule in alert_rules() {
        let Some(name) = yaml_str(&rule, &["alert"]) else {
            continue;
        };
        assert!(names.insert(name.to_owned()), "duplicate alert {name}");
        if let Some(duration) = rule.get("for") {
            let duration = duration
                .as_str()
                .unwrap_or_else(|| panic!("{name}: `for` must be a string"));
            assert!(
                is_prometheus_duration(duration),
                "{name}: `for: {duration}` is not a duration"
            );
        }
        let severity = yaml_str(&rule, &["labels", "severity"]);
        assert!(
            matches!(severity, Some("critical" | "warning" | "info")),
            "{name}: labels.severity should be critical, warning or info, got {severity:?}"
        );
        let summary = yaml_str(&rule, &["annotations", "summary"]).unwrap_or("");
        assert!(
            !summary.trim().is_empty(),
            "{name}: annotations.summary missing"
        );
        let description = yaml_str(&rule, &["annotations", "description"]).unwrap_or("");
        assert!(
            description.len() >= 120 && description.contains("Check"),
            "{name}: annotations.description should say what it means and what to check"
        );
    }
}

#[test]
fn the_required_alerts_exist_and_watch_the_right_series() {
    let rules = alert_rules();
    let expr_of = |alert: &str| -> String {
        let rule = rules
            .iter()
            .find(|r| yaml_str(r, &["alert"]) == Some(alert))
            .unwrap_or_else(|| panic!("alert {alert} missing"));
        compact(yaml_str(rule, &["expr"]).unwrap_or(""))
    };
    let down = expr_of("CedarAuthorizerDown");
    assert!(
        down.contains("up{") && down.contains("==0") && down.contains("absent("),
        "{down}"
    );
    let reload = expr_of("CedarAuthorizerPolicyReloadFailing");
    assert!(
        reload.contains("cedar_authorizer_policy_reloads_total")
            && reload.contains("result=\"failure\"")
            && reload.contains("cedar_authorizer_last_reload_success_timestamp_seconds"),
        "{reload}"
    );
    let latency = expr_of("CedarAuthorizerHighLatency");
    assert!(
        latency.contains("histogram_quantile(0.99")
            && latency.contains("cedar_authorizer_request_duration_seconds_bucket")
            && latency.contains(">0.05"),
        "{latency}"
    );
    let errors = expr_of("CedarAuthorizerErrors");
    assert!(
        errors.contains("cedar_authorizer_request_errors_total"),
        "{errors}"
    );
    let shadow = expr_of("CedarAuthorizerShadowDiverges");
    assert!(
        shadow.contains("cedar_authorizer_shadow_divergences_total") && shadow.contains(">0"),
        "{shadow}"
    );
    let fail_open = expr_of("CedarAuthorizerFailOpen");
    assert!(
        fail_open.contains("apiserver_authorization_webhook_evaluations_fail_open_total"),
        "{fail_open}"
    );
}

// ---------------------------------------------------------------------------
// The extractor itself.

fn names(expr: &str) -> Vec<String> {
    metric_names(expr)
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
        .into_iter()
        .collect()
}

#[test]
fn extractor_finds_metrics_and_skips_everything_else() {
    assert_eq!(
        names(r#"sum by (le, job) (rate(foo_bucket{job=~"$job", le!="+Inf"}[$__rate_interval]))"#),
        ["foo_bucket"]
    );
    assert_eq!(
        names("sum(rate(a_total[5m])) by (instance) / on (instance) group_left(version) b_info offset 1h > bool 0.5"),
        ["a_total", "b_info"]
    );
    assert_eq!(
        names("max_over_time((timestamp(x > 0))[6h:1m]) > on (job) y"),
        ["x", "y"]
    );
    assert_eq!(names("up == 0 or absent(up{job=\"j\"})"), ["up"]);
    assert_eq!(names("topk(10, sum without (pod) (z))"), ["z"]);
    assert_eq!(names("{__name__=\"named\", job=\"x\"} * 1e-9"), ["named"]);
    assert_eq!(names("time() - ns:recorded:rate5m"), ["ns:recorded:rate5m"]);
    assert_eq!(
        names("label_replace(m, \"dst\", \"$1\", \"src\", \"(.*)\")"),
        ["m"]
    );
    assert_eq!(
        names("count_values(\"version\", v) # trailing comment with fake_metric"),
        ["v"]
    );
    assert_eq!(names("q ${var} and on() r"), ["q", "r"]);
    assert!(metric_names("sum(rate(x[5m])").is_err());
    assert!(metric_names("x{job=\"a}").is_err());
    assert!(metric_names("x)").is_err());
}

#[test]
fn known_metrics_include_histogram_series() {
    assert!(is_known_metric(
        "cedar_authorizer_request_duration_seconds_bucket"
    ));
    assert!(is_known_metric(
        "cedar_authorizer_evaluation_duration_seconds_count"
    ));
    assert!(is_known_metric(
        "apiserver_authorization_webhook_duration_seconds_sum"
    ));
    assert!(is_known_metric("process_open_fds"));
    assert!(is_known_metric("up"));
    assert!(!is_known_metric("cedar_authorizer_requests_total_bucket"));
    assert!(!is_known_metric("cedar_authorizer_request_total"));
    assert!(!is_known_metric("apiserver_request_total"));
}

#[test]
fn grafana_label_values_yields_its_selector() {
    assert_eq!(
        grafana_query_expr("label_values(m{job=~\"$job\"}, instance)").as_deref(),
        Some("m{job=~\"$job\"}")
    );
    assert_eq!(grafana_query_expr("label_values(job)"), None);
    assert!(
        is_prometheus_duration("5m")
            && is_prometheus_duration("1h30m")
            && is_prometheus_duration("500ms")
    );
    assert!(
        !is_prometheus_duration("5")
            && !is_prometheus_duration("30m1h")
            && !is_prometheus_duration("5 m")
    );
}
