//! Hot reload, black-box: file events, a bad edit, a ConfigMap `..data`
//! swap, a deleted directory, SIGHUP, and a stream of requests across many
//! swaps that never fails and never sees a stale answer.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::server::{client_config, connect, runtime, InProcess, Pki, Proto, Server, PATIENCE};

const ALLOW_PODS: &str = r#"@id("allow-pods") permit(principal, action, resource is k8s::Resource) when { resource.resource == "pods" };"#;
const DENY_PODS: &str = r#"@id("deny-pods") forbid(principal, action, resource is k8s::Resource) when { resource.resource == "pods" };"#;
const BASE: &str = r#"@id("base") permit(principal == k8s::User::"nobody", action, resource);"#;

fn pods() -> serde_json::Value {
    common::server::sar("alice", &["developers"], "get", "pods", "default")
}

/// Serve `dir` with file watching and a 60 s poll, so that picking up a
/// change within [`PATIENCE`] shows the watcher at work.
fn serve(pki: &Pki, dir: &Path) -> Server {
    let mut args = pki.serve_args();
    args.extend(
        [
            "--policy-poll-interval",
            "60s",
            "--reload-debounce",
            "100ms",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    Server::start(dir, &args)
}

fn decision(status: &serde_json::Value) -> &'static str {
    match (status["allowed"].as_bool(), status["denied"].as_bool()) {
        (Some(true), _) => "allowed",
        (_, Some(true)) => "denied",
        _ => "no_opinion",
    }
}

/// Asks until the answer is `want` or `within` has passed; returns the time it took.
fn answer_becomes(server: &Server, pki: &Pki, want: &str, within: Duration) -> Duration {
    let config = client_config(&pki.ca, Some((&pki.client_cert, &pki.client_key)), &[]);
    let start = Instant::now();
    runtime().block_on(async {
        let mut conn = connect(server.addr, &config, Proto::H2).await.unwrap();
        loop {
            let got = conn.authorize(&pods()).await;
            if decision(&got["status"]) == want {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < within,
                "answer still {} after {within:?}",
                got["status"]
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
}

#[test]
fn added_bad_fixed_and_deleted_files() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("base.cedar"), BASE).unwrap();
    let server = serve(&pki, dir.path());
    answer_becomes(&server, &pki, "no_opinion", Duration::ZERO);

    // Adding a file changes the answer (the watcher, not the poll).
    std::fs::write(dir.path().join("pods.cedar"), ALLOW_PODS).unwrap();
    let took = answer_becomes(&server, &pki, "allowed", PATIENCE);
    eprintln!("new policy file answered after {took:?}");
    assert_eq!(server.metric("cedar_authorizer_policy_generation"), 2.0);

    // An invalid edit: the answer stays, the failure is counted, still ready.
    std::fs::write(
        dir.path().join("pods.cedar"),
        "permit(principal, action, resource) when { resource.nope };",
    )
    .unwrap();
    server.wait_metric(
        "cedar_authorizer_policy_reloads_total{result=\"failure\"}",
        1.0,
    );
    answer_becomes(&server, &pki, "allowed", Duration::ZERO);
    assert_eq!(server.admin_get("/readyz").0, 200);
    let line = server.wait_for_log(PATIENCE, |l| l.contains("policy set not loaded"));
    assert!(
        line.contains("pods.cedar:1:"),
        "the failure names file:line: {line}"
    );

    // Fixed: the new answer.
    std::fs::write(dir.path().join("pods.cedar"), DENY_PODS).unwrap();
    answer_becomes(&server, &pki, "denied", PATIENCE);

    // Everything deleted: the last valid set keeps serving, and it is reported.
    let failures = server.metric("cedar_authorizer_policy_reloads_total{result=\"failure\"}");
    std::fs::remove_dir_all(dir.path()).unwrap();
    server.wait_metric(
        "cedar_authorizer_policy_reloads_total{result=\"failure\"}",
        failures + 1.0,
    );
    answer_becomes(&server, &pki, "denied", Duration::ZERO);
    assert_eq!(server.admin_get("/readyz").0, 200);

    // And it comes back when the directory does (the poll backstop finds it
    // even though the watch on the deleted directory is gone).
    std::fs::create_dir(dir.path()).unwrap();
    std::fs::write(dir.path().join("pods.cedar"), ALLOW_PODS).unwrap();
    server.signal("HUP");
    answer_becomes(&server, &pki, "allowed", PATIENCE);
}

#[cfg(unix)]
#[test]
fn a_configmap_data_symlink_swap_is_picked_up() {
    use std::os::unix::fs::symlink;
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The kubelet's layout: timestamped directory, `..data` pointing at it,
    // and visible names that are symlinks through `..data`.
    std::fs::create_dir(d.join("..2026_11_28_00_00_00.1")).unwrap();
    std::fs::write(d.join("..2026_11_28_00_00_00.1/policy.cedar"), ALLOW_PODS).unwrap();
    symlink("..2026_11_28_00_00_00.1", d.join("..data")).unwrap();
    symlink("..data/policy.cedar", d.join("policy.cedar")).unwrap();
    let server = serve(&pki, d);
    answer_becomes(&server, &pki, "allowed", Duration::ZERO);
    assert_eq!(
        server.metric("cedar_authorizer_policies{effect=\"permit\"}"),
        1.0,
        "loaded once, not through ..data too"
    );

    // The update: a new timestamped directory, `..data_tmp`, renamed over `..data`.
    std::fs::create_dir(d.join("..2026_11_28_00_05_00.2")).unwrap();
    std::fs::write(d.join("..2026_11_28_00_05_00.2/policy.cedar"), DENY_PODS).unwrap();
    symlink("..2026_11_28_00_05_00.2", d.join("..data_tmp")).unwrap();
    std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
    std::fs::remove_dir_all(d.join("..2026_11_28_00_00_00.1")).unwrap();
    let took = answer_becomes(&server, &pki, "denied", PATIENCE);
    eprintln!("..data swap answered after {took:?}");
}

#[test]
fn sighup_reloads() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.cedar"), ALLOW_PODS).unwrap();
    let server = serve(&pki, dir.path());
    server.signal("HUP");
    server.wait_metric("cedar_authorizer_policy_generation", 2.0);
    server.wait_for_log(PATIENCE, |l| l.contains("SIGHUP"));
}

#[test]
fn requests_keep_flowing_across_reloads_without_failures_or_stale_answers() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.cedar"), ALLOW_PODS).unwrap();
    let server = serve(&pki, dir.path());
    let config = client_config(&pki.ca, Some((&pki.client_cert, &pki.client_key)), &[]);
    let rt = runtime();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Background load on its own connection: every answer must be a 200
    // with one of the two policy sets' answers.
    let load = rt.spawn({
        let (config, stop, addr) = (config.clone(), stop.clone(), server.addr);
        async move {
            let mut conn = connect(addr, &config, Proto::H2).await.unwrap();
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let got = conn.authorize(&pods()).await;
                assert!(
                    matches!(decision(&got["status"]), "allowed" | "denied"),
                    "{got}"
                );
                n += 1;
            }
            n
        }
    });
    let swaps = 12;
    for k in 1..=swaps {
        let (text, want) = if k % 2 == 1 {
            (DENY_PODS, "denied")
        } else {
            (ALLOW_PODS, "allowed")
        };
        std::fs::write(dir.path().join("p.cedar"), text).unwrap();
        // Once the new generation is visible, every later answer is from it.
        server.wait_metric("cedar_authorizer_policy_generation", 1.0 + k as f64);
        rt.block_on(async {
            let mut conn = connect(server.addr, &config, Proto::H1).await.unwrap();
            for _ in 0..20 {
                let got = conn.authorize(&pods()).await;
                assert_eq!(
                    decision(&got["status"]),
                    want,
                    "stale answer after swap {k}: {got}"
                );
            }
        });
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let served = rt.block_on(load).unwrap();
    eprintln!("{served} background requests across {swaps} swaps");
    assert!(served > 100, "only {served} background requests");
    assert_eq!(
        server.metric("cedar_authorizer_policy_reloads_total{result=\"failure\"}"),
        0.0
    );
}

/// Serve `dir` in process with a slow poll and the given debounce.
fn serve_in_process(pki: &Pki, dir: &Path, debounce: &str) -> InProcess {
    let mut args = pki.serve_args();
    args.extend(
        [
            "--policy-poll-interval",
            "60s",
            "--reload-debounce",
            debounce,
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    InProcess::start(dir, &args)
}

fn reloads(server: &InProcess, result: &str) -> f64 {
    server.metric(&format!(
        "cedar_authorizer_policy_reloads_total{{result=\"{result}\"}}"
    ))
}

/// Polls `f` until it is true or `within` passes.
fn eventually(within: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < within, "{what} not within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_idle_server_with_nested_directories_does_not_reload_itself() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    for sub in ["a", "a/b", "a/b/c", "d"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        std::fs::write(
            dir.path().join(sub).join("p.cedar"),
            format!("@id(\"{sub}\") {}", &BASE[11..]),
        )
        .unwrap();
    }
    let server = serve_in_process(&pki, dir.path(), "50ms");
    // The watcher sees the reloader's own reads of the subdirectories if it
    // counts them as changes; over two idle seconds, nothing may happen.
    std::thread::sleep(Duration::from_secs(2));
    let attempts =
        reloads(&server, "unchanged") + reloads(&server, "success") + reloads(&server, "failure");
    assert_eq!(attempts, 0.0, "an idle server reloaded {attempts} times");
    // A real change is still seen.
    std::fs::write(dir.path().join("a/b/new.cedar"), ALLOW_PODS).unwrap();
    eventually(PATIENCE, "the new file loaded", || {
        reloads(&server, "success") == 1.0
    });
}

#[test]
fn a_slow_multi_file_change_is_loaded_once_when_it_is_complete() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let files = ["1.cedar", "2.cedar", "3.cedar"];
    for (i, f) in files.iter().enumerate() {
        std::fs::write(
            dir.path().join(f),
            format!("@id(\"v1-{i}\") {}", &BASE[11..]),
        )
        .unwrap();
    }
    let server = serve_in_process(&pki, dir.path(), "400ms");
    // Three files, 250 ms apart: longer than a leading debounce would wait
    // for the second, shorter than the quiet time a trailing one needs.
    for (i, f) in files.iter().enumerate() {
        std::fs::write(
            dir.path().join(f),
            format!("@id(\"v2-{i}\") {}", &BASE[11..]),
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(250));
    }
    eventually(PATIENCE, "the change loaded", || {
        reloads(&server, "success") >= 1.0
    });
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        reloads(&server, "success"),
        1.0,
        "a half-applied change was loaded"
    );
    assert_eq!(server.metric("cedar_authorizer_policy_generation"), 2.0);
}

#[test]
fn loops_fifos_and_oversized_files_fail_the_reload_and_the_previous_set_serves() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("allow.cedar"), ALLOW_PODS).unwrap();
    let server = serve_in_process(&pki, dir.path(), "50ms");
    let config = client_config(&pki.ca, Some((&pki.client_cert, &pki.client_key)), &[]);
    let still_allowed = || {
        runtime().block_on(async {
            let mut conn = connect(server.addr, &config, Proto::H1).await.unwrap();
            decision(&conn.authorize(&pods()).await["status"]) == "allowed"
        })
    };
    let loop_link = dir.path().join("self");
    let fifo = dir.path().join("x.cedar");
    let big = dir.path().join("big.cedar");
    let mut failures = 0.0;
    type Step<'a> = Box<dyn Fn() + 'a>;
    let bad: [(&str, Step, Step); 3] = [
        (
            "a symlink loop",
            Box::new(|| std::os::unix::fs::symlink(".", &loop_link).unwrap()),
            Box::new(|| std::fs::remove_file(&loop_link).unwrap()),
        ),
        (
            "a FIFO",
            Box::new(|| {
                assert!(std::process::Command::new("mkfifo")
                    .arg(&fifo)
                    .status()
                    .unwrap()
                    .success())
            }),
            Box::new(|| std::fs::remove_file(&fifo).unwrap()),
        ),
        (
            "an oversized file",
            Box::new(|| {
                std::fs::File::create(&big)
                    .unwrap()
                    .set_len(17 << 20)
                    .unwrap()
            }),
            Box::new(|| std::fs::remove_file(&big).unwrap()),
        ),
    ];
    for (what, make, remove) in bad {
        make();
        failures += 1.0;
        eventually(PATIENCE, what, || reloads(&server, "failure") >= failures);
        assert!(
            still_allowed(),
            "{what}: the previous set must keep serving"
        );
        remove();
    }
    // Fixed: the next change loads (the reloader did not hang on the FIFO).
    std::fs::write(dir.path().join("deny.cedar"), DENY_PODS).unwrap();
    eventually(PATIENCE, "the fixed set loaded", || {
        reloads(&server, "success") >= 1.0
    });
    assert!(!still_allowed());
}
