#!/usr/bin/env bash
# Runs every test of libpvm: formatting and lints, the Rust tests (both conformance suites in run
# and single-step mode, the C guests, inner PVMs, ...), the `pvm test-vectors` CLI on both suites,
# the C ABI tests (C under valgrind, static and shared; Python ctypes; Go cgo) and the Node addon
# tests (vitest). Exits non-zero on the first failing suite and ends with a summary line.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${CARGO_TARGET_DIR:-target}
passed=0
suite() {
  local name=$1
  shift
  echo
  echo "=== $name: $*"
  "$@"
  passed=$((passed + 1))
}

suite "format" cargo fmt --all --check
suite "clippy" cargo clippy --all-targets -- -D warnings
suite "rust tests" cargo test --release
suite "build pvm" cargo build --release -p pvm-cli
suite "GP 0.8.0 vectors (CLI)" "$target/release/pvm" test-vectors tests/vectors/gp-0.8/programs
suite "GP 0.7.2 vectors (CLI)" "$target/release/pvm" test-vectors --spec 0.7.2 tests/vectors/gp-0.7/programs
suite "C ABI (C/valgrind, Python, Go)" bash crates/pvm-capi/tests/run.sh
suite "Node addon" npm test

echo
echo "suites: $passed passed, 0 failed"
