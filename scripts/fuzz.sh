#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ (issue #12 item 5) for a short time each, over seed
# corpora made from the repository (fuzz/seeds.py), and fails on any finding (a crash, a panic,
# a failed property, a timeout of more than 10 s for one input, or more than 4 GB of memory).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]      defaults: 30 s, every target
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`); scripts/test-all.sh
# installs them when it can. Builds with AddressSanitizer (cargo-fuzz's default) into
# $CARGO_TARGET_DIR/fuzz-asan (default target/fuzz-asan). Findings are kept in fuzz/artifacts/TARGET/;
# reproduce one with `cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-…`. A long run:
#   cargo +nightly fuzz run --features polkavm TARGET -- -max_total_time=3600 -timeout=10
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(load_standard load_code run_step_clone jip7 trace_diff capi_calls polkavm_diff)
target_dir="${CARGO_TARGET_DIR:-$PWD/target}/fuzz-asan"
# Every target is built with the PolkaVM feature, so that one build serves them all.
fuzz=(cargo +nightly fuzz)
common=(--features polkavm --target-dir "$target_dir")

python3 fuzz/seeds.py
nice -n 15 "${fuzz[@]}" build "${common[@]}"
failed=()
for t in "${targets[@]}"; do
  echo "--- fuzz $t (${secs} s)"
  mkdir -p "fuzz/artifacts/$t"
  if ! nice -n 15 "${fuzz[@]}" run "${common[@]}" "$t" "fuzz/corpus/$t" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$t/" 2>&1 |
    { grep -vE '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)' || true; }; then
    failed+=("$t")
  fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz: findings in ${failed[*]} (see fuzz/artifacts/)"
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${secs} s each, no findings"
