//! The `cedar-authorizer` binary: parse arguments, run, exit with the code
//! the command chose.

use clap::Parser;

fn main() {
    let cli = cedar_authorizer::cli::Cli::parse();
    std::process::exit(cedar_authorizer::commands::run(cli));
}
