#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, the example policy
# library (validate, fmt --check, its policy tests), then every Rust test.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
cargo build --locked --bin cedar-authorizer
bin=./target/debug/cedar-authorizer
"$bin" validate --policies policies
"$bin" fmt --check policies
"$bin" test --policies policies policies/tests
mkdir -p target
# Benches are compiled by clippy above and run with `cargo bench`; here only tests.
cargo test --locked --lib --bins --tests 2>&1 | tee target/test-output.txt
passed=$(grep -Eo '[0-9]+ passed' target/test-output.txt | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' target/test-output.txt | awk '{s+=$1} END {print s+0}')
echo "${passed} passed, ${failed} failed"
