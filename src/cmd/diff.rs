//! `diff OLD_DIR NEW_DIR`: a proof of what a policy change allows and
//! denies, with one counterexample review per difference.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::{parse_duration, report_load_error, ExemptArgs};
use crate::analysis::{compare, DiffOptions, Report, SolverConfig};
use crate::policy::{self, SchemaBundle};

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The policy directory as it is (e.g. main's).
    pub old: PathBuf,
    /// The policy directory as it would be.
    pub new: PathBuf,
    /// Cedar schema file; the built-in `k8s` schema when not given.
    #[arg(long)]
    pub schema: Option<PathBuf>,
    #[command(flatten)]
    pub exempt: ExemptArgs,
    /// Also prove that no forbid of NEW can error (an erroring forbid denies).
    #[arg(long)]
    pub never_errors: bool,
    /// Longest one solver query may take (cvc5 `--tlimit-per`); a query
    /// that runs out is trouble (exit 2), never "no difference".
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub solver_timeout: Duration,
    /// `text` for people, `json` for tools.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
}

/// `diff`: 0 no difference, 1 differences, 2 trouble.
pub(super) fn run(args: &DiffArgs) -> i32 {
    let schema = match SchemaBundle::load(args.schema.as_deref()) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            report_load_error(&e);
            return 2;
        }
    };
    let load = |dir: &PathBuf| {
        policy::load(dir, &schema, 1).inspect_err(|e| {
            eprintln!("error: {}: the policy set does not load", dir.display());
            report_load_error(e);
        })
    };
    let (Ok(old), Ok(new)) = (load(&args.old), load(&args.new)) else {
        return 2;
    };
    let options = DiffOptions {
        exemptions: args.exempt.exemptions(),
        never_errors: args.never_errors,
        solver: SolverConfig::from_env(args.solver_timeout),
    };
    let report = match compare(old, new, &options) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    super::print_report(&report, &args.format, |r| print_text(r, args));
    report.exit_code()
}

fn print_text(report: &Report, args: &DiffArgs) {
    for (n, f) in report.findings.iter().enumerate() {
        let answers = match (&f.old, &f.new) {
            (Some(o), Some(n)) => format!(" ({} -> {})", o.decision, n.decision),
            _ => String::new(),
        };
        println!(
            "difference {}: {}{answers}\n  environment: {}",
            n + 1,
            f.change.describe(),
            f.environment
        );
        for (side, answer) in [("old", &f.old), ("new", &f.new)] {
            if let Some(a) = answer {
                let by = if a.policies.is_empty() {
                    String::new()
                } else {
                    format!(" by {}", a.policies.join(", "))
                };
                println!("  {side}: {}{by}", a.decision);
            }
        }
        if let Some(note) = &f.note {
            println!("  not confirmed: {note}");
            println!("  cedar counterexample:\n{}", indent(&f.counterexample, 4));
        }
        if let Some(review) = &f.review {
            println!(
                "  review (cedar-authorizer check --policies {} -):\n{}",
                args.new.display(),
                indent(&serde_json::to_string_pretty(review).unwrap_or_default(), 4)
            );
        }
        println!();
    }
    for e in &report.errors {
        println!(
            "forbid {} can error (and so deny)\n  environment: {}",
            e.policy, e.environment
        );
        match &e.review {
            Some(r) => println!(
                "  review:\n{}",
                indent(&serde_json::to_string_pretty(r).unwrap_or_default(), 4)
            ),
            None => println!("  cedar counterexample:\n{}", indent(&e.counterexample, 4)),
        }
        println!();
    }
    for w in &report.warnings {
        eprintln!("warning: policy {} ({}): {}", w.policy, w.file, w.message);
    }
    for t in &report.trouble {
        eprintln!("trouble: {t}");
    }
    let unconfirmed = report.findings.iter().filter(|f| !f.confirmed).count();
    println!(
        "{} difference{}{} in {} request environments ({} identical, {} unreachable), {} solver queries, {:.1}s",
        report.findings.len(),
        if report.findings.len() == 1 { "" } else { "s" },
        if unconfirmed > 0 {
            format!(" ({unconfirmed} not confirmed by the engine)")
        } else {
            String::new()
        },
        report.environments,
        report.identical,
        report.unreachable,
        report.queries,
        report.seconds
    );
    if !report.trouble.is_empty() {
        println!(
            "{} question{} without an answer: the comparison is incomplete",
            report.trouble.len(),
            if report.trouble.len() == 1 { "" } else { "s" }
        );
    }
}

fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines()
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
