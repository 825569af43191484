#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/ (not committed: made
from the repository's vectors, guests, traces and logs each time). Usage: fuzz/seeds.py [DIR]."""
import glob, hashlib, json, os, struct, sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "fuzz", "corpus")
counts = {}

def put(target, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
    counts[target] = counts.get(target, 0) + 1

def rel(*p):
    return os.path.join(root, *p)

# Code blobs of the conformance vectors (both specs): load_code, run_step_clone, capi_calls.
for spec, pattern in ((0, "tests/vectors/gp-0.8/programs/*.json"), (1, "tests/vectors/gp-0.7/programs/*.json")):
    for path in sorted(glob.glob(rel(pattern))):
        try:
            v = json.load(open(path))
        except Exception:
            continue
        prog = v.get("program")
        if not isinstance(prog, list):
            continue
        blob = bytes(prog)
        gas = min(int(v.get("initial-gas", 10000)), 0xFFFF)
        put("load_code", bytes([spec]) + blob)
        put("run_step_clone", bytes([spec]) + struct.pack("<HH", gas, 3) + blob)
        if len(blob) < 250:
            # create_from_blob(spec, gas, blob) as capi_calls encodes it, then execute, step,
            # hash, output, jip7 recording.
            n = (len(blob) + 3) // 4
            padded = blob + bytes(4 * n - len(blob))
            seq = bytes([0, 0, spec]) + struct.pack("<Q", 1000) + bytes([n]) + padded
            seq += bytes([23, 0, 0, 2, 0, 0, 0, 0, 0, 0, 4, 0, 16, 0, 17, 0, 23, 0, 1])
            put("capi_calls", seq)

# Standard programs: load_standard (flags: bit 0 = GP 0.7.2).
for path in sorted(glob.glob(rel("examples/guests/*.jam")) + glob.glob(rel("bench/programs/*.jam"))):
    data = open(path, "rb").read()
    if len(data) > 1 << 16:
        continue
    put("load_standard", bytes([1 if "gp072" in path else 0]) + data)

# JIP-7 logs: the five smallest anan-as traces and the test fixtures.
logs = sorted(glob.glob(rel("tests/traces/anan-as/*.log")), key=os.path.getsize)[:5]
logs += glob.glob(rel("__test__/fixtures/*.log")) + glob.glob(rel("tests/**/*.jip7"), recursive=True)
for path in logs:
    data = open(path, "rb").read()
    put("jip7", bytes([0]) + data[: 1 << 16])
    put("jip7", bytes([3]) + data[: 1 << 12])

# Traces: pairs of hand-written lines in every spelling trace-diff accepts.
lines = [
    b'1: PC 0 ADD_IMM_64 g=9999 pvmHash=0x00 reg="[0 1 2 3 4 5 6 7 8 9 10 11 12]"',
    b"2: PC 3 TRAP g=9998 reg=[0 1 2 3 4 5 6 7 8 9 10 11 12]",
    b"ECALLI 5 g=100 pvmHash=0xabcd",
    b"EXIT halt pc=3 g=9998 pvmHash=0x00 steps=2",
    b"[INFO] 3: PC 7 LOAD_IMM g=1 reg=[1]",
]
a = b"\n".join(lines)
put("trace_diff", a + b"\0" + a)
put("trace_diff", a + b"\0" + a.replace(b"9998", b"9997"))
put("trace_diff", lines[0] + b"\0" + lines[1])

# The PolkaVM differential target reads its input as instruction choices: any bytes will do.
for n in (16, 64, 256):
    put("polkavm_diff", hashlib.sha256(str(n).encode()).digest() * (n // 32 + 1))

print("seeds: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + f" (in {out})")
