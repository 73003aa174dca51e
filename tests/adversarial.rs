//! Hostile clients against the real server: pathological JSON, oversized
//! fields, slow and excess connections, TLS garbage and HTTP/2 stream
//! abuse. Each gets its defined answer (never a 5xx), and afterwards the
//! server is still healthy: `/healthz` is 200 and a normal review over a
//! new connection is answered as before.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::server::{client_config, connect, runtime, Pki, Proto, Server};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn policies() -> PathBuf {
    common::corpus_dir().join("k8s-basics").join("policies")
}

/// A review that k8s-basics allows.
fn good_sar() -> Value {
    common::server::sar("alice", &["developers"], "get", "pods", "team-a")
}

const SAR_HEAD: &str = r#"{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview""#;

/// A server with the test PKI and these extra flags.
fn start(extra: &[&str]) -> (Pki, Server) {
    let pki = Pki::new();
    let mut args = pki.serve_args();
    args.extend(extra.iter().map(|s| s.to_string()));
    let server = Server::start(&policies(), &args);
    (pki, server)
}

fn good_client(pki: &Pki) -> rustls::ClientConfig {
    client_config(&pki.ca, Some((&pki.client_cert, &pki.client_key)), &[])
}

/// `/healthz` is 200, and a normal review over new HTTP/1.1 and HTTP/2
/// connections is allowed.
async fn assert_healthy(server: &Server, pki: &Pki) {
    assert_eq!(server.admin_get("/healthz").0, 200);
    assert_eq!(server.admin_get("/readyz").0, 200);
    for proto in [Proto::H1, Proto::H2] {
        let mut c = connect(server.addr, &good_client(pki), proto)
            .await
            .unwrap();
        assert_eq!(c.authorize(&good_sar()).await["status"]["allowed"], true);
    }
}

/// POSTs a body over a new HTTP/1.1 connection: (status, JSON body).
async fn post(server: &Server, pki: &Pki, body: Vec<u8>) -> (u16, Value) {
    let mut c = connect(server.addr, &good_client(pki), Proto::H1)
        .await
        .unwrap();
    let (status, body) = c.request("POST", "/authorize", body).await.unwrap();
    let v = serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!(
            "status {status}: body is not JSON ({e}): {}",
            String::from_utf8_lossy(&body)
        )
    });
    (status, v)
}

/// A TLS stream to the webhook with the good client certificate, ALPN as given.
async fn tls_stream(
    server: &Server,
    pki: &Pki,
    alpn: &[u8],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut config = good_client(pki);
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap()
}

/// Reads until the peer closes (EOF or an error); returns the time it took
/// and what was read, or `None` if the peer was still open after `limit`.
async fn wait_closed(
    stream: &mut (impl AsyncReadExt + Unpin),
    limit: Duration,
) -> Option<(Duration, Vec<u8>)> {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(
            limit.saturating_sub(started.elapsed()),
            stream.read(&mut buf),
        )
        .await
        {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some((started.elapsed(), got)),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[test]
fn json_nested_ten_thousand_deep_is_400_or_skipped_and_the_server_stays_healthy() {
    let (pki, server) = start(&[]);
    let deep_array = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_object = format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
    runtime().block_on(async {
        for deep in [&deep_array, &deep_object] {
            for body in [
                deep.clone(),
                format!(r#"{SAR_HEAD},"spec":{deep}}}"#),
                format!(r#"{SAR_HEAD},"spec":{{"user":{deep},"nonResourceAttributes":{{"verb":"get","path":"/"}}}}}}"#),
            ] {
                let (status, v) = post(&server, &pki, body.into_bytes()).await;
                assert_eq!(status, 400, "{v}");
                // Refused for the depth, or for what is missing when the
                // deep part is skipped as an unknown field.
                assert!(!v["error"].as_str().unwrap().is_empty(), "{v}");
            }
            // An unknown field is skipped iteratively: the same depth there
            // is harmless and the review is answered.
            let ignored = format!(r#"{SAR_HEAD},"unknown":{deep},"spec":{{"nonResourceAttributes":{{"verb":"get","path":"/"}}}}}}"#);
            let (status, v) = post(&server, &pki, ignored.into_bytes()).await;
            assert_eq!(status, 200, "{v}");
        }
        assert_healthy(&server, &pki).await;
    });
}

fn many_groups_sar(n: usize) -> Vec<u8> {
    let mut groups: Vec<String> = (0..n).map(|i| format!("group-{i:06}")).collect();
    groups.push("developers".into());
    let mut sar = good_sar();
    sar["spec"]["groups"] = json!(groups);
    serde_json::to_vec(&sar).unwrap()
}

fn huge_user_sar() -> Vec<u8> {
    let mut sar = good_sar();
    sar["spec"]["user"] = json!("u".repeat(1 << 20));
    serde_json::to_vec(&sar).unwrap()
}

#[test]
fn a_hundred_thousand_groups_and_a_megabyte_username_are_413_at_the_default_limit() {
    let (pki, server) = start(&[]);
    runtime().block_on(async {
        let groups = many_groups_sar(100_000);
        assert!(
            groups.len() > 1 << 20,
            "{} bytes must exceed the default limit",
            groups.len()
        );
        for body in [groups, huge_user_sar()] {
            let (status, v) = post(&server, &pki, body).await;
            assert_eq!(status, 413, "{v}");
            assert!(
                v["error"].as_str().unwrap().contains("--max-body-bytes"),
                "{v}"
            );
        }
        assert_healthy(&server, &pki).await;
    });
    assert_eq!(
        server.metric("cedar_authorizer_request_errors_total{reason=\"too_large\"}"),
        2.0
    );
}

#[test]
fn a_hundred_thousand_groups_are_400_and_a_megabyte_username_is_answered_under_a_larger_limit() {
    // 4 MiB holds both bodies (1.5 MB and 1 MiB); the request timeout is
    // generous because this is a debug build.
    let (pki, server) = start(&["--max-body-bytes", "4194304", "--request-timeout", "60s"]);
    runtime().block_on(async {
        let (status, v) = post(&server, &pki, many_groups_sar(100_000)).await;
        assert_eq!(status, 400, "{v}");
        assert!(
            v["error"].as_str().unwrap().contains("spec.groups"),
            "the 400 names the field: {v}"
        );
        let started = Instant::now();
        let (status, v) = post(&server, &pki, many_groups_sar(4095)).await;
        assert_eq!(status, 200, "{v}");
        // One of the groups is "developers": the answer is still right.
        assert_eq!(v["status"]["allowed"], true, "{v}");
        eprintln!(
            "4,096 groups (the most allowed) answered in {:?}",
            started.elapsed()
        );

        let (status, v) = post(&server, &pki, huge_user_sar()).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["status"]["allowed"], true, "{v}");
        // The megabyte username appears neither in the answer nor in the log.
        let log_bytes: usize = server.logs.lock().unwrap().iter().map(String::len).sum();
        assert!(log_bytes < 1 << 20, "a megabyte went into the log");
        assert_healthy(&server, &pki).await;
    });
}

fn user_sar_bytes(user: &[u8]) -> Vec<u8> {
    let mut b = format!(r#"{SAR_HEAD},"spec":{{"user":""#).into_bytes();
    b.extend_from_slice(user);
    b.extend_from_slice(br#"","groups":["developers"],"resourceAttributes":{"verb":"get","version":"v1","resource":"pods","namespace":"team-a"}}}"#);
    b
}

#[test]
fn invalid_utf8_in_a_string_is_400() {
    let (pki, server) = start(&[]);
    runtime().block_on(async {
        assert_eq!(post(&server, &pki, user_sar_bytes(b"alice")).await.0, 200);
        for bad in [
            &b"al\xffice"[..],
            b"\xc0\xaf",
            b"\xed\xa0\x80",
            br"\ud800",
            br"\udfff\ud800",
        ] {
            let (status, v) = post(&server, &pki, user_sar_bytes(bad)).await;
            assert_eq!(status, 400, "{}: {v}", String::from_utf8_lossy(bad));
            let error = v["error"].as_str().unwrap();
            assert!(
                ["unicode", "surrogate", "escape"]
                    .iter()
                    .any(|w| error.contains(w)),
                "{error}"
            );
        }
        assert_healthy(&server, &pki).await;
    });
}

#[test]
fn duplicate_keys_get_a_defined_answer_never_a_5xx() {
    let (pki, server) = start(&[]);
    let ra = r#""resourceAttributes":{"verb":"get","version":"v1","resource":"pods","namespace":"team-a"}"#;
    let bodies = [
        // Duplicate top-level spec: serde refuses duplicate struct fields.
        (
            format!(r#"{SAR_HEAD},"spec":{{"user":"alice",{ra}}},"spec":{{"user":"bob",{ra}}}}}"#),
            Some(400),
        ),
        (
            format!(
                r#"{SAR_HEAD},"apiVersion":"authorization.k8s.io/v1","spec":{{"user":"alice",{ra}}}}}"#
            ),
            Some(400),
        ),
        // Inside spec the Kubernetes types decide; any defined answer will do,
        // as long as it is the same every time.
        (
            format!(
                r#"{SAR_HEAD},"spec":{{"user":"alice","user":"bob","groups":["developers"],{ra}}}}}"#
            ),
            None,
        ),
        (
            format!(
                r#"{SAR_HEAD},"spec":{{"user":"alice","groups":["developers"],"groups":[],{ra}}}}}"#
            ),
            None,
        ),
        (
            format!(
                r#"{SAR_HEAD},"spec":{{"user":"alice","groups":["developers"],"resourceAttributes":{{"verb":"get","verb":"delete","version":"v1","resource":"pods","namespace":"team-a"}}}}}}"#
            ),
            None,
        ),
        (
            format!(
                r#"{SAR_HEAD},"spec":{{"user":"alice","extra":{{"k":["a"],"k":["b"]}},{ra}}}}}"#
            ),
            None,
        ),
    ];
    runtime().block_on(async {
        for (body, want) in bodies {
            let (status, v) = post(&server, &pki, body.clone().into_bytes()).await;
            assert!(status == 200 || status == 400, "{status}: {v} for {body}");
            if let Some(want) = want {
                assert_eq!(status, want, "{v} for {body}");
            }
            let again = post(&server, &pki, body.clone().into_bytes()).await;
            assert_eq!(
                again,
                (status, v.clone()),
                "a different answer the second time for {body}"
            );
            eprintln!("duplicate keys: {status} {v} for {body}");
        }
        assert_healthy(&server, &pki).await;
    });
}

#[test]
fn null_and_wrong_typed_fields_get_their_status() {
    let (pki, server) = start(&[]);
    let with = |path: &[&str], value: Value| {
        let mut sar = good_sar();
        let mut slot = &mut sar;
        for step in path {
            slot = &mut slot[*step];
        }
        *slot = value;
        serde_json::to_vec(&sar).unwrap()
    };
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (with(&["spec", "user"], Value::Null), 200, ""),
        (with(&["spec", "groups"], Value::Null), 200, ""),
        (with(&["spec", "extra"], Value::Null), 200, ""),
        (with(&["spec", "uid"], Value::Null), 200, ""),
        (
            with(&["spec", "resourceAttributes", "namespace"], Value::Null),
            200,
            "",
        ),
        (
            with(&["spec", "nonResourceAttributes"], Value::Null),
            200,
            "",
        ),
        (
            with(&["spec", "resourceAttributes"], Value::Null),
            400,
            "neither",
        ),
        (with(&["spec"], Value::Null), 400, "spec is missing"),
        (with(&["kind"], Value::Null), 400, "kind"),
        (with(&["apiVersion"], Value::Null), 400, "apiVersion"),
        (
            with(&["spec", "groups"], json!("developers")),
            400,
            "invalid type",
        ),
        (
            with(&["spec", "groups"], json!([null])),
            400,
            "invalid type",
        ),
        (
            with(&["spec", "extra"], json!({"k": "v"})),
            400,
            "invalid type",
        ),
        (with(&["spec", "extra"], json!(["k"])), 400, "invalid type"),
        (
            with(&["spec", "resourceAttributes"], json!([])),
            400,
            "invalid type",
        ),
        (
            with(&["spec", "resourceAttributes"], json!("get pods")),
            400,
            "invalid type",
        ),
        (
            with(
                &["spec", "resourceAttributes", "labelSelector"],
                json!({"requirements": "app=x"}),
            ),
            400,
            "invalid type",
        ),
        (with(&["spec"], json!([])), 400, "invalid type"),
        (b"null".to_vec(), 400, "malformed"),
        // The fields of a review in order, as an array: still not a review.
        (
            br#"["authorization.k8s.io/v1", "SubjectAccessReview", {"user": "alice", "groups": ["developers"], "nonResourceAttributes": {"verb": "get", "path": "/"}}]"#.to_vec(),
            400,
            "malformed",
        ),
        (b"\"SubjectAccessReview\"".to_vec(), 400, "malformed"),
        (b"{}".to_vec(), 400, "apiVersion"),
        (Vec::new(), 400, "malformed"),
    ];
    runtime().block_on(async {
        for (body, want, needle) in cases {
            let (status, v) = post(&server, &pki, body.clone()).await;
            let shown = String::from_utf8_lossy(&body);
            assert_eq!(status, want, "{v} for {shown}");
            if want == 400 {
                let error = v["error"].as_str().unwrap();
                assert!(
                    error.contains(needle),
                    "{error:?} should mention {needle:?} for {shown}"
                );
            }
        }
        assert_healthy(&server, &pki).await;
    });
}

#[test]
fn numbers_where_strings_belong_are_400_naming_the_field() {
    let (pki, server) = start(&[]);
    runtime().block_on(async {
        let resource = |field: &str, value: &str| {
            let mut ra = json!({"verb": "get", "namespace": "team-a", "resource": "pods"});
            ra[field] = serde_json::from_str(value).unwrap();
            json!({"user": "alice", "resourceAttributes": ra})
        };
        let top = |field: &str, value: &str| {
            let mut spec = json!({"user": "alice", "resourceAttributes": {"verb": "get"}});
            spec[field] = serde_json::from_str(value).unwrap();
            spec
        };
        for (spec, path) in [
            (top("user", "7"), "spec.user"),
            (top("uid", "1.5"), "spec.uid"),
            (top("groups", r#"["developers", 3]"#), "spec.groups[1]"),
            (
                top("extra", r#"{"scopes": [true]}"#),
                "spec.extra.scopes[0]",
            ),
            (
                resource("namespace", "42"),
                "spec.resourceAttributes.namespace",
            ),
            (resource("verb", "0"), "spec.resourceAttributes.verb"),
        ] {
            let mut sar = good_sar();
            sar["spec"] = spec;
            let (status, v) = post(&server, &pki, serde_json::to_vec(&sar).unwrap()).await;
            assert_eq!(status, 400, "{path}: {v}");
            let error = v["error"].as_str().unwrap();
            assert!(
                error.starts_with(&format!("malformed {path}: invalid type")),
                "{error:?} should name {path}"
            );
            assert!(error.contains("expected a"), "{error}");
        }
        for field in ["apiVersion", "kind"] {
            let mut sar = good_sar();
            sar[field] = json!(1);
            let (status, v) = post(&server, &pki, serde_json::to_vec(&sar).unwrap()).await;
            assert_eq!(status, 400, "{field}: {v}");
            assert!(
                v["error"].as_str().unwrap().contains("invalid type"),
                "{field}: {v}"
            );
        }
        assert_healthy(&server, &pki).await;
    });
}

#[test]
fn a_sar_with_both_attribute_kinds_is_400() {
    let (pki, server) = start(&[]);
    let mut sar = good_sar();
    sar["spec"]["nonResourceAttributes"] = json!({"verb": "get", "path": "/healthz"});
    runtime().block_on(async {
        let (status, v) = post(&server, &pki, serde_json::to_vec(&sar).unwrap()).await;
        assert_eq!(status, 400, "{v}");
        assert!(v["error"].as_str().unwrap().contains("both are set"), "{v}");
        assert_healthy(&server, &pki).await;
    });
}

#[test]
fn a_slowloris_client_is_cut_off_after_the_header_read_timeout() {
    let (pki, server) = start(&["--header-read-timeout", "1s"]);
    runtime().block_on(async {
        let mut slow = Vec::new();
        for _ in 0..4 {
            let mut s = tls_stream(&server, &pki, b"http/1.1").await;
            s.write_all(b"POST /authorize HTTP/1.1\r\nHost: loc")
                .await
                .unwrap();
            s.flush().await.unwrap();
            slow.push(s);
        }
        // Trickle one more header byte every 200 ms on each, while a
        // normal client keeps being served.
        let trickle = tokio::spawn(async move {
            let started = Instant::now();
            let mut closed_after = Vec::new();
            for s in &mut slow {
                let _ = s.write_all(b"a").await;
            }
            while !slow.is_empty() && started.elapsed() < Duration::from_secs(15) {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let mut open = Vec::new();
                for mut s in slow {
                    let write = s.write_all(b"l").await.and(s.flush().await);
                    let mut buf = [0u8; 512];
                    let read =
                        tokio::time::timeout(Duration::from_millis(1), s.read(&mut buf)).await;
                    match (write, read) {
                        (Err(_), _) | (_, Ok(Ok(0))) | (_, Ok(Err(_))) => {
                            closed_after.push(started.elapsed())
                        }
                        (_, Ok(Ok(_))) => closed_after.push(started.elapsed()),
                        _ => open.push(s),
                    }
                }
                slow = open;
            }
            (closed_after, slow.len())
        });
        let mut normal = connect(server.addr, &good_client(&pki), Proto::H1)
            .await
            .unwrap();
        for _ in 0..10 {
            assert_eq!(
                normal.authorize(&good_sar()).await["status"]["allowed"],
                true
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (closed_after, still_open) = trickle.await.unwrap();
        assert_eq!(still_open, 0, "slowloris connections still open after 15 s");
        for t in &closed_after {
            assert!(*t < Duration::from_secs(4), "closed only after {t:?}");
        }
        assert_healthy(&server, &pki).await;
    });
}

/// After the TLS handshake, hyper-util's `auto` builder reads the first
/// bytes to tell HTTP/1.1 from HTTP/2 with no timeout of its own, and
/// `--header-read-timeout` used to start only once the HTTP/1.1 side had the
/// connection: a client silent after the handshake kept its connection slot
/// for good (found by this suite; docs/hardening.md, "Findings").
#[test]
fn a_client_silent_after_the_handshake_is_cut_off() {
    let (pki, server) = start(&["--header-read-timeout", "1s"]);
    runtime().block_on(async {
        for alpn in [&b"http/1.1"[..], b"h2"] {
            let mut s = tls_stream(&server, &pki, alpn).await;
            let closed = wait_closed(&mut s, Duration::from_secs(5)).await;
            assert!(
                closed.is_some(),
                "a silent {} connection was still open after 5 s",
                String::from_utf8_lossy(alpn)
            );
        }
        assert_healthy(&server, &pki).await;
    });
}

#[test]
fn connections_over_the_cap_wait_and_are_all_served_once_others_close() {
    let (pki, server) = start(&["--max-connections", "2"]);
    let addr = server.addr;
    runtime().block_on(async {
        let config = good_client(&pki);
        let mut held = Vec::new();
        for _ in 0..2 {
            let mut c = connect(addr, &config, Proto::H2).await.unwrap();
            assert_eq!(c.authorize(&good_sar()).await["status"]["allowed"], true);
            held.push(c);
        }
        let waiting: Vec<_> = (0..6)
            .map(|_| {
                let config = config.clone();
                tokio::spawn(async move {
                    let mut c = connect(addr, &config, Proto::H1).await.unwrap();
                    c.authorize(&good_sar()).await["status"]["allowed"].as_bool()
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(
            waiting.iter().all(|t| !t.is_finished()),
            "a connection over the cap was served"
        );
        // The admin listener does not share the cap.
        assert_eq!(server.admin_get("/healthz").0, 200);
        // The held connections still work while others wait.
        for c in &mut held {
            assert_eq!(c.authorize(&good_sar()).await["status"]["allowed"], true);
        }
        drop(held);
        for t in waiting {
            let answer = tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .expect("a waiting connection was never served")
                .unwrap();
            assert_eq!(answer, Some(true));
        }
        assert_healthy(&server, &pki).await;
    });
}

async fn raw_send_and_wait_closed(
    addr: SocketAddr,
    bytes: &[u8],
    limit: Duration,
) -> Option<Duration> {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The server may close before everything is written; that is fine.
    let _ = tcp.write_all(bytes).await;
    wait_closed(&mut tcp, limit).await.map(|(t, _)| t)
}

#[test]
fn tls_garbage_before_the_handshake_is_closed_and_counted() {
    let (pki, server) = start(&[]);
    let before = server.metric("cedar_authorizer_tls_handshake_failures_total");
    let mut noise = vec![0u8; 4096];
    let mut x: u32 = 0x9e37_79b9;
    for b in &mut noise {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    let garbage: Vec<Vec<u8>> = vec![
        noise,
        b"GET /authorize HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
        // A handshake record header announcing a ClientHello, then junk.
        [&[0x16, 0x03, 0x01, 0x00, 0x40][..], &[0xab; 64]].concat(),
        vec![0u8; 1],
    ];
    let n = garbage.len() as f64;
    runtime().block_on(async {
        for bytes in &garbage {
            let closed = raw_send_and_wait_closed(server.addr, bytes, Duration::from_secs(5)).await;
            assert!(
                closed.is_some(),
                "garbage {:?}... left the connection open",
                &bytes[..bytes.len().min(8)]
            );
        }
        assert_healthy(&server, &pki).await;
    });
    let after = server.metric("cedar_authorizer_tls_handshake_failures_total");
    assert!(
        after - before >= n,
        "handshake failures went from {before} to {after}"
    );
}

#[test]
fn a_stalled_tls_handshake_is_dropped_after_ten_seconds() {
    let (pki, server) = start(&[]);
    runtime().block_on(async {
        // A record header promising 16 KiB of ClientHello, then silence.
        let closed = raw_send_and_wait_closed(
            server.addr,
            &[0x16, 0x03, 0x01, 0x40, 0x00, 0x01],
            Duration::from_secs(20),
        )
        .await;
        let t = closed.expect("a stalled handshake was still open after 20 s");
        assert!(
            t >= Duration::from_secs(9) && t < Duration::from_secs(15),
            "closed after {t:?}"
        );
        assert_healthy(&server, &pki).await;
    });
    assert!(server.metric("cedar_authorizer_tls_handshake_failures_total") >= 1.0);
}

#[test]
fn http2_rapid_reset_does_not_hurt_the_server_or_other_clients() {
    let (pki, server) = start(&[]);
    runtime().block_on(async {
        // A well-behaved client that keeps asking during the flood.
        let addr = server.addr;
        let config = good_client(&pki);
        let bystander = tokio::spawn(async move {
            let mut c = connect(addr, &config, Proto::H2).await.unwrap();
            let mut ok = 0;
            for _ in 0..40 {
                assert_eq!(c.authorize(&good_sar()).await["status"]["allowed"], true);
                ok += 1;
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            ok
        });

        let body = serde_json::to_vec(&good_sar()).unwrap();
        let mut resets = 0u32;
        let mut connections = 0u32;
        let started = Instant::now();
        // Open a stream, reset it at once; over and over, on new connections
        // whenever the server gives up on one (GOAWAY), for a bounded time.
        while resets < 20_000 && started.elapsed() < Duration::from_secs(10) {
            connections += 1;
            let tls = tls_stream(&server, &pki, b"h2").await;
            let (client, conn) = h2::client::handshake(tls).await.unwrap();
            let driver = tokio::spawn(conn);
            let mut next = Some(client);
            while let Some(ready) = next.take() {
                let Ok(mut client) = ready.ready().await else {
                    break;
                };
                let req = hyper::Request::post("https://localhost/authorize")
                    .header("content-type", "application/json")
                    .body(())
                    .unwrap();
                // Half the streams carry a complete request before the reset,
                // so the server has work to cancel; half are reset at once.
                let complete = resets.is_multiple_of(2);
                match client.send_request(req, false) {
                    Ok((_response, mut stream)) => {
                        if complete {
                            let _ = stream.send_data(body.clone().into(), true);
                        }
                        stream.send_reset(h2::Reason::CANCEL);
                        resets += 1;
                    }
                    Err(_) => break,
                }
                if !resets.is_multiple_of(10_000) && started.elapsed() < Duration::from_secs(10) {
                    next = Some(client);
                }
            }
            let _ = tokio::time::timeout(Duration::from_secs(5), driver).await;
        }
        eprintln!(
            "rapid reset: {resets} streams reset on {connections} connections in {:?}",
            started.elapsed()
        );
        assert!(resets >= 1000, "only {resets} streams were opened");
        assert_eq!(bystander.await.unwrap(), 40);
        assert_healthy(&server, &pki).await;
    });
}
