#!/usr/bin/env bash
# Checks the committed PVM guest blobs against native builds of the same C sources.
#
# For every benchmark guest and each of its sizes ("small" and "default"):
#   * builds bench/guests/NAME.c natively with gcc (bench/native/main.c wrapper) and runs it,
#   * runs bench/programs/NAME.jam in PolkaVM (interpreter, GP 0.7 gas = instruction count;
#     interpreter, GP 0.8 gas; recompiler, GP 0.7 gas),
#   * requires all outputs to agree, and compares output/status/gas with bench/expected.json.
# Also runs every entry point of the combined blobs (large-O0/large-O2) at the small size, the
# large generated program bigcode.jam (default args), and the host-call example (examples/guests/hostcalls.jam, with the tool's demo host functions).
#
# Usage: bench/native/check.sh [--update] [--small-only]
#   --update      rewrite bench/expected.json from the measurements (outputs must still agree)
#   --small-only  skip the default sizes (each takes a few seconds in the interpreter)
# Needs: gcc, cargo (builds bench/tool), python3.
set -euo pipefail

NATIVE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH="$(dirname "$NATIVE")"
ROOT="$(dirname "$BENCH")"
TOOL="$BENCH/tool/target/release/pvm-bench-tool"
CC="${CC_NATIVE:-gcc}"

(cd "$BENCH/tool" && cargo build --release --locked --quiet)

mkdir -p "$NATIVE/build"
for g in blake2b sort sieve mandel interp bigcode; do
    exe="$NATIVE/build/$g"
    # Rebuild only when stale (bigcode.c takes gcc a while).
    if [[ ! -x "$exe" || "$BENCH/guests/$g.c" -nt "$exe" || "$BENCH/guests/pvm_guest.h" -nt "$exe" || "$NATIVE/main.c" -nt "$exe" ]]; then
        "$CC" -O2 -Wall -Wextra -DPVM_NATIVE -I"$BENCH/guests" "$NATIVE/main.c" "$BENCH/guests/$g.c" -o "$exe"
    fi
done

exec python3 - "$ROOT" "$TOOL" "$@" <<'PYEOF'
import json, os, subprocess, sys

root, tool = sys.argv[1], sys.argv[2]
update = "--update" in sys.argv[3:]
small_only = "--small-only" in sys.argv[3:]
bench = os.path.join(root, "bench")
expected_path = os.path.join(bench, "expected.json")

# Size parameter (u32 LE in args[0..4]) for the "small" runs; "default" runs pass empty args.
GUESTS = {
    "blake2b": {"small": 64, "default_n": 10000, "unit": "KiB of data"},
    "sort": {"small": 20000, "default_n": 1000000, "unit": "u64 elements"},
    "sieve": {"small": 100000, "default_n": 16777216, "unit": "sieve limit (bytes of array)"},
    "mandel": {"small": 32, "default_n": 300, "unit": "image width = height"},
    "interp": {"small": 5000, "default_n": 600000, "unit": "bytecode loop iterations"},
}

def le32(n):
    return n.to_bytes(4, "little").hex()

def run_tool(path, args_hex, *flags):
    cmd = [tool, "run", path, args_hex, *flags]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    fields = {}
    for line in out.splitlines():
        key, _, value = line.partition(": ")
        fields[key] = value
    return fields

def run_native(name, args_hex):
    exe = os.path.join(bench, "native", "build", name)
    return subprocess.run([exe, args_hex], check=True, capture_output=True, text=True).stdout.strip()

def measure(path, args_hex, backends=True, hosts=None, entry_pc=None):
    extra = ["--hosts", hosts] if hosts else []
    if entry_pc is not None:
        extra += ["--entry", str(entry_pc)]
    r7 = run_tool(path, args_hex, "--gas-model", "0.7", "--backend", "interpreter", *extra)
    r8 = run_tool(path, args_hex, "--gas-model", "0.8", "--backend", "interpreter", *extra)
    entry = {
        "args": args_hex,
        "status": r7["status"],
        "output": r7["output"],
        "instructions": int(r7["gas_used"]),
        "gas_0_7": int(r7["gas_used"]),
        "gas_0_8": int(r8["gas_used"]),
    }
    problems = []
    if r8["output"] != r7["output"] or r8["status"] != r7["status"]:
        problems.append("GP 0.8 run differs from GP 0.7 run")
    if backends:
        rc = run_tool(path, args_hex, "--gas-model", "0.7", "--backend", "compiler", *extra)
        if (rc["output"], rc["status"], rc["gas_used"]) != (r7["output"], r7["status"], r7["gas_used"]):
            problems.append("recompiler differs from interpreter")
    if hosts:
        entry["host_calls"] = int(r7["host_calls"])
    return entry, problems

old = {}
if os.path.exists(expected_path):
    with open(expected_path) as f:
        old = json.load(f)

new = {
    "about": "Expected results of bench/programs/*.jam and examples/guests/hostcalls.jam, measured "
             "with PolkaVM 0.37 (bench/tool) and cross-checked against native builds. See bench/README.md.",
    "programs": {},
    "combined": {},
    "examples": {},
}
failures = []
passed = 0

def compare(kind, name, size, entry):
    global passed
    want = old.get(kind, {}).get(name, {}).get(size)
    if update:
        return
    if want is None:
        failures.append(f"{kind}/{name}/{size}: missing from expected.json")
        return
    for key in ("args", "status", "output", "instructions", "gas_0_7", "gas_0_8", "host_calls"):
        if key in want and want[key] != entry.get(key):
            failures.append(f"{kind}/{name}/{size}: {key} = {entry.get(key)!r}, expected {want[key]!r}")
            return
    passed += 1

for name, spec in GUESTS.items():
    path = os.path.join(bench, "programs", name + ".jam")
    record = {
        "file": f"bench/programs/{name}.jam",
        "size_unit": spec["unit"],
        "small_n": spec["small"],
        "default_n": spec["default_n"],
    }
    for size in ("small", "default"):
        if size == "default" and small_only:
            if name in old.get("programs", {}) and "default" in old["programs"][name]:
                record["default"] = old["programs"][name]["default"]
            continue
        args_hex = le32(spec["small"]) if size == "small" else ""
        entry, problems = measure(path, args_hex)
        native = run_native(name, args_hex)
        if native != entry["output"]:
            problems.append(f"native output {native} != PVM output {entry['output']}")
        if entry["status"] != "halt":
            problems.append(f"status {entry['status']}")
        failures.extend(f"programs/{name}/{size}: {p}" for p in problems)
        record[size] = entry
        compare("programs", name, size, entry)
        print(f"{name:8} {size:8} {entry['status']:5} instructions={entry['instructions']:>11} "
              f"gas_0_8={entry['gas_0_8']:>11} output={entry['output'][:32]}...", flush=True)
    new["programs"][name] = record

for blob in ("large-O0", "large-O2"):
    path = os.path.join(bench, "programs", blob + ".jam")
    record = {"file": f"bench/programs/{blob}.jam"}
    for i, name in enumerate(GUESTS):
        pc = 5 * i
        entry, problems = measure(path, le32(GUESTS[name]["small"]), entry_pc=pc)
        entry = {"entry_pc": pc, **entry}
        failures.extend(f"combined/{blob}/{name}: {p}" for p in problems)
        want_output = new["programs"][name]["small"]["output"]
        if entry["output"] != want_output:
            failures.append(f"combined/{blob}/{name}: output {entry['output']} != {want_output}")
        record[name] = entry
        compare("combined", blob, name, entry)
        print(f"{blob:8} {name:8} pc={pc:<3} {entry['status']:5} instructions={entry['instructions']:>11}", flush=True)
    new["combined"][blob] = record

path = os.path.join(bench, "programs", "bigcode.jam")
record = {"file": "bench/programs/bigcode.jam"}
entry, problems = measure(path, "")
native = run_native("bigcode", "")
if native != entry["output"]:
    problems.append(f"native output {native} != PVM output {entry['output']}")
failures.extend(f"combined/bigcode: {p}" for p in problems)
record["default"] = entry
compare("combined", "bigcode", "default", entry)
new["combined"]["bigcode"] = record
print(f"bigcode  default  {entry['status']:5} instructions={entry['instructions']:>11}", flush=True)

path = os.path.join(root, "examples", "guests", "hostcalls.jam")
entry, problems = measure(path, "", hosts="demo")
want_text = "numbers: 100, 200, 300; sum = 600"
if bytes.fromhex(entry["output"]).decode("ascii", "replace") != want_text:
    problems.append(f"output is not {want_text!r}")
failures.extend(f"examples/hostcalls: {p}" for p in problems)
new["examples"]["hostcalls"] = {
    "file": "examples/guests/hostcalls.jam",
    "hosts": "demo: ecalli 100 log(r7=ptr, r8=len) prints; ecalli 1001 get_number returns 100, 200, 300, ... in r7",
    "default": entry,
}
compare("examples", "hostcalls", "default", entry)
print(f"hostcalls default  {entry['status']:5} instructions={entry['instructions']:>11} host_calls={entry['host_calls']}")

if update:
    if failures:
        print("\n".join(["NOT updating expected.json:"] + failures), file=sys.stderr)
        sys.exit(1)
    with open(expected_path, "w") as f:
        json.dump(new, f, indent=2)
        f.write("\n")
    print(f"wrote {expected_path}")
    sys.exit(0)

for failure in failures:
    print("FAIL:", failure, file=sys.stderr)
print(f"{passed} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
PYEOF
