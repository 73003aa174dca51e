//! The webhook server, black-box: `serve::run` in process (the real binary
//! where signals, exit codes and start-up errors are the subject) over real
//! TLS with certificates made here, HTTP/1.1 and HTTP/2, client
//! authentication, bad input, certificate rotation and graceful shutdown.

mod common;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use common::server::{client_config, connect, runtime, InProcess, Pki, Proto, Server};

fn policies(name: &str) -> std::path::PathBuf {
    common::corpus_dir().join(name).join("policies")
}

fn corpus_over(proto: Proto) {
    let pki = Pki::new();
    let config = client_config(&pki.ca, Some((&pki.client_cert, &pki.client_key)), &[]);
    let rt = runtime();
    for scenario in common::scenarios() {
        let server = InProcess::start(&scenario.policies, &pki.serve_args());
        let failures = rt.block_on(async {
            // Every case of the scenario, twice (cold, then cached), on ONE
            // kept-alive connection.
            let mut conn = connect(server.addr, &config, proto).await.unwrap();
            let mut failures = Vec::new();
            for _ in 0..2 {
                for case in &scenario.cases {
                    let resp = conn.authorize(&case.sar).await;
                    assert_eq!(resp["apiVersion"], case.sar["apiVersion"]);
                    assert_eq!(resp["kind"], "SubjectAccessReview");
                    if let Some(m) = common::mismatch(&scenario.name, case, &resp["status"]) {
                        failures.push(m);
                    }
                }
            }
            failures
        });
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        let hits = server.metric("cedar_authorizer_cache_requests_total{result=\"hit\"}");
        assert!(hits > 0.0, "the second pass should hit the cache");
    }
}

#[test]
fn corpus_over_http2_on_one_connection() {
    corpus_over(Proto::H2);
}

#[test]
fn corpus_over_http1_keep_alive() {
    corpus_over(Proto::H1);
}

#[test]
fn client_certificates_from_other_cas_or_none_fail_the_handshake() {
    let pki = Pki::new();
    let server = InProcess::start(&policies("k8s-basics"), &pki.serve_args());
    let rt = runtime();
    rt.block_on(async {
        let sar = common::server::sar("alice", &["developers"], "get", "pods", "team-a");
        let good = client_config(&pki.ca, Some((&pki.client_cert, &pki.client_key)), &[]);
        let mut conn = connect(server.addr, &good, Proto::H2).await.unwrap();
        assert_eq!(conn.authorize(&sar).await["status"]["allowed"], true);

        for config in [
            client_config(&pki.ca, Some((&pki.foreign_cert, &pki.foreign_key)), &[]),
            client_config(&pki.ca, None, &[]),
        ] {
            assert!(
                common::server::refused(server.addr, &config).await,
                "an unauthenticated client was served"
            );
        }
    });
    // The client can see its refusal before the server has counted it.
    server.wait_metric("cedar_authorizer_tls_handshake_failures_total", 2.0);
}

#[test]
fn allowed_client_cn_list_rejects_other_subjects() {
    let pki = Pki::new();
    let (other_cert, other_key) = pki.client_with_cn("someone-else");
    let mut args = pki.serve_args();
    args.extend(["--allowed-client-cn".into(), "system:apiserver".into()]);
    let server = InProcess::start(&policies("k8s-basics"), &args);
    let sar = common::server::sar("alice", &["developers"], "get", "pods", "team-a");
    runtime().block_on(async {
        let good = client_config(&pki.ca, Some((&pki.client_cert, &pki.client_key)), &[]);
        let mut conn = connect(server.addr, &good, Proto::H1).await.unwrap();
        assert_eq!(conn.authorize(&sar).await["status"]["allowed"], true);
        let other = client_config(&pki.ca, Some((&other_cert, &other_key)), &[]);
        assert!(
            common::server::refused(server.addr, &other).await,
            "a client CN outside --allowed-client-cn was served"
        );
    });
}

#[test]
fn bad_input_gets_its_status_and_the_server_keeps_answering() {
    let pki = Pki::new();
    let server = InProcess::start(&policies("k8s-basics"), &pki.serve_args());
    let config = client_config(&pki.ca, Some((&pki.client_cert, &pki.client_key)), &[]);
    runtime().block_on(async {
        let mut conn = connect(server.addr, &config, Proto::H1).await.unwrap();
        let good = common::server::sar("alice", &["developers"], "get", "pods", "team-a");
        let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
            ("POST", "/authorize", b"\x00\xffgarbage".to_vec(), 400, "malformed"),
            ("POST", "/authorize", br#"{"apiVersion": "authorization.k8s.io/v1", "kind": "Subj"#.to_vec(), 400, "malformed"),
            ("POST", "/authorize", b"[1, 2, 3]".to_vec(), 400, "malformed"),
            ("POST", "/authorize", br#"{"apiVersion": "v1", "kind": "Pod", "spec": {}}"#.to_vec(), 400, "apiVersion"),
            ("POST", "/authorize", br#"{"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {"user": "a"}}"#.to_vec(), 400, "neither"),
            ("POST", "/authorize", br#"{"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {"user": "a", "resourceAttributes": {"verb": "get"}, "nonResourceAttributes": {"verb": "get", "path": "/"}}}"#.to_vec(), 400, "both"),
            ("POST", "/authorize", br#"{"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {"user": 7, "nonResourceAttributes": {"verb": "get", "path": "/"}}}"#.to_vec(), 400, "invalid type"),
            ("POST", "/authorize", vec![b' '; 2 * 1024 * 1024], 413, "larger than"),
            ("GET", "/authorize", Vec::new(), 405, "method"),
            ("POST", "/nope", b"{}".to_vec(), 404, "not found"),
        ];
        for (method, path, body, want, needle) in cases {
            // A 413 may close an HTTP/1.1 connection; use a fresh one each time.
            let mut c = connect(server.addr, &config, Proto::H1).await.unwrap();
            let (status, body) = c.request(method, path, body).await.unwrap();
            assert_eq!(status, want, "{method} {path}: {}", String::from_utf8_lossy(&body));
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let error = v["error"].as_str().unwrap();
            assert!(error.contains(needle), "{error:?} should mention {needle:?}");
            assert_eq!(conn.authorize(&good).await["status"]["allowed"], true);
        }
    });
    assert!(server.metric("cedar_authorizer_request_errors_total{reason=\"malformed\"}") >= 7.0);
    assert_eq!(
        server.metric("cedar_authorizer_request_errors_total{reason=\"too_large\"}"),
        1.0
    );
    assert_eq!(server.admin_get("/healthz").0, 200);
}

/// curl's HTTP/2 status line for a POST of `body` (0 when it got no answer).
fn curl_h2(pki: &Pki, url: &str, method: &str, body: &Path) -> String {
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{http_version}",
            "--http2",
        ])
        .args(["--data-binary"])
        .arg(format!("@{}", body.display()))
        .arg("--cacert")
        .arg(&pki.ca)
        .arg("--cert")
        .arg(&pki.client_cert)
        .arg("--key")
        .arg(&pki.client_key)
        .args(["-X", method, url])
        .output()
        .expect("curl is installed (.ci/run installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn http2_posts_with_a_body_to_other_paths_get_404_and_405_with_a_client_ca() {
    let pki = Pki::new();
    let server = InProcess::start(&policies("k8s-basics"), &pki.serve_args());
    // Larger than one flow-control window: the body is still arriving when
    // the answer is ready. curl reported no answer at all for these before
    // the fallback handlers read the body.
    let body = pki.dir.path().join("body.json");
    std::fs::write(&body, vec![b' '; 100_000]).unwrap();
    let url = |path: &str| format!("https://{}{path}", server.addr);
    for _ in 0..10 {
        assert_eq!(curl_h2(&pki, &url("/nope"), "POST", &body), "404 2");
        assert_eq!(curl_h2(&pki, &url("/authorize"), "PUT", &body), "405 2");
    }
    let config = client_config(&pki.ca, Some((&pki.client_cert, &pki.client_key)), &[]);
    runtime().block_on(async {
        let mut conn = connect(server.addr, &config, Proto::H2).await.unwrap();
        let (status, answer) = conn
            .request("POST", "/nope", vec![b' '; 100_000])
            .await
            .unwrap();
        assert_eq!(status, 404, "{}", String::from_utf8_lossy(&answer));
        let v: serde_json::Value = serde_json::from_slice(&answer).unwrap();
        assert!(v["error"].as_str().unwrap().contains("not found"), "{v}");
        let good = common::server::sar("alice", &["developers"], "get", "pods", "team-a");
        assert_eq!(conn.authorize(&good).await["status"]["allowed"], true);
    });
}

#[test]
fn kubectl_through_a_webhook_kubeconfig_gets_corpus_answers() {
    if std::process::Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        panic!("kubectl is required (Debian package kubernetes-client); .ci/run installs it");
    }
    let pki = Pki::new();
    let scenario = common::scenarios()
        .into_iter()
        .find(|s| s.name == "k8s-basics")
        .unwrap();
    let server = InProcess::start(&scenario.policies, &pki.serve_args());
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = |cert: &Path, key: &Path, name: &str| {
        let text = cedar_authorizer::certs::kubeconfig(
            &format!("https://{}", server.addr),
            &pki.ca,
            cert,
            key,
        );
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let good = kubeconfig(&pki.client_cert, &pki.client_key, "good.kubeconfig");
    let foreign = kubeconfig(&pki.foreign_cert, &pki.foreign_key, "foreign.kubeconfig");
    let failures = common::server::kubectl_corpus(&good, &scenario, 4);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let out = common::server::kubectl_authorize(&foreign, &scenario.cases[0].sar);
    assert!(
        !out.status.success(),
        "a client certificate from another CA was accepted"
    );
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        err.contains("tls")
            || err.contains("certificate")
            || err.contains("eof")
            || err.contains("reset")
            // The server may close the refused connection while kubectl
            // is still writing its request.
            || err.contains("broken pipe"),
        "{err}"
    );
}

#[test]
fn serving_certificate_rotates_without_failed_requests() {
    let pki = Pki::new();
    let mut args = pki.serve_args();
    args.extend(["--cert-poll-interval".into(), "100ms".into()]);
    let server = InProcess::start(&policies("k8s-basics"), &args);
    let config = client_config(&pki.ca, Some((&pki.client_cert, &pki.client_key)), &[]);
    let old_der = pem_der(&std::fs::read_to_string(&pki.serving_cert).unwrap());
    let (new_cert, new_key) = pki.new_serving_pair();
    let new_der = pem_der(&new_cert);
    runtime().block_on(async {
        let sar = common::server::sar("alice", &["developers"], "get", "pods", "team-a");
        let mut kept = connect(server.addr, &config, Proto::H2).await.unwrap();
        assert_eq!(kept.server_cert, old_der);
        let mut rotated_at = None;
        for i in 0..400 {
            if i == 20 {
                // The key first, then the certificate, as a careless
                // rotation might: the mismatched moment must not break serving.
                std::fs::write(&pki.serving_key, &new_key).unwrap();
                tokio::time::sleep(Duration::from_millis(150)).await;
                std::fs::write(&pki.serving_cert, &new_cert).unwrap();
            }
            // A new connection (new handshake) each time, plus the kept one.
            let mut c = connect(server.addr, &config, Proto::H1)
                .await
                .expect("handshake failed during rotation");
            assert_eq!(c.authorize(&sar).await["status"]["allowed"], true);
            assert_eq!(kept.authorize(&sar).await["status"]["allowed"], true);
            if c.server_cert == new_der {
                rotated_at.get_or_insert(i);
                if i > rotated_at.unwrap() + 5 {
                    break;
                }
            } else {
                assert_eq!(c.server_cert, old_der);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            rotated_at.is_some(),
            "new handshakes never presented the new certificate"
        );
    });
}

fn pem_der(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

#[test]
fn sigterm_lets_in_flight_requests_finish_then_exits_zero() {
    let pki = Pki::new();
    let mut server = Server::start(&policies("k8s-basics"), &pki.serve_args());
    let config = client_config(&pki.ca, Some((&pki.client_cert, &pki.client_key)), &[]);
    let addr = server.addr;
    let rt = runtime();
    // An HTTP/1.1 request whose body is still arriving when SIGTERM lands.
    let in_flight = rt.spawn({
        let config = config.clone();
        async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut tls, rest) = common::server::half_sent_review(addr, &config).await;
            tokio::time::sleep(Duration::from_millis(800)).await;
            tls.write_all(&rest).await.unwrap();
            tls.flush().await.unwrap();
            let mut out = Vec::new();
            let _ = tls.read_to_end(&mut out).await;
            String::from_utf8_lossy(&out).into_owned()
        }
    });
    // Keep a stream of complete requests going on another connection too.
    let load = rt.spawn({
        let config = config.clone();
        async move {
            let mut conn = connect(addr, &config, Proto::H2).await.unwrap();
            let sar = common::server::sar("alice", &["developers"], "get", "pods", "team-a");
            let mut ok = 0;
            for _ in 0..20 {
                match conn
                    .request("POST", "/authorize", serde_json::to_vec(&sar).unwrap())
                    .await
                {
                    Ok((200, _)) => ok += 1,
                    Ok((s, _)) => panic!("status {s} during shutdown"),
                    Err(_) => break, // the connection was closed after draining
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            ok
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    server.signal("TERM");
    std::thread::sleep(Duration::from_millis(100));
    let response = rt.block_on(in_flight).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "in-flight request did not finish: {response:?}"
    );
    assert!(response.contains("\"allowed\":true"));
    assert!(rt.block_on(load).unwrap() > 0);
    let status = server.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0));
    server.wait_for_log(Duration::from_secs(1), |l| l.contains("shut down cleanly"));
}

#[test]
fn a_second_signal_during_the_drain_exits_at_once_with_1() {
    let pki = Pki::new();
    let mut args = pki.serve_args();
    args.extend(["--shutdown-grace-period".to_string(), "60s".to_string()]);
    let mut server = Server::start(&policies("k8s-basics"), &args);
    let config = client_config(&pki.ca, Some((&pki.client_cert, &pki.client_key)), &[]);
    let rt = runtime();
    let _held = rt.block_on(async {
        use tokio::io::AsyncWriteExt;
        // Half a request keeps the drain waiting.
        let mut tls = common::server::tls_stream(server.addr, &config).await;
        tls.write_all(
            b"POST /authorize HTTP/1.1\r\nhost: localhost\r\ncontent-length: 100\r\n\r\n{",
        )
        .await
        .unwrap();
        tls.flush().await.unwrap();
        tls
    });
    std::thread::sleep(Duration::from_millis(200));
    server.signal("TERM");
    server.wait_for_log(Duration::from_secs(5), |l| {
        l.contains("draining in-flight requests")
    });
    let started = std::time::Instant::now();
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(1), "a forced exit is not a clean one");
    assert!(started.elapsed() < Duration::from_secs(5));
    server.wait_for_log(Duration::from_secs(1), |l| l.contains("second signal"));
}

#[test]
fn readyz_and_healthz_on_the_admin_listener() {
    let pki = Pki::new();
    let server = InProcess::start(&policies("k8s-basics"), &pki.serve_args());
    assert_eq!(server.admin_get("/healthz").0, 200);
    assert_eq!(server.admin_get("/readyz").0, 200);
    let (status, text) = server.admin_get("/metrics");
    assert_eq!(status, 200);
    assert!(text.contains("cedar_authorizer_build_info{version="));
}

fn start_failure(args: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new(common::server::binary())
        .arg("serve")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn start_up_failures_exit_1_naming_the_flag_or_file() {
    let pki = Pki::new();
    let good = policies("k8s-basics");
    let bad = tempfile::tempdir().unwrap();
    std::fs::write(
        bad.path().join("broken.cedar"),
        "permit(principal, action, resource) when { resource.nope };",
    )
    .unwrap();
    let garbage = pki.dir.path().join("garbage.pem");
    std::fs::File::create(&garbage)
        .unwrap()
        .write_all(b"not a certificate")
        .unwrap();
    let free = "--secure-port=0";
    let admin = "--metrics-bind-address=127.0.0.1:0";

    let (code, err) = start_failure(&["--policies", bad.path().to_str().unwrap(), free, admin]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("--policies") && err.contains("broken.cedar:1:"),
        "{err}"
    );

    let (code, err) = start_failure(&["--policies", "/no/such/dir", free, admin]);
    assert_eq!(code, Some(1));
    assert!(err.contains("--policies /no/such/dir"), "{err}");

    let (code, err) = start_failure(&[
        "--policies",
        good.to_str().unwrap(),
        free,
        admin,
        "--tls-cert-file",
        garbage.to_str().unwrap(),
        "--tls-private-key-file",
        pki.serving_key.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("--tls-cert-file") && err.contains("garbage.pem"),
        "{err}"
    );

    let (code, err) = start_failure(&[
        "--policies",
        good.to_str().unwrap(),
        free,
        admin,
        "--tls-cert-file",
        pki.serving_cert.to_str().unwrap(),
        "--tls-private-key-file",
        pki.client_key.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("does not match"), "{err}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (code, err) = start_failure(&[
        "--policies",
        good.to_str().unwrap(),
        "--secure-port",
        &port,
        admin,
        "--cert-dir",
        pki.dir.path().join("certs").to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("--secure-port") && err.contains(&port),
        "{err}"
    );
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one clear line: {err}");
}

#[test]
fn self_signed_default_is_made_once_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let cert_dir = dir.path().join("certs");
    let args = vec!["--cert-dir".to_string(), cert_dir.display().to_string()];
    let first = Server::start(&policies("k8s-basics"), &args);
    let ca = cert_dir.join("ca.pem");
    assert!(ca.exists());
    assert!(
        !cert_dir.join("ca-key.pem").exists(),
        "the server never signs; a CA key left on disk could mint trusted certificates"
    );
    let der = std::fs::read(cert_dir.join("serving.pem")).unwrap();
    first.wait_for_log(Duration::from_secs(2), |l| {
        l.contains("self-signed") && l.contains("ca.pem")
    });
    let config = client_config(&ca, None, &[]);
    runtime().block_on(async {
        let mut c = connect(first.addr, &config, Proto::H2).await.unwrap();
        let sar = common::server::sar("alice", &["developers"], "get", "pods", "team-a");
        assert_eq!(c.authorize(&sar).await["status"]["allowed"], true);
    });
    drop(first);
    let _second = Server::start(&policies("k8s-basics"), &args);
    assert_eq!(
        std::fs::read(cert_dir.join("serving.pem")).unwrap(),
        der,
        "the certificate was not reused"
    );
}

#[test]
fn readyz_turns_503_while_a_request_drains_and_the_request_completes() {
    let pki = Pki::new();
    let mut args = pki.serve_args();
    args.extend(["--shutdown-grace-period".to_string(), "20s".to_string()]);
    let mut server = InProcess::start(&policies("k8s-basics"), &args);
    let config = client_config(&pki.ca, Some((&pki.client_cert, &pki.client_key)), &[]);
    let rt = runtime();
    rt.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // A request whose body is only half sent: in flight.
        let (mut tls, rest) = common::server::half_sent_review(server.addr, &config).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        server.begin_shutdown();
        let admin = server.admin;
        let seen = tokio::task::spawn_blocking(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok((503, _)) = common::server::try_http_get(admin, "/readyz") {
                    return true;
                }
                if std::time::Instant::now() > deadline {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
        .await
        .unwrap();
        assert!(seen, "/readyz never answered 503 during the drain");
        tls.write_all(&rest).await.unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&answer).contains("\"allowed\"") {
            let n = tls.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "connection closed without an answer: {}",
                String::from_utf8_lossy(&answer)
            );
            answer.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.contains("\"allowed\":true"), "{text}");
    });
    assert_eq!(server.shutdown(), Ok(()));
}

/// A self-signed pair that expired in 2021, as an old default would be.
fn expired_pair() -> (String, String) {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

#[test]
fn an_expired_self_signed_default_is_made_anew_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let cert_dir = dir.path().join("certs");
    std::fs::create_dir_all(&cert_dir).unwrap();
    let (cert, key) = expired_pair();
    std::fs::write(cert_dir.join("serving.pem"), &cert).unwrap();
    std::fs::write(cert_dir.join("serving-key.pem"), &key).unwrap();
    let args = vec!["--cert-dir".to_string(), cert_dir.display().to_string()];
    let server = InProcess::start(&policies("k8s-basics"), &args);
    let renewed = std::fs::read_to_string(cert_dir.join("serving.pem")).unwrap();
    assert_ne!(renewed, cert, "the expired certificate was reused");
    let expiry = server
        .metric("cedar_authorizer_certificate_expiry_timestamp_seconds{certificate=\"serving\"}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as f64;
    assert!(
        expiry > now + 300.0 * 86400.0,
        "expiry {expiry} is not a year out"
    );
    let config = client_config(&cert_dir.join("ca.pem"), None, &[]);
    runtime().block_on(async {
        let mut c = connect(server.addr, &config, Proto::H2).await.unwrap();
        let sar = common::server::sar("alice", &["developers"], "get", "pods", "team-a");
        assert_eq!(c.authorize(&sar).await["status"]["allowed"], true);
    });
}

#[test]
fn a_rotated_client_ca_is_used_for_new_connections_without_restart() {
    let pki = Pki::new();
    let client_ca = pki.dir.path().join("client-ca.pem");
    std::fs::copy(&pki.ca, &client_ca).unwrap();
    let args: Vec<String> = [
        "--tls-cert-file",
        pki.serving_cert.to_str().unwrap(),
        "--tls-private-key-file",
        pki.serving_key.to_str().unwrap(),
        "--client-ca-file",
        client_ca.to_str().unwrap(),
        "--cert-poll-interval",
        "100ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let server = InProcess::start(&policies("k8s-basics"), &args);
    let second = cedar_authorizer::certs::Authority::new("second client CA").unwrap();
    let pair = second.client("system:apiserver").unwrap();
    let (cert2, key2) = (
        pki.dir.path().join("c2.pem"),
        pki.dir.path().join("c2-key.pem"),
    );
    std::fs::write(&cert2, &pair.cert).unwrap();
    std::fs::write(&key2, &pair.key).unwrap();
    let old = client_config(&pki.ca, Some((&pki.client_cert, &pki.client_key)), &[]);
    let new = client_config(&pki.ca, Some((&cert2, &key2)), &[]);
    let rt = runtime();
    let sar = common::server::sar("alice", &["developers"], "get", "pods", "team-a");
    rt.block_on(async {
        let mut kept = connect(server.addr, &old, Proto::H2).await.unwrap();
        assert!(common::server::refused(server.addr, &new).await);
        // Rotate: write aside, rename into place.
        let staged = pki.dir.path().join("client-ca.pem.new");
        std::fs::write(&staged, &second.pem.cert).unwrap();
        std::fs::rename(&staged, &client_ca).unwrap();
        let started = std::time::Instant::now();
        while common::server::refused(server.addr, &new).await {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the new client CA was not picked up"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            common::server::refused(server.addr, &old).await,
            "the old CA still verifies new connections"
        );
        // A connection made before the rotation keeps working.
        assert_eq!(kept.authorize(&sar).await["status"]["allowed"], true);
        let mut c = connect(server.addr, &new, Proto::H2).await.unwrap();
        assert_eq!(c.authorize(&sar).await["status"]["allowed"], true);
    });
    assert!(
        server.metric(
            "cedar_authorizer_certificate_expiry_timestamp_seconds{certificate=\"client_ca\"}"
        ) > 0.0
    );
}
