//! Bytes as a webhook request body, through the whole decision path the
//! server runs: parse the review, decide it against the example policies
//! (loaded once), write the response. Nothing may panic, and no answer may
//! both allow and deny.

#![no_main]

use std::path::Path;
use std::sync::{Arc, LazyLock};

use cedar_authorizer::engine::{Engine, Exemptions};
use cedar_authorizer::policy::{self, SchemaBundle};
use cedar_authorizer::sar;
use libfuzzer_sys::fuzz_target;

static ENGINE: LazyLock<Engine> = LazyLock::new(|| {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let schema = Arc::new(SchemaBundle::load(None).expect("built-in schema"));
    let snapshot = policy::load(&dir, &schema, 1).expect("example policies load");
    Engine::new(snapshot, Exemptions::default(), 1024)
});

fuzz_target!(|data: &[u8]| {
    let Ok(review) = sar::parse_review(data) else {
        return;
    };
    let outcome = ENGINE.decide(&review.request);
    let status = &outcome.decision.status;
    assert!(
        !(status.allowed && status.denied),
        "allowed and denied: {status:?}"
    );
    // The second answer comes from the cache and must be the same.
    let again = ENGINE.decide(&review.request);
    assert_eq!(again.decision.status, *status);
    let body = sar::response_json(review.api_version, status);
    assert!(!body.is_empty());
});
