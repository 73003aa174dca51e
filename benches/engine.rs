//! Criterion benches of the decision engine, in process, single thread:
//! uncached decisions at 10 to 10,000 RBAC-shaped policies (with Cedar's
//! linear scan alongside for comparison), cached decisions (by request and,
//! as the server looks them up, by body bytes), and a full
//! reload (read + parse + validate + index) of 10,000 policies.
//!
//! `cargo bench --bench engine`; numbers are in the README.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cedar_authorizer::engine::{Engine, Exemptions};
use cedar_authorizer::eval::{self, cedar_request, RawOutcome};
use cedar_authorizer::policy::{self, SchemaBundle};
use cedar_authorizer::sar;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

/// The binary's allocator, so the numbers are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Writes `n` RBAC-shaped policies (a group, a verb list, resource
/// conditions), about ten per group, as a converted RBAC would have.
fn write_rbac_policies(dir: &Path, n: usize) {
    let groups = (n / 10).max(1);
    let verbs = [
        "\"get\", \"list\", \"watch\"",
        "\"create\", \"update\", \"patch\", \"delete\"",
        "\"get\"",
    ];
    let resources = [
        "pods",
        "deployments",
        "configmaps",
        "services",
        "secrets",
        "jobs",
    ];
    let mut text = String::new();
    for i in 0..n {
        let verbs: Vec<String> = verbs[i % verbs.len()]
            .split(", ")
            .map(|v| format!("k8s::Action::{v}"))
            .collect();
        text.push_str(&format!(
            "@id(\"rbac-{i}\")\npermit (\n  principal in k8s::Group::\"group-{}\",\n  action in [{}],\n  resource is k8s::Resource\n)\nwhen {{ resource.apiGroup == \"\" && resource.resource == \"{}\" && resource has namespace && resource.namespace == \"ns-{}\" }};\n\n",
            i % groups,
            verbs.join(", "),
            resources[i % resources.len()],
            i % 50,
        ));
        if i % 1000 == 999 || i == n - 1 {
            std::fs::write(dir.join(format!("rbac-{:05}.cedar", i / 1000)), &text).unwrap();
            text.clear();
        }
    }
}

/// A request from a member of two of the set's groups (the same density of
/// matching policies at every set size: about ten per group).
fn review(i: usize, n: usize) -> sar::AccessRequest {
    sar::parse_review(&review_body(i, n)).unwrap().request
}

/// The body of [`review`]'s request, as the server receives it.
fn review_body(i: usize, n: usize) -> Vec<u8> {
    let groups = (n / 10).max(1);
    let body = serde_json::json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": format!("user-{i}"),
            "groups": [format!("group-{}", i % groups), format!("group-{}", (i * 7 + 3) % groups), "system:authenticated"],
            "uid": "0d7b1f1e",
            "extra": {"scopes": ["read"]},
            "resourceAttributes": {"verb": "list", "version": "v1", "resource": "pods", "namespace": format!("ns-{}", i % 50)}
        }
    });
    serde_json::to_vec(&body).unwrap()
}

fn load(n: usize) -> (tempfile::TempDir, policy::Snapshot) {
    let dir = tempfile::tempdir().unwrap();
    write_rbac_policies(dir.path(), n);
    let schema = Arc::new(SchemaBundle::load(None).unwrap());
    let s = policy::load(dir.path(), &schema, 1).unwrap();
    (dir, s)
}

fn decisions(c: &mut Criterion) {
    let mut g = c.benchmark_group("decision_uncached");
    for n in [10, 100, 1_000, 10_000] {
        let (_dir, snapshot) = load(n);
        let engine = Engine::new(snapshot, Exemptions::default(), 0);
        let reqs: Vec<_> = (0..64).map(|i| review(i, n)).collect();
        let mut i = 0;
        g.bench_with_input(BenchmarkId::new("indexed", n), &n, |b, _| {
            b.iter(|| {
                i = (i + 1) % reqs.len();
                black_box(engine.decide(&reqs[i]))
            })
        });
        if n <= 1_000 {
            let snapshot = engine.snapshot();
            g.bench_with_input(BenchmarkId::new("cedar_linear_scan", n), &n, |b, _| {
                b.iter(|| {
                    i = (i + 1) % reqs.len();
                    let built = eval::build(&snapshot, &reqs[i]).unwrap();
                    let request = cedar_request(&built).unwrap();
                    black_box(RawOutcome::linear(&snapshot.set, &request, &built.entities))
                })
            });
        }
    }
    g.finish();

    let mut g = c.benchmark_group("decision_cached");
    let (_dir, snapshot) = load(10_000);
    let engine = Engine::new(snapshot, Exemptions::default(), 1024);
    let reqs: Vec<_> = (0..64).map(|i| review(i, 10_000)).collect();
    for r in &reqs {
        engine.decide(r);
    }
    let mut i = 0;
    g.bench_function("hit", |b| {
        b.iter(|| {
            i = (i + 1) % reqs.len();
            let out = engine.decide(&reqs[i]);
            debug_assert!(out.cache_hit);
            black_box(out)
        })
    });
    // The server's lookup: by the body's bytes, no parse, the answer's
    // bytes returned.
    let bodies: Vec<_> = (0..64).map(|i| review_body(i, 10_000)).collect();
    for b in &bodies {
        engine.answer_review(b).unwrap();
    }
    g.bench_function("body_hit", |b| {
        b.iter(|| {
            i = (i + 1) % bodies.len();
            let out = engine.answer_review(&bodies[i]).unwrap();
            debug_assert!(out.outcome.cache_hit);
            black_box(out)
        })
    });
    g.finish();
}

/// The fixed costs every uncached request pays before any policy runs.
fn request_path(c: &mut Criterion) {
    let (_dir, snapshot) = load(10);
    let body = serde_json::to_vec(&serde_json::json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": "user-1", "groups": ["group-3", "group-1", "system:authenticated"],
            "uid": "0d7b1f1e", "extra": {"scopes": ["read"]},
            "resourceAttributes": {"verb": "list", "version": "v1", "resource": "pods", "namespace": "ns-1"}
        }
    }))
    .unwrap();
    let req = review(1, 10);
    let mut g = c.benchmark_group("request_path");
    g.bench_function("parse_review", |b| {
        b.iter(|| black_box(sar::parse_review(&body).unwrap()))
    });
    g.bench_function("build_entities", |b| {
        b.iter(|| black_box(eval::build(&snapshot, &req).unwrap()))
    });
    g.finish();
}

fn reload(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    write_rbac_policies(dir.path(), 10_000);
    let schema = Arc::new(SchemaBundle::load(None).unwrap());
    let mut g = c.benchmark_group("reload");
    g.sample_size(10).measurement_time(Duration::from_secs(30));
    g.bench_function("read_parse_validate_index_10000", |b| {
        b.iter(|| black_box(policy::load(dir.path(), &schema, 2).unwrap()))
    });
    g.finish();
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        if let Some(line) = status.lines().find(|l| l.starts_with("VmHWM")) {
            eprintln!("peak RSS of the bench process (includes all benches so far): {line}");
        }
    }
}

criterion_group!(benches, request_path, decisions, reload);
criterion_main!(benches);
