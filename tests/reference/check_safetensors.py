"""Live cross-check of genre's safetensors reader and writer against the
HuggingFace `safetensors` library: files written by safetensors.numpy.save_file
must read back in `genre inspect` with the same tensors, values and metadata;
`genre inspect --rewrite` must reproduce Python's bytes exactly; files Python
refuses, genre refuses too; and the real MiniLM checkpoint lists its tensors.
Runs from the repository root with bin/genre built. Exit status 0 on success."""
import json
import math
import os
import re
import struct
import subprocess
import sys
import tempfile

import numpy as np
from safetensors.numpy import load_file, save_file

GENRE = os.path.abspath("bin/genre")
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def genre(*args):
    return subprocess.run([GENRE, "inspect", *args], capture_output=True, text=True)


def fnv1a64(b):
    h = 0xCBF29CE484222325
    for x in b:
        h = ((h ^ x) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return n, json.loads(f.read(n))


def unescape(name):
    """genre inspect prints control characters in names as \\u00xx."""
    return re.sub(r"\\u00([0-1][0-9a-f])", lambda m: chr(int(m.group(1), 16)), name)


def parse_inspect(out):
    lines = out.splitlines()
    meta, tensors = {}, []
    for line in lines[1:]:
        if line.startswith("# metadata: "):
            meta = json.loads(line[len("# metadata: "):])
            continue
        name, dtype, shape, s, h = line.split("\t")
        tensors.append((name, dtype, json.loads(shape), float(s), int(h, 16)))
    return lines[0], meta, tensors


def same_sum(ours, arr):
    """Our sequential float64 sum against an exact one, to rounding."""
    x = arr.astype(np.float64).ravel()
    if not np.isfinite(x).all():
        with np.errstate(invalid="ignore"):
            ref = float(np.sum(x))
        return math.isnan(ours) if math.isnan(ref) else ours == ref
    ref = math.fsum(x)
    return abs(ours - ref) <= 1e-9 * float(np.abs(x).sum()) + 1e-300


def check_case(tag, tensors, metadata, tmp, hash_bytes=True):
    path = os.path.join(tmp, tag + ".safetensors")
    save_file(tensors, path, metadata=metadata)
    r = genre(path)
    if r.returncode != 0:
        return fail(f"{tag}: genre inspect refused a file save_file wrote: {r.stderr.strip()}")
    first, meta, listed = parse_inspect(r.stdout)
    n, hdr = header(path)
    want_meta = hdr.pop("__metadata__", {})
    if meta != want_meta or list(meta) != list(want_meta):
        fail(f"{tag}: metadata {meta!r} != {want_meta!r}")
    order = sorted(hdr, key=lambda k: tuple(hdr[k]["data_offsets"]) + (k.encode(),))
    listed = [(unescape(t[0]),) + t[1:] for t in listed]
    if [t[0] for t in listed] != order:
        fail(f"{tag}: tensor order {[t[0] for t in listed]} != offsets order {order}")
    data = open(path, "rb").read()[8 + n:]
    for name, dtype, shape, s, h in listed:
        info = hdr.get(name)
        if info is None:
            fail(f"{tag}: genre lists unknown tensor {name!r}")
            continue
        if dtype != info["dtype"] or shape != info["shape"]:
            fail(f"{tag}/{name}: {dtype} {shape} != {info['dtype']} {info['shape']}")
        b, e = info["data_offsets"]
        if hash_bytes and h != fnv1a64(data[b:e]):
            fail(f"{tag}/{name}: fnv1a of bytes differs")
        if not same_sum(s, tensors[name]):
            fail(f"{tag}/{name}: sum {s!r} != {float(np.sum(tensors[name].astype(np.float64)))!r}")
    if f"{len(hdr)} tensors" not in first:
        fail(f"{tag}: first line {first!r} does not count {len(hdr)} tensors")

    out = os.path.join(tmp, tag + ".rewritten.safetensors")
    r = genre("--rewrite", path, out)
    if r.returncode != 0:
        return fail(f"{tag}: --rewrite failed: {r.stderr.strip()}")
    if open(out, "rb").read() != open(path, "rb").read():
        fail(f"{tag}: our writer's bytes differ from save_file's")
    back = load_file(out)
    for k, v in tensors.items():
        if back[k].dtype != v.dtype or back[k].shape != v.shape or back[k].tobytes() != v.tobytes():
            fail(f"{tag}/{k}: Python reads back a different tensor from our writer")
    print(f"ok {tag}: {len(tensors)} tensors, metadata {len(want_meta)} keys, bytes identical")


def check_f16_values(tmp):
    """Every F16 bit pattern, converted by genre, against numpy's float64."""
    bits = np.arange(65536, dtype=np.uint16)
    path = os.path.join(tmp, "f16.safetensors")
    save_file({"all": bits.view(np.float16), "f64": np.array([0.1, -1e-310, 1e300], np.float64)}, path)
    for name, want in (("all", bits.view(np.float16).astype(np.float64)), ("f64", [0.1, -1e-310, 1e300])):
        r = genre("--dump", name, path)
        got = np.array([float(x) for x in r.stdout.split()])
        want = np.asarray(want)
        if r.returncode != 0 or got.shape != want.shape:
            fail(f"--dump {name}: {r.stderr.strip()} ({got.shape} values)")
            continue
        nan = np.isnan(want)
        if not (np.array_equal(np.isnan(got), nan) and np.array_equal(got[~nan], want[~nan])):
            bad = int(np.sum(got[~nan] != want[~nan]))
            fail(f"--dump {name}: {bad} values differ from numpy")
    print("ok --dump: all 65536 F16 bit patterns match numpy exactly")


def check_refusals(tmp):
    """Damaged files: Python's loader and genre both refuse, genre in one line."""
    def raw(hdr, data=b"", n=None):
        hb = json.dumps(hdr, separators=(",", ":")).encode() if not isinstance(hdr, bytes) else hdr
        return struct.pack("<Q", len(hb) if n is None else n) + hb + data

    f32 = lambda b, e, shape: {"dtype": "F32", "shape": shape, "data_offsets": [b, e]}
    cases = {
        "empty": b"",
        "short": b"\x02\x00\x00",
        "past-eof": raw({}, n=1000),
        "huge": raw({}, n=1 << 60),
        "not-json": raw(b"{nope}"),
        "mismatch": raw({"a": f32(0, 4, [2])}, b"\0" * 4),
        "past-data": raw({"a": f32(0, 8, [2])}, b"\0" * 4),
        "overlap": raw({"a": f32(0, 8, [2]), "b": f32(4, 8, [1])}, b"\0" * 8),
        "gap": raw({"a": f32(4, 8, [1])}, b"\0" * 8),
        "trailing": raw({"a": f32(0, 4, [1])}, b"\0" * 8),
        "negative": raw({"a": f32(0, 4, [-1])}, b"\0" * 4),
        "bad-dtype": raw({"a": {"dtype": "X9", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4),
        "bad-meta": raw({"__metadata__": {"k": 1}}),
    }
    for tag, blob in cases.items():
        path = os.path.join(tmp, f"bad-{tag}.safetensors")
        open(path, "wb").write(blob)
        try:
            load_file(path)
            python_refuses = False
        except Exception:
            python_refuses = True
        r = genre(path)
        lines = r.stderr.strip().splitlines()
        if not python_refuses:
            fail(f"bad-{tag}: Python accepts it; the case is wrong")
        if r.returncode != 1 or len(lines) != 1 or not lines[0].startswith(f"genre: {path}: "):
            fail(f"bad-{tag}: genre exit {r.returncode}, stderr {r.stderr!r}")
    print(f"ok refusals: {len(cases)} damaged files refused by both, one-line errors")


def check_minilm():
    d = os.environ.get("GENRE_MINILM", ".cache/models/all-MiniLM-L6-v2")
    path = os.path.join(d, "model.safetensors")
    if not os.path.exists(path):
        return fail(f"{path} missing (run models/fetch-minilm)")
    r = genre(path)
    if r.returncode != 0:
        return fail(f"MiniLM: {r.stderr.strip()}")
    _, meta, listed = parse_inspect(r.stdout)
    ref = load_file(path)
    if sorted(t[0] for t in listed) != sorted(ref):
        fail("MiniLM: tensor names differ from Python's")
    for name, dtype, shape, s, _ in listed:
        if list(ref[name].shape) != shape or not same_sum(s, ref[name]):
            fail(f"MiniLM/{name}: shape or sum differs ({s!r})")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "m.safetensors")
        r = genre("--rewrite", path, out)
        if r.returncode != 0 or open(out, "rb").read() != open(path, "rb").read():
            fail(f"MiniLM: --rewrite not byte-identical {r.stderr.strip()}")
    print(f"ok MiniLM: {len(listed)} tensors, metadata {meta}, sums match, rewrite byte-identical")


def main():
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        check_case("one-f32", {"w": rng.standard_normal((3, 5)).astype(np.float32)}, None, tmp)
        check_case("every-dtype", {
            "f32": rng.standard_normal((4, 3, 2)).astype(np.float32),
            "f16": rng.standard_normal(7).astype(np.float16),
            "f64": rng.standard_normal((2, 2)),
            "i64": rng.integers(-2**40, 2**40, 5),
            "i32": rng.integers(-2**31, 2**31, (3, 1), dtype=np.int32),
            "i16": rng.integers(-2**15, 2**15, 9, dtype=np.int16),
            "i8": rng.integers(-128, 128, 9, dtype=np.int8),
            "u8": rng.integers(0, 256, 9, dtype=np.uint8),
            "bool": rng.integers(0, 2, 6).astype(bool),
            "scalar": np.array(2.5, np.float32),
            "empty": np.zeros((0, 3), np.float16),
            "deep": np.ones((1, 2, 1, 2, 1, 2, 1, 2), np.int8),
        }, {"format": "pt"}, tmp)
        check_case("names-and-metadata", {
            "a/b.c": np.arange(3, dtype=np.float32),
            "ünï \"q\" \\": np.arange(2, dtype=np.float64),
            "tab\tctl\x01": np.arange(4, dtype=np.int32),
            "B": np.arange(4, dtype=np.float32),
        }, {"format": "pt", "note": "line\nbreak \"quoted\" \x1f é", "empty": "", "z": "last"}, tmp)
        check_case("specials", {
            "f16": np.array([0, -0.0, 6e-8, 6.1e-5, 65504, np.inf, -np.inf], np.float16),
            "f32": np.array([1e-45, -3.4e38, np.inf], np.float32),
        }, None, tmp)
        check_case("empty-file", {}, None, tmp)
        check_f16_values(tmp)
        check_refusals(tmp)
    check_minilm()
    print(f"check_safetensors: {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
