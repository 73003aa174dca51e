//! `convert-rbac`: Kubernetes RBAC roles and bindings to Cedar policies.

use std::path::PathBuf;

use clap::Args;

use crate::authoring::rbac;
use crate::policy::SchemaBundle;

#[derive(Debug, Args)]
pub struct ConvertRbacArgs {
    /// Write one .cedar file per binding into this directory instead of
    /// printing everything on stdout.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Cedar schema whose actions the policies may name; the built-in one
    /// when not given.
    #[arg(long)]
    pub schema: Option<PathBuf>,
    /// RBAC YAML files (multi-document or List); `-` for stdin.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// `convert-rbac`: policies on stdout or one file per binding; whatever
/// does not convert exactly is reported on stderr. 1 only when an input
/// cannot be read or an output cannot be written.
pub(super) fn run(args: &ConvertRbacArgs) -> i32 {
    let schema = match SchemaBundle::load(args.schema.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let mut objects = rbac::Objects::default();
    let mut problems = Vec::new();
    for file in &args.files {
        if let Err(e) = objects.read_file(file, &mut problems) {
            eprintln!("error: {e}");
            return 1;
        }
    }
    let conversion = rbac::convert(&objects, &rbac::declared_verbs(&schema));
    for p in problems.iter().chain(&conversion.problems) {
        eprintln!("warning: {p}");
    }
    match &args.out {
        None => print!("{}", conversion.text()),
        Some(dir) => {
            if let Err(e) = std::fs::create_dir_all(dir) {
                eprintln!("error: --out {}: {e}", dir.display());
                return 1;
            }
            for b in &conversion.bindings {
                let path = dir.join(&b.file_name);
                let text = format!("// {} -> {}\n{}", b.label, b.role, b.text);
                if let Err(e) = std::fs::write(&path, text) {
                    eprintln!("error: {}: {e}", path.display());
                    return 1;
                }
            }
            eprintln!(
                "wrote {} files to {}",
                conversion.bindings.len(),
                dir.display()
            );
        }
    }
    0
}
