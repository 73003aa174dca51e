//! The command line: clap definitions shared by the subcommands, and
//! dispatch. One file per subcommand; each returns the process exit code
//! that docs/interface promises. Nothing below `cmd` sees clap's types.

mod certs;
mod check;
mod convert_rbac;
mod diff;
mod fmt;
mod replay;
mod schema;
pub mod serve;
mod test;
mod validate;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::engine::Exemptions;
use crate::policy::{self, LoadError, SchemaBundle, Snapshot};

/// A Kubernetes authorization webhook that decides requests with Cedar policies.
#[derive(Debug, Parser)]
#[command(name = "cedar-authorizer", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the webhook.
    Serve(Box<serve::ServeArgs>),
    /// Parse and strict-validate the policy set.
    Validate(validate::ValidateArgs),
    /// Evaluate one SubjectAccessReview offline, exactly as the server would.
    Check(check::CheckArgs),
    /// Print the built-in Cedar schema; `schema generate` makes one from a
    /// cluster's OpenAPI.
    Schema(schema::SchemaArgs),
    /// Write a CA, a serving certificate and an apiserver client certificate.
    Certs(certs::CertsArgs),
    /// Print the webhook kubeconfig the apiserver reads.
    Kubeconfig(certs::KubeconfigArgs),
    /// Run policy test files (YAML cases: a request and the decision expected).
    Test(test::TestArgs),
    /// Format .cedar files with Cedar's formatter.
    Fmt(fmt::FmtArgs),
    /// Convert Kubernetes RBAC roles and bindings to Cedar policies.
    ConvertRbac(convert_rbac::ConvertRbacArgs),
    /// Prove what changes between two policy sets (cedar-policy-symcc + cvc5).
    Diff(diff::DiffArgs),
    /// Decide recorded requests (JSON decision logs) again under a policy set.
    Replay(replay::ReplayArgs),
}

/// Runs a parsed command line; returns the exit code.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Serve(args) => serve::main(*args),
        Command::Validate(args) => validate::run(&args),
        Command::Check(args) => check::run(&args),
        Command::Schema(args) => schema::run(&args),
        Command::Certs(args) => certs::certs(&args),
        Command::Kubeconfig(args) => certs::kubeconfig(&args),
        Command::Test(args) => test::run(&args),
        Command::Fmt(args) => fmt::run(&args),
        Command::ConvertRbac(args) => convert_rbac::run(&args),
        Command::Diff(args) => diff::run(&args),
        Command::Replay(args) => replay::run(&args),
    }
}

/// Where the policies and the schema come from.
#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    /// Policy directory, read recursively (`*.cedar`, sorted).
    #[arg(long, default_value = "./policies")]
    pub policies: PathBuf,
    /// Cedar schema file; the built-in `k8s` schema when not given.
    #[arg(long)]
    pub schema: Option<PathBuf>,
    /// YAML files of cedar.k8s.aws Policy objects (multi-document or List;
    /// other kinds skipped), merged with the directory as `serve
    /// --policy-source both` merges the cluster's; the directory may then
    /// be missing or empty. Not for `serve`.
    #[arg(long = "policy-objects", value_name = "FILE")]
    pub policy_objects: Vec<PathBuf>,
}

/// Which principals get no opinion without evaluation.
#[derive(Debug, Clone, Args)]
pub struct ExemptArgs {
    /// Also exempt this username (repeatable).
    #[arg(long = "exempt-user", value_name = "NAME")]
    pub exempt_users: Vec<String>,
    /// Do not exempt `system:` control-plane users (everything is evaluated).
    #[arg(long)]
    pub no_default_exemptions: bool,
}

impl ExemptArgs {
    /// The exemption rules these flags describe.
    pub fn exemptions(&self) -> Exemptions {
        Exemptions {
            control_plane: !self.no_default_exemptions,
            users: self.exempt_users.clone(),
        }
    }
}

/// Parses `500ms`, `5s`, `2m`, `1h` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 500ms, 5s, 2m"))?;
    let seconds = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("invalid duration unit {unit:?}: use ms, s, m or h")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

/// Loads the schema and policy directory named by the flags.
pub(crate) fn load_snapshot(args: &PolicyArgs) -> Result<Snapshot, LoadError> {
    let schema = Arc::new(SchemaBundle::load(args.schema.as_deref())?);
    if args.policy_objects.is_empty() {
        return policy::load(&args.policies, &schema, 1);
    }
    let mut files = match policy::read_dir(&args.policies) {
        Ok(files) => files,
        Err(LoadError::Empty(_)) => Vec::new(),
        Err(LoadError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Vec::new()
        }
        Err(e) => return Err(e),
    };
    files.extend(crate::store::yaml::read_files(&args.policy_objects)?);
    Snapshot::build(&files, &schema, 1)
}

/// Prints a load error the way policy authors read it: each diagnostic with
/// its source line and a caret.
pub(crate) fn report_load_error(e: &LoadError) {
    match e {
        LoadError::Invalid(diags) => {
            for d in diags {
                eprintln!("{}", d.render());
            }
        }
        other => eprintln!("error: {other}"),
    }
}

/// Prints a report as pretty JSON with `--format json`, otherwise as text
/// for people.
pub(crate) fn print_report<R: serde::Serialize>(report: &R, format: &str, text: impl FnOnce(&R)) {
    if format == "json" {
        println!(
            "{}",
            serde_json::to_string_pretty(report).unwrap_or_default()
        );
    } else {
        text(report);
    }
}
