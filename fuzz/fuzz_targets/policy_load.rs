//! Text as a policy file: parse, name, validate against the built-in
//! schema and index it, then decide a few fixed requests against whatever
//! loaded. Rejecting the text is fine; panicking is not.

#![no_main]

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use cedar_authorizer::engine::{Engine, Exemptions};
use cedar_authorizer::policy::{PolicyFile, SchemaBundle, Snapshot};
use cedar_authorizer::sar::{self, AccessRequest};
use libfuzzer_sys::fuzz_target;

static SCHEMA: LazyLock<Arc<SchemaBundle>> =
    LazyLock::new(|| Arc::new(SchemaBundle::load(None).expect("built-in schema")));

static REQUESTS: LazyLock<Vec<AccessRequest>> = LazyLock::new(|| {
    [
        r#"{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"alice","groups":["developers","g-1"],"resourceAttributes":{"verb":"get","version":"v1","resource":"pods","namespace":"team-a"}}}"#,
        r#"{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"system:serviceaccount:ci:deployer","groups":["system:serviceaccounts"],"extra":{"k":["v"]},"resourceAttributes":{"verb":"impersonate","resource":"users","name":"bob"}}}"#,
        r#"{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"system:node:n1","nonResourceAttributes":{"verb":"get","path":"/healthz"}}}"#,
    ]
    .iter()
    .map(|b| sar::parse_review(b.as_bytes()).expect("fixed SARs parse").request)
    .collect()
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = PolicyFile {
        relative: "fuzz.cedar".into(),
        path: PathBuf::from("fuzz.cedar"),
        text: text.into(),
    };
    let Ok(snapshot) = Snapshot::build(&[file], &SCHEMA, 1) else {
        return;
    };
    let engine = Engine::new(snapshot, Exemptions::default(), 0);
    for req in REQUESTS.iter() {
        let status = &engine.decide(req).decision.status;
        assert!(
            !(status.allowed && status.denied),
            "allowed and denied: {status:?}"
        );
    }
});
