#!/usr/bin/env bash
# Runs every test of libpvm: formatting and lints, the Rust tests (both conformance suites in run
# and single-step mode, the C guests, inner PVMs, ...), the `pvm test-vectors` CLI on both suites,
# the C ABI tests (C under valgrind, static and shared; Python ctypes; Go cgo) and the Node addon
# tests (vitest), the npm packages built and installed from their tarballs, the wasm build (in
# Node and headless Chromium) and other Node versions. Runs every suite, prints a summary line
#     suites: N passed, F failed, K skipped
# and exits non-zero if a suite failed.
#
# Needs Rust (cargo), Node/npm and gcc. Everything else is optional on a developer machine:
# - missing tools the C ABI tests use (valgrind, python3, go, pkg-config) and the rustfmt/clippy
#   components are installed when that is possible (apt-get as root; rustup), unless
#   PVM_NO_INSTALL=1;
# - what is still missing is skipped, loudly: a `SKIPPED: <suite> (<reason>)` line, counted in
#   the summary (the C ABI script skips its Go, valgrind and Python parts individually the same
#   way, and its SKIPPED lines are counted here too);
# - under CI=true nothing may be skipped: a missing tool is a failure.
# `scripts/test-skips.sh` checks this skipping itself (with go and valgrind hidden from PATH).
# `npm ci` runs first if node_modules is missing. PVM_SUITES=REGEX runs only the suites whose
# name matches (e.g. PVM_SUITES='C ABI|Node' for a quick run; the others are not counted).
set -uo pipefail
cd "$(dirname "$0")/.."

target=${CARGO_TARGET_DIR:-target}
ci=false
[[ "${CI:-}" == "true" || "${CI:-}" == "1" ]] && ci=true
passed=0
failed=0
failed_names=()
skipped=()
log_dir="$(mktemp -d "${TMPDIR:-/tmp}/pvm-test-all.XXXXXX")"
trap 'rm -rf "$log_dir"' EXIT

# suite NAME COMMAND...: runs COMMAND (output shown), counts it, and collects the SKIPPED lines
# it printed (a suite that skipped parts of itself still passes).
selected() { [[ -z "${PVM_SUITES:-}" ]] || grep -qE -- "$PVM_SUITES" <<<"$1"; }

suite() {
  local name=$1
  shift
  selected "$name" || return 0
  echo
  echo "=== $name: $*"
  local log="$log_dir/$passed.$failed.log"
  if "$@" 2>&1 | tee "$log"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failed_names+=("$name")
    echo "FAILED: $name"
  fi
  while IFS= read -r line; do
    skipped+=("$name: ${line#SKIPPED: }")
  done < <(grep -E '^SKIPPED: ' "$log" || true)
}

# skip NAME REASON: a suite that cannot run here (a failure under CI=true).
skip() {
  selected "$1" || return 0
  echo
  if $ci; then
    echo "FAILED: $1 ($2; CI=true: nothing may be skipped)"
    failed=$((failed + 1))
    failed_names+=("$1")
  else
    echo "SKIPPED: $1 ($2)"
    skipped+=("$1 ($2)")
  fi
}

have() { command -v "$1" >/dev/null 2>&1; }

# install PACKAGE...: apt-get install as root when apt is available (and PVM_NO_INSTALL unset).
apt_updated=false
install() {
  [[ -z "${PVM_NO_INSTALL:-}" ]] || return 1
  [[ "$(id -u)" == 0 ]] && have apt-get || return 1
  echo "installing $* (apt-get)"
  if ! $apt_updated; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || return 1
    apt_updated=true
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1
}

# ensure TOOL PACKAGE: TOOL on PATH, installed from PACKAGE if that is possible.
ensure() { have "$1" || install "$2" || true; }

missing_base=()
for tool in cargo node npm gcc; do have "$tool" || missing_base+=("$tool"); done
if [[ ${#missing_base[@]} -gt 0 ]]; then
  echo "test-all.sh needs Rust (cargo), Node (node, npm) and gcc; missing: ${missing_base[*]}" >&2
  exit 1
fi

# Optional tools: install what is possible, then let the suites skip what is still missing.
for pair in valgrind:valgrind python3:python3 go:golang-go pkg-config:pkg-config; do
  ensure "${pair%%:*}" "${pair#*:}"
done
rust_component() {
  cargo "$1" --version >/dev/null 2>&1 && return 0
  [[ -z "${PVM_NO_INSTALL:-}" ]] && have rustup && rustup component add "$2" >/dev/null 2>&1
  cargo "$1" --version >/dev/null 2>&1
}

if rust_component fmt rustfmt; then
  suite "format" cargo fmt --all --check
else
  skip "format" "rustfmt is not installed (rustup component add rustfmt)"
fi
if rust_component clippy clippy; then
  suite "clippy" cargo clippy --all-targets -- -D warnings
else
  skip "clippy" "clippy is not installed (rustup component add clippy)"
fi
suite "rust tests" cargo test --release
suite "build pvm" cargo build --release -p pvm-cli
suite "GP 0.8.0 vectors (CLI)" "$target/release/pvm" test-vectors tests/vectors/gp-0.8/programs
suite "GP 0.7.2 vectors (CLI)" "$target/release/pvm" test-vectors --spec 0.7.2 tests/vectors/gp-0.7/programs
suite "C ABI (C/valgrind, Python, Go)" bash crates/pvm-capi/tests/run.sh
suite "test scripts skip missing tools" bash scripts/test-skips.sh
if [[ ! -d node_modules ]]; then
  suite "npm ci" npm ci --no-audit --no-fund
fi
suite "Node addon" npm test
# The packages as a user installs them: the Linux x64 (glibc, musl), arm64 and wasm packages built
# here (cargo-zigbuild + zig from PyPI), npm-packed, installed into an empty project and used by a
# TypeScript consumer (arm64 under qemu; musl loaded by musl's dynamic loader), Node 18-26.
suite "npm packages (built, packed, installed)" bash tests/packaging/run.sh
# The wasm build: the vitest suite on it, the browser example in headless Chromium, speed vs anan-as.
suite "wasm (Node, headless Chromium)" bash tests/wasm/run.sh
# The vitest suite on Node 22 and 24 from npm (this machine's Node is 20).
suite "Node versions" bash tests/node-versions/run.sh

# ---- fuzz (issue #12 item 5): a short run of every cargo-fuzz target (scripts/fuzz.sh) ----
# Needs the nightly toolchain and cargo-fuzz, installed (rustup, cargo install) when missing
# unless PVM_NO_INSTALL=1. PVM_FUZZ_SECONDS: seconds per target (default 30; 7 targets).
fuzz_missing() {
  if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    if [[ -n "${PVM_NO_INSTALL:-}" ]] || ! have rustup ||
      ! rustup toolchain install nightly --profile minimal >/dev/null 2>&1; then
      echo "the nightly toolchain is not installed (rustup toolchain install nightly)"
      return
    fi
  fi
  if ! cargo fuzz --version >/dev/null 2>&1; then
    if [[ -z "${PVM_NO_INSTALL:-}" ]]; then
      echo "installing cargo-fuzz (cargo install)" >&2
      cargo install cargo-fuzz --locked >/dev/null 2>&1
    fi
    if ! cargo fuzz --version >/dev/null 2>&1; then
      echo "cargo-fuzz is not installed (cargo install cargo-fuzz)"
      return
    fi
  fi
  have python3 || echo "python3 is missing (fuzz/seeds.py)"
}
if selected "fuzz"; then
  fuzz_reason=$(fuzz_missing)
  if [[ -z "$fuzz_reason" ]]; then
    suite "fuzz" bash scripts/fuzz.sh "${PVM_FUZZ_SECONDS:-30}"
  else
    skip "fuzz" "$fuzz_reason"
  fi
fi

echo
for s in ${skipped[@]+"${skipped[@]}"}; do echo "SKIPPED: $s"; done
[[ $failed -gt 0 ]] && echo "failed: ${failed_names[*]}"
echo "suites: $passed passed, $failed failed, ${#skipped[@]} skipped"
[[ $failed -eq 0 ]]
