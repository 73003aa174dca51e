//! The policy author's commands: `test`, `fmt` and `convert-rbac`. Each
//! returns the process exit code the interface page promises; the work is
//! done by [`crate::policytest`], [`crate::format`] and [`crate::rbac`].

use crate::cli::{ConvertRbacArgs, FmtArgs, TestArgs};
use crate::commands::{load_snapshot, report_load_error};
use crate::engine::Engine;
use crate::format::{self, FileOutcome};
use crate::policy::SchemaBundle;
use crate::{policytest, rbac};

/// `test`: one line per failure, then `N passed, M failed`; 1 on any
/// failure, unreadable test file or invalid policy set.
pub fn test(args: &TestArgs) -> i32 {
    let files = match policytest::discover(&args.tests) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let snapshot = match load_snapshot(&args.policy, 0) {
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
    let engine = Engine::new(snapshot, args.exempt.exemptions());
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

/// `fmt`: formats in place, or with `--check` lists what would change.
pub fn fmt(args: &FmtArgs) -> i32 {
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

/// `convert-rbac`: policies on stdout or one file per binding; whatever
/// does not convert exactly is reported on stderr. 1 only when an input
/// cannot be read or an output cannot be written.
pub fn convert_rbac(args: &ConvertRbacArgs) -> i32 {
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
