//! `test`: policy test files (YAML cases: a request and the decision
//! expected) run against the policy set.

use std::path::PathBuf;

use clap::Args;

use super::{load_snapshot, report_load_error, ExemptArgs, PolicyArgs};
use crate::authoring::policytest;
use crate::engine::Engine;

#[derive(Debug, Args)]
pub struct TestArgs {
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub exempt: ExemptArgs,
    /// Also write the results as JUnit XML to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Test files, or directories searched recursively for *.yaml and *.yml.
    #[arg(required = true, value_name = "FILES_OR_DIRS")]
    pub tests: Vec<PathBuf>,
}

/// `test`: one line per failure, then `N passed, M failed`; 1 on any
/// failure, unreadable test file or invalid policy set.
pub(super) fn run(args: &TestArgs) -> i32 {
    let files = match policytest::discover(&args.tests) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let snapshot = match load_snapshot(&args.policy) {
        Ok(s) => s,
        Err(e) => {
            report_load_error(&e);
            eprintln!(
                "error: the policies in {} did not load; no test ran",
                args.policy.policies.display()
            );
            return 1;
        }
    };
    let engine = Engine::new(snapshot, args.exempt.exemptions(), 0);
    let results = policytest::run(&engine, &files);
    for line in results
        .iter()
        .filter_map(policytest::CaseResult::report_line)
    {
        println!("{line}");
    }
    if let Some(path) = &args.junit {
        if let Err(e) = std::fs::write(path, policytest::junit(&results)) {
            eprintln!("error: --junit {}: {e}", path.display());
            return 1;
        }
    }
    println!("{}", policytest::summary(&results));
    if results.iter().all(policytest::CaseResult::passed) {
        0
    } else {
        1
    }
}
