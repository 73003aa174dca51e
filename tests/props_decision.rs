//! Hostile request bodies through the whole decision path, as properties:
//! random, mutated and byte-damaged SubjectAccessReviews go through
//! `parse_review` and `Engine::decide` against the example policies.
//!
//! What must hold for every input: nothing panics; a body that is not a
//! well-formed review is an `Err` with a message, never a panic; every
//! answer is allowed, denied or neither, never both; asking twice (the
//! second time from the cache) gives the same answer; and the order of
//! groups does not matter. The one-pass reader of `parse_review` answers
//! every body exactly as the careful reader does.
//!
//! The case count is bounded for CI (`PROPTEST_CASES`, default 192 per
//! property, a few seconds in a debug build); the fuzz targets in `fuzz/`
//! run the same path for longer (docs/hardening.md).

use std::path::Path;
use std::sync::{Arc, LazyLock};

use cedar_authorizer::decision::MAX_STATUS_TEXT_BYTES;
use cedar_authorizer::engine::{Engine, Exemptions};
use cedar_authorizer::policy::{self, SchemaBundle};
use cedar_authorizer::sar;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError};
use serde_json::{json, Map, Value};

/// The example policies, with the default exemptions (as served) and
/// without them (so `system:` users are evaluated too).
static ENGINES: LazyLock<[Engine; 2]> = LazyLock::new(|| {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let schema = Arc::new(SchemaBundle::load(None).unwrap());
    let load = || policy::load(&dir, &schema, 1).unwrap();
    [
        Engine::new(load(), Exemptions::default(), 4096),
        Engine::new(
            load(),
            Exemptions {
                control_plane: false,
                users: Vec::new(),
            },
            4096,
        ),
    ]
});

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(192);
    Config {
        cases,
        // Failures are turned into named regression tests below instead.
        failure_persistence: None,
        ..Config::default()
    }
}

/// Runs one body through the decision path and checks the invariants.
/// Returns whether it parsed.
fn check(body: &[u8]) -> Result<bool, TestCaseError> {
    // The one-pass reader answers exactly what the careful one answers.
    let summary = |r: &Result<sar::Review, sar::SarError>| {
        r.as_ref()
            .map(|r| (r.api_version, r.request.clone()))
            .map_err(|e| e.to_string())
    };
    prop_assert_eq!(
        summary(&sar::parse_review(body)),
        summary(&sar::parse_review_careful(body))
    );
    let review = match sar::parse_review(body) {
        Ok(r) => r,
        Err(e) => {
            prop_assert!(!e.to_string().is_empty(), "an error without a message");
            for engine in ENGINES.iter() {
                prop_assert!(engine.answer_review(body).is_err());
            }
            return Ok(false);
        }
    };
    for engine in ENGINES.iter() {
        let first = engine.decide(&review.request);
        let status = &first.decision.status;
        prop_assert!(
            !(status.allowed && status.denied),
            "allowed and denied at once: {:?}",
            status
        );
        // A reason exactly when there is an opinion (a no-opinion reason
        // would reach users' 403s), and bounded either way.
        prop_assert_eq!(status.reason.is_empty(), !(status.allowed || status.denied));
        prop_assert!(status.reason.len() <= 2 * MAX_STATUS_TEXT_BYTES);
        prop_assert!(status.evaluation_error.len() <= 2 * MAX_STATUS_TEXT_BYTES);
        let again = engine.decide(&review.request);
        prop_assert_eq!(&again.decision.status, status, "the cached answer differs");
        let answer = sar::response_json(review.api_version, status);
        // The server's path, keyed by the body's bytes: the same answer,
        // from the cache or not, parsed or not.
        for _ in 0..2 {
            let answered = engine.answer_review(body).unwrap();
            prop_assert_eq!(&answered.outcome.decision.status, status);
            prop_assert_eq!(&answered.response[..], &answer[..]);
            prop_assert_eq!(answered.review.is_none(), answered.outcome.cache_hit);
        }
        let out: Value = serde_json::from_slice(&answer).unwrap();
        prop_assert_eq!(&out["apiVersion"], review.api_version.as_str());
        prop_assert_eq!(&out["status"]["allowed"], status.allowed);
    }
    Ok(true)
}

/// Strings a client might send to confuse a parser or a policy: quotes,
/// backslashes, control characters, right-to-left marks, names that look
/// like the control plane's, wildcards, and any unicode at all.
fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<String>(),
        2 => "[a-z0-9:*\\-./]{0,12}",
        2 => "[\"\\\\\u{0}-\u{1f}\u{7f}\u{202e}\u{feff}\u{fffd}]{0,8}",
        2 => prop::sample::select(vec![
            "", "*", "system:masters", "system:anonymous", "system:serviceaccount:kube-system:x",
            "system:serviceaccount:", "system:serviceaccount::", "system:node:", "system:node:a:b",
            "platform", "team-a", "kube-system", "secrets", "impersonate", "users", "groups",
            "serviceaccounts", "uids", "userextras", "k8s::Group::\"platform\"", "\") || true || (\"",
            "\u{0}", "🦀", "a\u{0}b",
        ])
        .prop_map(str::to_owned),
        1 => (1usize..2000).prop_map(|n| "x".repeat(n)),
    ]
}

fn string_list() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(hostile_string(), 0..6)
}

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        hostile_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(hostile_string(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn selector(operators: &'static [&'static str]) -> impl Strategy<Value = Value> {
    prop::collection::vec(
        (hostile_string(), prop::sample::select(operators), prop::option::of(string_list())),
        0..4,
    )
    .prop_map(|reqs| {
        let reqs: Vec<Value> = reqs
            .into_iter()
            .map(|(key, operator, values)| json!({"key": key, "operator": operator, "values": values}))
            .collect();
        json!({ "requirements": reqs })
    })
}

/// A SubjectAccessReview of the right shape with hostile contents.
fn valid_sar() -> impl Strategy<Value = Value> {
    let resource = (
        prop::sample::select(vec!["get", "list", "watch", "create", "update", "delete", "impersonate", "*", "approve"]),
        hostile_string(),
        prop::sample::select(vec!["", "v1", "*"]),
        prop_oneof![
            prop::sample::select(vec!["pods", "secrets", "users", "groups", "serviceaccounts", "uids", "userextras", "*"]).prop_map(str::to_owned),
            hostile_string()
        ],
        hostile_string(),
        prop_oneof![Just("kube-system".to_owned()), Just("team-a".to_owned()), hostile_string()],
        hostile_string(),
        prop::option::of(selector(&["In", "NotIn", "Exists", "DoesNotExist", "Gt", ""])),
        prop::option::of(selector(&["In", "NotIn", "Exists", ""])),
    )
        .prop_map(|(verb, group, version, resource, sub, ns, name, labels, fields)| {
            let mut r = json!({"verb": verb, "group": group, "version": version, "resource": resource,
                               "subresource": sub, "namespace": ns, "name": name});
            if let Some(l) = labels {
                r["labelSelector"] = l;
            }
            if let Some(f) = fields {
                r["fieldSelector"] = f;
            }
            json!({ "resourceAttributes": r })
        });
    let non_resource = (hostile_string(), hostile_string())
        .prop_map(|(verb, path)| json!({"nonResourceAttributes": {"verb": verb, "path": path}}));
    (
        any::<bool>(),
        hostile_string(),
        string_list(),
        hostile_string(),
        prop::collection::btree_map(hostile_string(), string_list(), 0..4),
        prop_oneof![resource, non_resource],
    )
        .prop_map(|(v1, user, groups, uid, extra, attributes)| {
            let mut spec = json!({"user": user, "uid": uid, "extra": extra});
            spec[if v1 { "groups" } else { "group" }] = json!(groups);
            for (k, v) in attributes.as_object().unwrap() {
                spec[k] = v.clone();
            }
            json!({
                "apiVersion": if v1 { "authorization.k8s.io/v1" } else { "authorization.k8s.io/v1beta1" },
                "kind": "SubjectAccessReview",
                "spec": spec,
                "status": {"allowed": false},
            })
        })
}

/// Every position in a JSON value, as a path of object keys and indices.
fn paths(v: &Value, prefix: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    out.push(prefix.clone());
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                prefix.push(Value::String(k.clone()));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                prefix.push(Value::from(i));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn at<'a>(v: &'a mut Value, path: &[Value]) -> &'a mut Value {
    path.iter().fold(v, |v, step| match step {
        Value::String(k) => &mut v[k.as_str()],
        Value::Number(i) => &mut v[i.as_u64().unwrap() as usize],
        _ => unreachable!(),
    })
}

/// How a valid SAR gets damaged.
#[derive(Clone, Debug)]
enum Mutation {
    Replace(Index, Value),
    Remove(Index),
    Insert(Index, String, Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), json_value()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        any::<Index>().prop_map(Mutation::Remove),
        (any::<Index>(), hostile_string(), json_value())
            .prop_map(|(i, k, v)| Mutation::Insert(i, k, v)),
    ]
}

fn mutate(mut sar: Value, mutations: &[Mutation]) -> Value {
    for m in mutations {
        let mut all = Vec::new();
        paths(&sar, &mut Vec::new(), &mut all);
        match m {
            Mutation::Replace(i, v) => {
                let path: &Vec<Value> = i.get(&all);
                *at(&mut sar, path) = v.clone();
            }
            Mutation::Remove(i) => {
                let path: &Vec<Value> = i.get(&all);
                if let Some((last, parent)) = path.split_last() {
                    match (at(&mut sar, parent), last) {
                        (Value::Object(m), Value::String(k)) => {
                            m.remove(k);
                        }
                        (Value::Array(a), Value::Number(n)) => {
                            a.remove(n.as_u64().unwrap() as usize);
                        }
                        _ => {}
                    }
                }
            }
            Mutation::Insert(i, k, v) => {
                let path: &Vec<Value> = i.get(&all);
                if let Value::Object(m) = at(&mut sar, path) {
                    m.insert(k.clone(), v.clone());
                }
            }
        }
    }
    sar
}

/// How raw bytes get damaged: the body is no longer JSON, or is JSON
/// with invalid UTF-8, stray bytes, or cut short.
#[derive(Clone, Debug)]
enum ByteEdit {
    Flip(Index, u8),
    Insert(Index, u8),
    Delete(Index),
    Truncate(Index),
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| ByteEdit::Flip(i, b)),
        (
            any::<Index>(),
            prop_oneof![
                any::<u8>(),
                Just(0xff),
                Just(0xc0),
                Just(b'"'),
                Just(b'\\'),
                Just(b'{')
            ]
        )
            .prop_map(|(i, b)| ByteEdit::Insert(i, b)),
        any::<Index>().prop_map(ByteEdit::Delete),
        any::<Index>().prop_map(ByteEdit::Truncate),
    ]
}

fn edit(mut bytes: Vec<u8>, edits: &[ByteEdit]) -> Vec<u8> {
    for e in edits {
        if bytes.is_empty() {
            break;
        }
        match e {
            ByteEdit::Flip(i, b) => {
                let i = i.index(bytes.len());
                bytes[i] ^= b;
            }
            ByteEdit::Insert(i, b) => {
                let i = i.index(bytes.len());
                bytes.insert(i, *b);
            }
            ByteEdit::Delete(i) => {
                bytes.remove(i.index(bytes.len()));
            }
            ByteEdit::Truncate(i) => bytes.truncate(i.index(bytes.len())),
        }
    }
    bytes
}

/// The string-typed fields of a spec, as paths.
const STRING_FIELDS: &[&[&str]] = &[
    &["spec", "user"],
    &["spec", "uid"],
    &["spec", "resourceAttributes", "verb"],
    &["spec", "resourceAttributes", "namespace"],
    &["spec", "resourceAttributes", "resource"],
    &["spec", "resourceAttributes", "name"],
    &["spec", "resourceAttributes", "group"],
    &["apiVersion"],
    &["kind"],
];

fn a_resource_sar() -> Value {
    json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {"user": "alice", "uid": "1", "groups": ["developers"],
                 "resourceAttributes": {"verb": "get", "group": "", "version": "v1",
                                        "resource": "pods", "namespace": "team-a", "name": "web-0"}}
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_json_value_is_answered_or_refused_never_panics(v in json_value()) {
        check(&serde_json::to_vec(&v).unwrap())?;
    }

    #[test]
    fn arbitrary_bytes_are_answered_or_refused_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check(&bytes)?;
    }

    #[test]
    fn well_shaped_sars_with_hostile_strings_are_answered(sar in valid_sar()) {
        let parsed = check(&serde_json::to_vec(&sar).unwrap())?;
        prop_assert!(parsed, "a well-shaped review was refused: {}", sar);
    }

    #[test]
    fn mutated_sars_are_answered_or_refused(sar in valid_sar(), ms in prop::collection::vec(mutation(), 1..4)) {
        check(&serde_json::to_vec(&mutate(sar, &ms)).unwrap())?;
    }

    #[test]
    fn byte_damaged_sars_are_answered_or_refused(sar in valid_sar(), edits in prop::collection::vec(byte_edit(), 1..6)) {
        check(&edit(serde_json::to_vec(&sar).unwrap(), &edits))?;
    }

    #[test]
    fn a_non_string_where_a_string_belongs_is_an_error(
        field in prop::sample::select(STRING_FIELDS),
        value in json_value().prop_filter("not a string or null", |v| !v.is_string() && !v.is_null()),
    ) {
        let mut sar = a_resource_sar();
        let mut slot = &mut sar;
        for step in field {
            slot = &mut slot[*step];
        }
        *slot = value;
        prop_assert!(sar::parse_review(&serde_json::to_vec(&sar).unwrap()).is_err(), "{}", sar);
    }

    #[test]
    fn group_order_and_repetition_do_not_change_the_answer(sar in valid_sar(), seed in any::<u64>()) {
        let key = if sar["apiVersion"] == "authorization.k8s.io/v1" { "groups" } else { "group" };
        let mut groups: Vec<Value> = sar["spec"][key].as_array().cloned().unwrap_or_default();
        let mut shuffled = sar.clone();
        if !groups.is_empty() {
            let extra = groups[(seed as usize) % groups.len()].clone();
            groups.push(extra);
            let n = groups.len();
            groups.rotate_left((seed as usize) % n);
        }
        shuffled["spec"][key] = Value::Array(groups);
        let a = sar::parse_review(&serde_json::to_vec(&sar).unwrap()).unwrap();
        let b = sar::parse_review(&serde_json::to_vec(&shuffled).unwrap()).unwrap();
        for engine in ENGINES.iter() {
            prop_assert_eq!(
                &engine.decide(&a.request).decision.status,
                &engine.decide(&b.request).decision.status
            );
        }
    }
}

fn nested(depth: usize, open: &str, close: &str) -> String {
    format!("{}1{}", open.repeat(depth), close.repeat(depth))
}

#[test]
fn json_nested_ten_thousand_deep_is_an_error_or_skipped_never_a_stack_overflow() {
    for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
        let deep = nested(10_000, open, close);
        let bodies = [
            deep.clone(),
            format!(
                r#"{{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{deep}}}"#
            ),
            format!(
                r#"{{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{{"user":{deep},"nonResourceAttributes":{{"verb":"get","path":"/"}}}}}}"#
            ),
        ];
        for body in bodies {
            assert!(
                sar::parse_review(body.as_bytes()).is_err(),
                "{}...",
                &body[..80]
            );
        }
        // An unknown field is skipped without recursion (serde_json's
        // ignore is iterative), so the same depth there is harmless.
        let ignored = format!(
            r#"{{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","ignored":{deep},"spec":{{"nonResourceAttributes":{{"verb":"get","path":"/"}}}}}}"#
        );
        assert!(sar::parse_review(ignored.as_bytes()).is_ok());
    }
}

#[test]
fn invalid_utf8_and_lone_surrogates_in_strings_are_errors() {
    let sar = |user: &[u8]| {
        let mut b = br#"{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":""#.to_vec();
        b.extend_from_slice(user);
        b.extend_from_slice(br#"","nonResourceAttributes":{"verb":"get","path":"/"}}}"#);
        b
    };
    assert!(sar::parse_review(&sar(b"alice")).is_ok());
    for bad in [
        &b"\xff\xfe"[..],
        b"\xc0\xaf",
        b"\xed\xa0\x80",
        br"\ud800",
        br"\udc00x",
        br"\u12",
    ] {
        assert!(
            sar::parse_review(&sar(bad)).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn a_hundred_thousand_groups_are_refused_naming_the_field() {
    let groups: Vec<String> = (0..100_000).map(|i| format!("g-{i}")).collect();
    let mut sar = a_resource_sar();
    sar["spec"]["groups"] = json!(groups);
    let e = sar::parse_review(&serde_json::to_vec(&sar).unwrap()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "malformed spec.groups: 100000 entries, more than the 4096 a review may carry"
    );
}

#[test]
fn the_most_groups_allowed_and_a_megabyte_username_are_decided() {
    let groups: Vec<String> = (0..sar::limits::GROUPS).map(|i| format!("g-{i}")).collect();
    let mut sar = a_resource_sar();
    sar["spec"]["groups"] = json!(groups);
    sar["spec"]["user"] = json!("u".repeat(1 << 20));
    assert!(check(&serde_json::to_vec(&sar).unwrap()).unwrap());
}
