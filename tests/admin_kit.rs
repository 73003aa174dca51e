//! The cluster admin's path, black-box: `certs` makes the PKI, `serve` runs
//! with it and `--client-ca-file`, `kubeconfig` writes the apiserver's
//! webhook kubeconfig, and kubectl (client-go's transport, as the apiserver
//! uses) gets the corpus answers through it; a foreign client cert fails.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::server::{binary, Server};

fn run(args: &[&str]) -> Output {
    Command::new(binary()).args(args).output().unwrap()
}

#[test]
fn certs_kubeconfig_serve_and_kubectl_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let p = |n: &str| pki.join(n).display().to_string();

    let out = run(&[
        "certs",
        "--out",
        pki.to_str().unwrap(),
        "--hosts",
        "127.0.0.1,localhost",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for key in ["ca-key.pem", "serving-key.pem", "apiserver-client-key.pem"] {
            let mode = std::fs::metadata(pki.join(key))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{key}");
        }
    }
    // Refuses to overwrite without --force; overwrites with it.
    let again = run(&["certs", "--out", pki.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));

    let scenario = common::scenarios()
        .into_iter()
        .find(|s| s.name == "k8s-basics")
        .unwrap();
    let server = Server::start(
        &scenario.policies,
        &[
            "--tls-cert-file".into(),
            p("serving.pem"),
            "--tls-private-key-file".into(),
            p("serving-key.pem"),
            "--client-ca-file".into(),
            p("ca.pem"),
        ],
    );
    let kubeconfig = |cert: &str, key: &str| {
        let out = run(&[
            "kubeconfig",
            "--server",
            &format!("https://{}", server.addr),
            "--ca",
            &p("ca.pem"),
            "--client-cert",
            cert,
            "--client-key",
            key,
        ]);
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let good = dir.path().join("webhook.kubeconfig");
    std::fs::write(
        &good,
        kubeconfig(&p("apiserver-client.pem"), &p("apiserver-client-key.pem")),
    )
    .unwrap();
    let text = std::fs::read_to_string(&good).unwrap();
    let parsed: serde_json::Value = cedar_authorizer::yaml::from_str(&text).unwrap();
    assert!(Path::new(
        parsed["users"][0]["user"]["client-certificate"]
            .as_str()
            .unwrap()
    )
    .is_absolute());

    // A client pair from another CA made by a second `certs` run.
    let other = dir.path().join("other");
    assert!(run(&["certs", "--out", other.to_str().unwrap()])
        .status
        .success());
    let foreign = dir.path().join("foreign.kubeconfig");
    std::fs::write(
        &foreign,
        kubeconfig(
            &other.join("apiserver-client.pem").display().to_string(),
            &other.join("apiserver-client-key.pem").display().to_string(),
        ),
    )
    .unwrap();

    let failures = common::server::kubectl_corpus(&good, &scenario, 5);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let out = common::server::kubectl_authorize(&foreign, &scenario.cases[0].sar);
    assert!(
        !out.status.success(),
        "a client certificate from another CA was served"
    );
}
