#!/usr/bin/env bash
# Tests that the test scripts skip what a machine lacks instead of failing: runs
# crates/pvm-capi/tests/run.sh and scripts/test-all.sh (its C ABI suite) with a PATH on which
# `go` and `valgrind` do not exist (a directory of symlinks to every other command), and checks
#   - without CI: exit 0, a `SKIPPED: … (go is not installed)` / `(valgrind …)` line for each of
#     their checks, and the counts in the summaries;
#   - with CI=true: a non-zero exit (nothing may be skipped in CI).
# Needs the C library built (run after the C ABI tests; the cargo steps are skipped here).
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/pvm-test-skips.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

mkdir "$WORK/bin"
IFS=: read -ra dirs <<<"$PATH"
for d in "${dirs[@]}"; do
  [[ -d "$d" ]] || continue
  for f in "$d"/*; do
    name="${f##*/}"
    [[ "$name" == go || "$name" == gofmt || "$name" == valgrind* ]] && continue
    [[ -x "$f" && ! -e "$WORK/bin/$name" ]] && ln -s "$f" "$WORK/bin/$name"
  done
done
fake_path="$WORK/bin"
if PATH="$fake_path" command -v go >/dev/null || PATH="$fake_path" command -v valgrind >/dev/null; then
  echo "the fake PATH still has go or valgrind"
  exit 1
fi

failures=0
expect() { # expect DESCRIPTION COMMAND...: counts a failed expectation
  if "${@:2}"; then echo "ok   $1"; else echo "FAIL $1"; failures=$((failures + 1)); fi
}

# The C ABI script alone (its cargo steps skipped: the library is already built).
unset CI
PATH="$fake_path" PVM_SKIP=cargo bash crates/pvm-capi/tests/run.sh >"$WORK/capi.log" 2>&1
status=$?
expect "run.sh without go/valgrind exits 0" test "$status" -eq 0
expect "run.sh: 2 go checks skipped" test "$(grep -c '^SKIPPED: Go cgo .*(go is not installed)$' "$WORK/capi.log")" -eq 2
expect "run.sh: 2 valgrind checks skipped" test "$(grep -c '^SKIPPED: C valgrind .*(valgrind is not installed)$' "$WORK/capi.log")" -eq 2
expect "run.sh: summary counts them (0 failed)" grep -qE '^[0-9]+ passed, 0 failed, [4-9] skipped$' "$WORK/capi.log"
expect "run.sh: the other checks ran" grep -q '^ok   C run (libpvm.so)' "$WORK/capi.log"

PATH="$fake_path" CI=true PVM_SKIP=cargo bash crates/pvm-capi/tests/run.sh >"$WORK/capi-ci.log" 2>&1
status=$?
expect "run.sh with CI=true fails" test "$status" -ne 0
expect "run.sh with CI=true: no SKIPPED for missing tools" test "$(grep -c 'is not installed)$' "$WORK/capi-ci.log")" -eq 0
expect "run.sh with CI=true: FAIL lines name the tool" grep -q '^FAIL Go cgo .*go is not installed; CI=true' "$WORK/capi-ci.log"

# test-all.sh, C ABI suite only, no installing: the SKIPPED lines reach its summary.
PATH="$fake_path" PVM_NO_INSTALL=1 PVM_SUITES='^C ABI' PVM_SKIP=cargo ./scripts/test-all.sh >"$WORK/all.log" 2>&1
status=$?
expect "test-all.sh without go/valgrind exits 0" test "$status" -eq 0
expect "test-all.sh: summary has the skips" grep -qE '^suites: 1 passed, 0 failed, [4-9] skipped$' "$WORK/all.log"
expect "test-all.sh: lists them" test "$(grep -c '^SKIPPED: C ABI .*: Go cgo .*(go is not installed)$' "$WORK/all.log")" -eq 2
PATH="$fake_path" CI=true PVM_NO_INSTALL=1 PVM_SUITES='^C ABI' PVM_SKIP=cargo ./scripts/test-all.sh >"$WORK/all-ci.log" 2>&1
status=$?
expect "test-all.sh with CI=true fails" test "$status" -ne 0
expect "test-all.sh with CI=true: summary counts the failure" grep -qE '^suites: 0 passed, 1 failed, [0-9]+ skipped$' "$WORK/all-ci.log"

if [[ $failures -gt 0 ]]; then
  for f in capi capi-ci all all-ci; do echo "--- $f.log"; tail -n 30 "$WORK/$f.log"; done
  echo "$failures failed"
  exit 1
fi
echo "all passed"
