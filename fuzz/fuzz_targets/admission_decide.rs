//! Bytes as an `/admit` request body, through the whole admission path the
//! server runs: parse the AdmissionReview, convert its objects, decide
//! against the example policies plus a few admission forbids that read
//! object fields (loaded once), write the response. Nothing may panic, the
//! answer carries the request's uid, and deciding twice gives the same
//! answer.

#![no_main]

use std::sync::{Arc, LazyLock};

use cedar_authorizer::admission;
use cedar_authorizer::engine::{Engine, Exemptions};
use cedar_authorizer::policy::{self, PolicyFile, SchemaBundle, Snapshot};
use libfuzzer_sys::fuzz_target;

const FORBIDS: &str = r#"
forbid (principal, action, resource)
when { resource has metadata && resource.metadata has labels &&
       resource.metadata.labels.contains({"key": "fuzz", "value": "x"}) };
forbid (principal, action == k8s::admission::Action::"update", resource is core::v1::ConfigMap)
when { resource has oldObject && resource.oldObject.metadata.name != resource.metadata.name };
forbid (principal, action, resource is core::v1::Pod)
when { resource has spec && resource.spec has hostNetwork && resource.spec.hostNetwork };
"#;

static ENGINE: LazyLock<Engine> = LazyLock::new(|| {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let schema = Arc::new(SchemaBundle::load(None).expect("built-in schema"));
    let mut files = policy::read_dir(&dir).expect("example policies read");
    files.push(PolicyFile {
        relative: "fuzz.cedar".into(),
        path: "fuzz.cedar".into(),
        text: FORBIDS.into(),
    });
    let snapshot = Snapshot::build(&files, &schema, 1).expect("policies load");
    Engine::new(snapshot, Exemptions::default(), 0)
});

fuzz_target!(|data: &[u8]| {
    let Ok(input) = admission::parse_review(data) else {
        return;
    };
    let first = ENGINE.admit(&input);
    let again = ENGINE.admit(&input);
    assert_eq!(first.decision.verdict, again.decision.verdict);
    let refused = (first.decision.verdict == cedar_authorizer::decision::Verdict::Denied)
        .then_some(first.decision.status.reason.as_str());
    let body = input.response_json(refused);
    let answer: serde_json::Value = serde_json::from_slice(&body).expect("response is JSON");
    assert_eq!(answer["response"]["uid"].as_str(), Some(input.uid.as_str()));
    assert_eq!(answer["response"]["allowed"].as_bool(), Some(refused.is_none()));
});
