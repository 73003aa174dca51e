//! `replay LOG...`: decide recorded requests again under a policy set and
//! report what changes.

use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::PathBuf;

use clap::Args;

use super::{load_snapshot, report_load_error, ExemptArgs, PolicyArgs};
use crate::engine::{CacheLimits, Engine};
use crate::rollout::{ReplayReport, Replayer};

/// Longest log line read; longer ones (no decision record is) are skipped.
const MAX_LINE_BYTES: u64 = 1024 * 1024;
/// Decisions cached per engine while replaying: logs repeat requests.
const REPLAY_CACHE_ENTRIES: usize = 16 * 1024;

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The candidate policy set (and the schema).
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Compare with this policy set's answers instead of the recorded ones.
    #[arg(long, value_name = "DIR")]
    pub baseline: Option<PathBuf>,
    #[command(flatten)]
    pub exempt: ExemptArgs,
    /// Exit 1 when any answer changes (a CI gate).
    #[arg(long)]
    pub fail_on_change: bool,
    /// `text` for people, `json` for tools.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    /// Example requests shown per kind of change.
    #[arg(long, default_value_t = 3)]
    pub examples: usize,
    /// Decision logs (`--log-format json` lines), `-` for stdin.
    #[arg(required = true)]
    pub logs: Vec<PathBuf>,
}

fn engine(policy: &PolicyArgs, args: &ReplayArgs) -> Option<Engine> {
    match load_snapshot(policy) {
        Ok(s) => Some(Engine::new(
            s,
            args.exempt.exemptions(),
            CacheLimits::entries(REPLAY_CACHE_ENTRIES),
        )),
        Err(e) => {
            eprintln!(
                "error: {}: the policy set does not load",
                policy.policies.display()
            );
            report_load_error(&e);
            None
        }
    }
}

/// Feeds every line of `input` to the replayer, one bounded line at a time.
fn feed(replayer: &mut Replayer, input: impl Read, progress: bool) -> std::io::Result<()> {
    let mut reader = BufReader::with_capacity(256 * 1024, input);
    let mut buf = Vec::with_capacity(64 * 1024);
    loop {
        buf.clear();
        let n = reader
            .by_ref()
            .take(MAX_LINE_BYTES)
            .read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        if buf.last() != Some(&b'\n') && n as u64 == MAX_LINE_BYTES {
            // Skip the rest of an overlong line.
            let mut rest = Vec::new();
            reader.read_until(b'\n', &mut rest)?;
            replayer.feed("-");
            continue;
        }
        replayer.feed(&String::from_utf8_lossy(&buf));
        if progress && replayer.records().is_multiple_of(100_000) && replayer.records() > 0 {
            eprint!("\rreplayed {} records", replayer.records());
        }
    }
}

/// `replay`: 0, or 1 with `--fail-on-change` when an answer changed; 2
/// when the policies do not load or a log cannot be read.
pub(super) fn run(args: &ReplayArgs) -> i32 {
    let Some(candidate) = engine(&args.policy, args) else {
        return 2;
    };
    let baseline = match &args.baseline {
        Some(dir) => {
            let policy = PolicyArgs {
                policies: dir.clone(),
                schema: args.policy.schema.clone(),
                policy_objects: Vec::new(),
            };
            match engine(&policy, args) {
                Some(e) => Some(e),
                None => return 2,
            }
        }
        None => None,
    };
    let mut replayer = Replayer::new(candidate, baseline, args.examples);
    let progress = std::io::stderr().is_terminal();
    for log in &args.logs {
        let result = if log.as_os_str() == "-" {
            feed(&mut replayer, std::io::stdin().lock(), progress)
        } else {
            std::fs::File::open(log).and_then(|f| feed(&mut replayer, f, progress))
        };
        if let Err(e) = result {
            eprintln!("error: {}: {e}", log.display());
            return 2;
        }
    }
    if progress && replayer.records() >= 100_000 {
        eprintln!();
    }
    let report = replayer.finish();
    super::print_report(&report, &args.format, |r| print_text(r, args));
    if args.fail_on_change && report.changed > 0 {
        1
    } else {
        0
    }
}

fn print_text(r: &ReplayReport, args: &ReplayArgs) {
    let against = if args.baseline.is_some() {
        "the baseline's answers"
    } else {
        "the recorded answers"
    };
    println!(
        "{} records: {} replayed against {against}, {} unchanged, {} changed",
        r.records, r.replayed, r.unchanged, r.changed
    );
    for c in &r.changes {
        println!("  {} -> {}: {}", c.from, c.to, c.count);
        let mut by: Vec<(&String, &u64)> = c.policies.iter().collect();
        by.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (p, n) in by.iter().take(10) {
            println!("    policy {p}: {n}");
        }
        if by.len() > 10 {
            println!("    ... and {} more policies", by.len() - 10);
        }
        for e in &c.examples {
            println!("    e.g. {}", serde_json::to_string(e).unwrap_or_default());
        }
    }
    if r.not_replayable_exactly > 0 {
        let keys: Vec<&str> = r.unrecorded_keys_read.iter().map(String::as_str).collect();
        println!(
            "{} records not replayable exactly: a policy reads extra keys whose values are not recorded ({})",
            r.not_replayable_exactly,
            keys.join(", ")
        );
    }
    if r.not_recorded > 0 {
        println!(
            "{} decision records carry no replayable request (too large, or an older record version)",
            r.not_recorded
        );
    }
}
