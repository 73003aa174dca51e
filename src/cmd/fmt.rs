//! `fmt`: Cedar's formatter over `.cedar` files.

use std::path::PathBuf;

use clap::Args;

use crate::authoring::format::{self, FileOutcome};

#[derive(Debug, Args)]
pub struct FmtArgs {
    /// Change nothing; list the files that would change and exit 1 if any.
    #[arg(long)]
    pub check: bool,
    /// .cedar files, or directories searched recursively.
    #[arg(default_value = "./policies")]
    pub paths: Vec<PathBuf>,
}

/// `fmt`: formats in place, or with `--check` lists what would change.
pub(super) fn run(args: &FmtArgs) -> i32 {
    let files = match format::cedar_files(&args.paths) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let mut failed = false;
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
