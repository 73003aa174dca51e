#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, the example
# policy library, then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
cargo build --locked --bin cedar-authorizer
./target/debug/cedar-authorizer validate --policies policies
cargo test --locked --all-targets 2>&1 | tee target/test-output.txt
# One closing line for the whole run.
passed=$(grep -Eo '[0-9]+ passed' target/test-output.txt | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' target/test-output.txt | awk '{s+=$1} END {print s+0}')
echo "${passed} passed, ${failed} failed"
