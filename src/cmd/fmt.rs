//! `fmt`: Cedar's formatter over `.cedar` files.

use std::path::PathBuf;

use clap::Args;

use crate::authoring::format::{self, FileOutcome};

#[derive(Debug, Args)]
pub struct FmtArgs {
    /// Change nothing; list the files that would change and exit 1 if any.
    #[arg(long)]
    pub check: bool,
    /// .cedar files, or directories searched recursively (for `.cedar`
    /// files only); Policy YAML files (`.yaml`, `.yml`) named here are
    /// checked too.
    #[arg(default_value = "./policies")]
    pub paths: Vec<PathBuf>,
}

/// Named YAML files are Policy objects; everything else goes to the walk.
fn is_yaml(path: &std::path::Path) -> bool {
    path.is_file() && path.extension().is_some_and(|e| e == "yaml" || e == "yml")
}

/// Checks the Cedar text of each Policy object in a YAML file; returns
/// whether any is unformatted or does not parse. YAML is never rewritten:
/// re-emitting it would lose its comments and layout, so the fix is made
/// where the text comes from (the `.cedar` source, or by hand).
fn check_policy_yaml(path: &std::path::Path, check: bool) -> bool {
    let objects = match std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|text| crate::store::yaml::parse(&text))
    {
        Ok(o) if o.is_empty() => {
            eprintln!(
                "error: {}: no cedar.k8s.aws/v1alpha1 Policy objects",
                path.display()
            );
            return true;
        }
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            return true;
        }
    };
    let mut failed = false;
    for o in objects {
        let at = format!("{}: Policy {}, spec.content", path.display(), o.name);
        let text = o.content.unwrap_or_default();
        match format::format_text(&text) {
            Ok(pretty) if pretty == text => {}
            Ok(_) if check => {
                println!("would reformat {at}");
                failed = true;
            }
            Ok(_) => {
                eprintln!("error: {at}: not formatted; fmt does not rewrite YAML (its comments and layout would be lost): format the text where it comes from");
                failed = true;
            }
            Err(e) => {
                eprintln!("error: {at}: cannot format: {e}");
                failed = true;
            }
        }
    }
    failed
}

/// `fmt`: formats in place, or with `--check` lists what would change.
pub(super) fn run(args: &FmtArgs) -> i32 {
    let (yaml, cedar): (Vec<PathBuf>, Vec<PathBuf>) =
        args.paths.iter().cloned().partition(|p| is_yaml(p));
    let mut failed = false;
    for path in &yaml {
        failed |= check_policy_yaml(path, args.check);
    }
    if cedar.is_empty() {
        return i32::from(failed);
    }
    let files = match format::cedar_files(&cedar) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    for file in files {
        match format::format_file(&file, args.check) {
            Ok(FileOutcome::Unchanged) => {}
            Ok(FileOutcome::Changed) if args.check => {
                println!("would reformat {}", file.display());
                failed = true;
            }
            Ok(FileOutcome::Changed) => println!("reformatted {}", file.display()),
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    i32::from(failed)
}
