//! `validate`: parse and strict-validate the policy set, for people
//! (caret diagnostics) or tools (`--format json`).

use clap::Args;

use super::{load_snapshot, report_load_error, PolicyArgs};
use crate::policy::{self, LoadError};

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// `text` for people, `json` for editors and CI annotations.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
}

/// `validate`: 0 when the set loads, 1 with every diagnostic otherwise.
pub(super) fn run(args: &ValidateArgs) -> i32 {
    let result = load_snapshot(&args.policy);
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
