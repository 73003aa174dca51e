//! The offline subcommands, and dispatch for all of them. Each returns the
//! process exit code the interface page promises.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use crate::cli::{CheckArgs, Cli, Command, PolicyArgs, ValidateArgs};
use crate::engine::{self, Engine};
use crate::policy::{self, LoadError, SchemaBundle, Snapshot};
use crate::sar;

/// Runs a parsed command line; returns the exit code.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Serve(args) => crate::server::main(*args),
        Command::Validate(args) => validate(&args),
        Command::Check(args) => check(&args),
        Command::Schema => {
            print!("{}", policy::BUILTIN_SCHEMA);
            0
        }
        Command::Certs(args) => {
            match crate::certs::generate(&args.out, &args.hosts, &args.client_cn, args.force) {
                Ok(()) => {
                    println!(
                        "wrote {}, {}, {}, {}, {}, {} to {}",
                        crate::certs::CA_CERT,
                        crate::certs::CA_KEY,
                        crate::certs::SERVING_CERT,
                        crate::certs::SERVING_KEY,
                        crate::certs::CLIENT_CERT,
                        crate::certs::CLIENT_KEY,
                        args.out.display()
                    );
                    0
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    1
                }
            }
        }
        Command::Test(args) => crate::toolkit::test(&args),
        Command::Fmt(args) => crate::toolkit::fmt(&args),
        Command::ConvertRbac(args) => crate::toolkit::convert_rbac(&args),
        Command::Kubeconfig(args) => {
            print!(
                "{}",
                crate::certs::kubeconfig(
                    &args.server,
                    &args.ca,
                    &args.client_cert,
                    &args.client_key
                )
            );
            0
        }
    }
}

/// Loads the schema and policy directory named by the flags.
pub fn load_snapshot(args: &PolicyArgs, cache_size: usize) -> Result<Snapshot, LoadError> {
    let schema = Arc::new(SchemaBundle::load(args.schema.as_deref())?);
    policy::load(&args.policies, &schema, 1, cache_size)
}

/// Prints a load error the way policy authors read it: each diagnostic with
/// its source line and a caret.
pub fn report_load_error(e: &LoadError) {
    match e {
        LoadError::Invalid(diags) => {
            for d in diags {
                eprintln!("{}", d.render());
            }
        }
        other => eprintln!("error: {other}"),
    }
}

fn validate(args: &ValidateArgs) -> i32 {
    let result = load_snapshot(&args.policy, 0);
    if args.format == "json" {
        let (valid, diagnostics, policies) = match &result {
            Ok(s) => (true, s.warnings.clone(), s.policies.len()),
            Err(LoadError::Invalid(d)) => (false, d.clone(), 0),
            Err(other) => (
                false,
                vec![policy::Diagnostic {
                    file: args.policy.policies.clone(),
                    line: 1,
                    column: 1,
                    message: other.to_string(),
                    source_line: String::new(),
                    severity: "error",
                }],
                0,
            ),
        };
        let out = serde_json::json!({
            "valid": valid,
            "policies": policies,
            "diagnostics": diagnostics,
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return if valid { 0 } else { 1 };
    }
    match result {
        Ok(s) => {
            for w in &s.warnings {
                eprintln!("{}", w.render());
            }
            let (permits, forbids) = s.effect_counts();
            println!(
                "{}: {} policies valid ({} permit, {} forbid)",
                args.policy.policies.display(),
                s.policies.len(),
                permits,
                forbids
            );
            0
        }
        Err(e) => {
            report_load_error(&e);
            1
        }
    }
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

fn check(args: &CheckArgs) -> i32 {
    let body = match read_input(&args.sar) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {}: {e}", args.sar.display());
            return 2;
        }
    };
    let review = match sar::parse_review(&body) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {}: {e}", args.sar.display());
            return 2;
        }
    };
    let snapshot = match load_snapshot(&args.policy, 0) {
        Ok(s) => s,
        Err(e) => {
            report_load_error(&e);
            return 1;
        }
    };
    let engine = Engine::new(snapshot, args.exempt.exemptions());
    let outcome = engine.decide(&review.request);
    if args.explain {
        explain(&engine.snapshot(), &review.request, &outcome.decision);
    }
    let body = sar::response_json(review.api_version, &outcome.decision.status);
    let pretty: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    println!(
        "{}",
        serde_json::to_string_pretty(&pretty).unwrap_or_default()
    );
    0
}

fn explain(snapshot: &Snapshot, req: &sar::AccessRequest, decision: &engine::Decision) {
    eprintln!("decision:  {}", decision.verdict.as_str());
    if decision.exempt {
        eprintln!("exempt:    {} is exempt; nothing was evaluated", req.user);
        return;
    }
    match engine::build(snapshot, req) {
        Ok(built) => {
            eprintln!("principal: {}", built.principal);
            eprintln!("action:    {}", built.action);
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
        Err(e) => eprintln!("entities:  {e}"),
    }
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
