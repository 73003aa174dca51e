//! `check`: one review decided offline exactly as the server would, with
//! `--explain` for a human.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::Args;

use super::{load_snapshot, report_load_error, ExemptArgs, PolicyArgs};
use crate::decision::Decision;
use crate::engine::Engine;
use crate::entities::{self, Impersonation};
use crate::policy::Snapshot;
use crate::{admission, eval, sar};

/// Whether a body says it is an AdmissionReview (anything else is read as
/// a SubjectAccessReview, whose parser names what is wrong).
fn is_admission_review(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Kind {
        kind: Option<String>,
    }
    serde_json::from_slice::<Kind>(body)
        .ok()
        .and_then(|k| k.kind)
        .is_some_and(|k| k == "AdmissionReview")
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub exempt: ExemptArgs,
    /// Also show the principal, action, resource, entities and determining
    /// policies (on stderr, so stdout stays the response JSON).
    #[arg(long)]
    pub explain: bool,
    /// SubjectAccessReview or AdmissionReview JSON file, or `-` for stdin.
    pub sar: PathBuf,
}

fn read_input(path: &Path) -> std::io::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf)?;
        Ok(buf)
    } else {
        std::fs::read(path)
    }
}

/// `check`: 0 on any decision, 1 when the policies do not load, 2 for
/// input that is not a review.
pub(super) fn run(args: &CheckArgs) -> i32 {
    let body = match read_input(&args.sar) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {}: {e}", args.sar.display());
            return 2;
        }
    };
    if is_admission_review(&body) {
        return run_admission(args, &body);
    }
    let (review, engine) = match prepare(args, &body, sar::parse_review) {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    let outcome = engine.decide(&review.request);
    if args.explain {
        explain(&engine.snapshot(), &review.request, &outcome.decision);
    }
    print_pretty(&sar::response_json(
        review.api_version,
        &outcome.decision.status,
    ));
    0
}

/// Parses the input with `parse`, then loads the policies into an engine;
/// on failure, the error is reported and the exit code returned (2 for
/// malformed input, 1 for bad policies).
fn prepare<T, E: std::fmt::Display>(
    args: &CheckArgs,
    body: &[u8],
    parse: impl FnOnce(&[u8]) -> Result<T, E>,
) -> Result<(T, Engine), i32> {
    let input = parse(body).map_err(|e| {
        eprintln!("error: {}: {e}", args.sar.display());
        2
    })?;
    let snapshot = load_snapshot(&args.policy).map_err(|e| {
        report_load_error(&e);
        1
    })?;
    Ok((input, Engine::new(snapshot, args.exempt.exemptions(), 0)))
}

fn print_pretty(body: &[u8]) {
    let pretty: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    println!(
        "{}",
        serde_json::to_string_pretty(&pretty).unwrap_or_default()
    );
}

fn run_admission(args: &CheckArgs, body: &[u8]) -> i32 {
    let (input, engine) = match prepare(args, body, admission::parse_review) {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    let outcome = engine.admit(&input);
    let d = &outcome.decision;
    let refused =
        (d.verdict == crate::decision::Verdict::Denied).then_some(d.status.reason.as_str());
    if args.explain {
        let snapshot = engine.snapshot();
        eprintln!(
            "decision:  {}",
            if refused.is_some() {
                "denied"
            } else {
                "admitted"
            }
        );
        eprintln!("why:       {}", d.explanation());
        if !d.exempt {
            let action = snapshot
                .schema
                .admission_actions
                .get(admission::operation_name(&input.operation));
            match admission::build(&input, &snapshot.schema.shapes, action) {
                Ok(built) => explain_entities(&built),
                Err(e) => eprintln!("entities:  {e}"),
            }
        }
        explain_policies(&snapshot, d);
    }
    print_pretty(&input.response_json(refused));
    0
}

fn explain_entities(built: &entities::RequestEntities) {
    eprintln!("resource:  {}", built.resource);
    let mut json = Vec::new();
    if built.entities.write_to_json(&mut json).is_ok() {
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap_or_default();
        eprintln!(
            "entities:\n{}",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        );
    }
}

fn explain(snapshot: &Snapshot, req: &sar::AccessRequest, decision: &Decision) {
    eprintln!("decision:  {}", decision.verdict.as_str());
    eprintln!("why:       {}", decision.explanation());
    if decision.exempt {
        eprintln!("exempt:    {} is exempt; nothing was evaluated", req.user);
        return;
    }
    match eval::build(snapshot, req) {
        Ok(built) => {
            eprintln!("principal: {}", built.principal);
            eprintln!("action:    {}", built.action);
            match entities::impersonation(req.attributes.verb()) {
                Impersonation::None => {}
                Impersonation::Legacy => eprintln!("impersonation: legacy (no mode)"),
                Impersonation::Identity { mode } => {
                    eprintln!("impersonation: constrained, mode {mode:?} (context.mode)")
                }
                Impersonation::On { mode, verb } => eprintln!(
                    "impersonation: constrained, mode {mode:?}, verb {verb:?} (context.mode, context.verb)"
                ),
            }
            explain_entities(&built);
        }
        Err(e) => eprintln!("entities:  {e}"),
    }
    explain_policies(snapshot, decision);
}

fn explain_policies(snapshot: &Snapshot, decision: &Decision) {
    if decision.policies.is_empty() {
        eprintln!("determining policies: none");
    }
    for id in &decision.policies {
        let file = snapshot
            .policies
            .iter()
            .find(|p| &p.id == id)
            .map(|p| p.file.as_str())
            .unwrap_or("?");
        eprintln!("determining policy: {id} ({file})");
        if let Some(p) = snapshot.set.policy(&cedar_policy::PolicyId::new(id)) {
            eprintln!("{p}");
        }
    }
    for (id, message) in &decision.errors {
        eprintln!("evaluation error: policy {id}: {message}");
    }
}
