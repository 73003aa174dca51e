//! `convert-rbac`: Kubernetes RBAC roles and bindings to Cedar policies.

use std::path::PathBuf;

use clap::Args;

use crate::authoring::rbac;
use crate::policy::SchemaBundle;
use crate::store::yaml::{object_name_from, policy_yaml};

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
    /// `cedar`: Cedar text; `crd`: one cedar.k8s.aws/v1alpha1 Policy object
    /// per binding (YAML, for kubectl apply).
    #[arg(long, default_value = "cedar", value_parser = ["cedar", "crd"])]
    pub format: String,
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
    if args.format == "crd" {
        return write_objects(&conversion, args.out.as_deref());
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

/// `--format crd`: one Policy object per binding, named after its file
/// stem (made a valid object name; clashes get `-2`, `-3`...), on stdout as
/// one stream or as `<name>.yaml` files in `out`.
fn write_objects(conversion: &rbac::Conversion, out: Option<&std::path::Path>) -> i32 {
    let mut names = std::collections::BTreeSet::new();
    let mut docs = Vec::new();
    for b in &conversion.bindings {
        let stem = object_name_from(b.file_name.trim_end_matches(".cedar"));
        let mut name = stem.clone();
        let mut n = 1;
        while !names.insert(name.clone()) {
            n += 1;
            name = format!("{stem}-{n}");
        }
        let description = format!("{} -> {}", b.label, b.role);
        let yaml = policy_yaml(
            &name,
            &b.text,
            &[("cedar.k8s.aws/description", description.as_str())],
        );
        docs.push((name, yaml));
    }
    match out {
        None => {
            let stream: Vec<&str> = docs.iter().map(|(_, y)| y.as_str()).collect();
            print!("{}", stream.join("---\n"));
        }
        Some(dir) => {
            if let Err(e) = std::fs::create_dir_all(dir) {
                eprintln!("error: --out {}: {e}", dir.display());
                return 1;
            }
            for (name, yaml) in &docs {
                let path = dir.join(format!("{name}.yaml"));
                if let Err(e) = std::fs::write(&path, yaml) {
                    eprintln!("error: {}: {e}", path.display());
                    return 1;
                }
            }
            eprintln!("wrote {} Policy objects to {}", docs.len(), dir.display());
        }
    }
    0
}
