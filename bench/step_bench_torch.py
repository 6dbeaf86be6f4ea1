"""A full training step of HuggingFace's DistilBertForSequenceClassification
in PyTorch, eager under bf16 autocast and with torch.compile, timed on the
GPU, and beside it genre's CUDA step (build/bench/model_bench's output, same
GPU, same run): samples/s, tokens/s, MFU, first-step latency and peak device
memory, with genre/eager and genre/compile and the issue's targets.

    python3 bench/step_bench_torch.py [--device cuda|cpu] [--models M,...] [--modes eager,compile]
        [--steps N] [--warmup N] [--batch B] [--seq T] [--threads N] [--budget-s S]
        [--json OUT] [--genre FILE ...]
    python3 bench/step_bench_torch.py --table RESULTS.json [--genre FILE ...]

Models: DistilBERT-base (dim 768, 6 layers, 12 heads, FFN 3072) and
all-MiniLM-L6-v2's dimensions as a DistilBERT config (dim 384, FFN 1536),
vocab 30522, 20 labels, random init, problem_type multi_label_classification
(the model's own BCEWithLogits loss). attn_implementation="sdpa": the
default of the installed transformers (5.24) for DistilBERT, given
explicitly so that a GPU machine with another version runs the same path,
PyTorch's scaled_dot_product_attention (with a padding mask it picks a
kernel that takes one; flash attention would need the flash-attn package).

The step is HuggingFace Trainer's with its defaults, as
bench/step_plan_torch.py counts it: forward under autocast(bf16) in train
mode (dropout on), backward outside autocast, clip_grad_norm_(1.0),
torch.optim.AdamW fused (Trainer's "adamw_torch_fused"), lr 5e-5, weight
decay 0.01 on all but biases and LayerNorm weights (two groups, as genre),
zero_grad(set_to_none=True); weights and AdamW state fp32. Mode compile is
torch.compile(model) with mode default, as Trainer's torch_compile=True:
forward and loss compiled, backward through AOTAutograd, clipping and AdamW
eager. Compiling takes about a minute per model; it is in the first step.
Batch: B x T random ids, row b ending in b % 16 padding tokens (the pattern
of bench/model_bench.c), labels 1 with probability 0.2.

Each (model, mode) runs in a process of its own (this script with
--child), so first-step latency is a cold start: from the kernel's start
time of that process (/proc/self/stat, 10 ms ticks) to the end of its first
step, with the interpreter, importing torch and transformers, CUDA's
initialisation, the model's construction and for compile the compilation;
and torch.cuda.max_memory_allocated is that run's alone (the context and
the allocator's cached slack are not in it; max_memory_reserved is in the
JSON). Inductor's on-disk cache would speed a repeated compile; a fresh GPU
machine has none. Eager runs go first, then compile, so that a slow compile
cannot take the eager rows' time; --budget-s bounds all runs together (a
run still going when it is spent is killed and reported).

Timing: --warmup steps, then --steps steps with a CUDA event recorded
before each and after the last and one synchronize at the end, so the
steps queue as in training (PyTorch's step never waits for the host;
genre's reads the loss and gradient norm back each step, inside its
time). ms/step is the median of the steps (model_bench's is the median of
its steps' wall time too), samples/s and tokens/s are B and B x T per
ms/step (padding counted: both compute it). On --device cpu (a smoke test:
bf16 autocast on the CPU) perf_counter per step.

MFU = model FLOPs per step / (step time x the GPU's dense bf16 peak), model
FLOPs = (6 N + 12 layers T dim) per token, N the parameters outside the word
and position embeddings (counted from the same config on the meta device),
as bench/step_plan. genre computes the last block for the [CLS] rows only
(as genre train) and is credited the same model FLOPs; its bf16, fp32 and
tf32 are all judged against the bf16 peak. Peaks by device name: H100 SXM
(which names itself "H100 80GB HBM3" or "H100 SXM...") and H200 989e12
(the same Hopper SXM tensor cores), A100 312e12; anything else (an H100
PCIe or NVL, an H200 NVL: lower clocks), and the CPU, "unknown". Targets:
genre >= 2x eager's samples/s, >= 1.3x compile's, MFU >= 40%.

--genre FILE reads model_bench's output (its "key value" and "gpu"
lines); --json OUT writes every row; --table FILE prints the table of such
a JSON without running anything (with --genre files added).
"""
import argparse
import functools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import torch

from hf_trainer_optim import trainer_adamw
from transformers import DistilBertConfig, DistilBertForSequenceClassification

MODELS = {"distilbert-base": {"dim": 768, "ffn": 3072}, "all-MiniLM-L6-v2": {"dim": 384, "ffn": 1536}}
SHORT = {"base": "distilbert-base", "minilm": "all-MiniLM-L6-v2"}
LAYERS, HEADS, VOCAB, MAX_POS, LABELS = 6, 12, 30522, 512, 20
MODES = ("eager", "compile")
# Dense bf16 tensor-core peaks, FLOP/s, by the device's name (whole words:
# an "RTX A1000" is no A100; an H100 PCIe or NVL, an H200 NVL, has lower
# clocks).
PEAKS = ((r"\bH200\b(?!.*NVL)", 989e12), (r"\bH100\b.*\b(SXM|HBM3)", 989e12), (r"\bA100\b", 312e12))
TARGETS = {"eager": 2.0, "compile": 1.3, "mfu": 0.40}


def process_age_ms():
    """Milliseconds since the kernel started this process: field 22 of
    /proc/self/stat (clock ticks since boot) against CLOCK_BOOTTIME."""
    with open("/proc/self/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()  # field 2, the name in parentheses, may hold spaces
    start_s = int(fields[22 - 3]) / os.sysconf("SC_CLK_TCK")
    return (time.clock_gettime(time.CLOCK_BOOTTIME) - start_s) * 1e3


def config(name):
    spec = MODELS[name]
    return DistilBertConfig(vocab_size=VOCAB, max_position_embeddings=MAX_POS, n_layers=LAYERS, n_heads=HEADS,
                            dim=spec["dim"], hidden_dim=spec["ffn"], num_labels=LABELS,
                            problem_type="multi_label_classification", attn_implementation="sdpa")


@functools.lru_cache
def model_flops(name, batch, seq):
    """Model FLOPs of one step: (6 N + 12 layers T dim) per token."""
    with torch.device("meta"):
        model = DistilBertForSequenceClassification(config(name))
    emb = model.distilbert.embeddings
    n = sum(p.numel() for p in model.parameters())
    n -= emb.word_embeddings.weight.numel() + emb.position_embeddings.weight.numel()
    return (6 * n + 12 * LAYERS * seq * MODELS[name]["dim"]) * batch * seq


def peak_flops(gpu):
    return next((peak for pattern, peak in PEAKS if gpu and re.search(pattern, gpu)), None)


def child(a):
    """One run: a.models and a.modes hold one model and one mode (from
    run_children); its row as JSON into a.child_out."""
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    torch.manual_seed(0)
    model = DistilBertForSequenceClassification(config(a.models)).to(device).train()
    opt = trainer_adamw(model)
    attn = model.config._attn_implementation
    if a.modes == "compile":
        model = torch.compile(model)
    B, T = a.batch, a.seq
    ids = torch.randint(0, VOCAB, (B, T), device=device)
    mask = torch.ones(B, T, dtype=torch.long, device=device)
    for b in range(B):
        mask[b, T - b % 16:] = 0
    labels = (torch.rand(B, LABELS, device=device) < 0.2).float()
    cuda = device.type == "cuda"

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    def sync():
        if cuda:
            torch.cuda.synchronize()

    sync()
    t0 = time.perf_counter()
    step()
    sync()
    first_ms, startup_ms = (time.perf_counter() - t0) * 1e3, process_age_ms()
    for _ in range(a.warmup - 1):
        step()
    sync()
    if cuda:
        marks = [torch.cuda.Event(enable_timing=True) for _ in range(a.steps + 1)]
        for i in range(a.steps):
            marks[i].record()
            loss = step()
        marks[-1].record()
        sync()
        times = [s.elapsed_time(e) for s, e in zip(marks, marks[1:])]
    else:
        times = []
        for _ in range(a.steps):
            t0 = time.perf_counter()
            loss = step()
            times.append((time.perf_counter() - t0) * 1e3)
    ms = statistics.median(times)
    row = {"side": "torch", "model": a.models, "mode": a.modes, "device": a.device,
           "gpu": torch.cuda.get_device_name(device) if cuda else "cpu",
           "torch": torch.__version__, "transformers": sys.modules["transformers"].__version__, "attn": attn,
           "batch": B, "seq": T, "steps": a.steps, "warmup": a.warmup, "step_ms": ms,
           "mean_step_ms": statistics.mean(times), "samples_per_s": B * 1e3 / ms, "tokens_per_s": B * T * 1e3 / ms,
           "first_step_ms": first_ms, "startup_ms": startup_ms, "loss": loss.item(),
           "peak_mem_bytes": torch.cuda.max_memory_allocated(device) if cuda else None,
           "reserved_bytes": torch.cuda.max_memory_reserved(device) if cuda else None}
    with open(a.child_out, "w") as f:
        json.dump(row, f)


def run_children(a, models, modes):
    """Every (model, mode) in a process of its own, eager first, within the budget."""
    rows, deadline = [], time.monotonic() + a.budget_s if a.budget_s else None
    for mode in modes:
        for name in models:
            row = {"side": "torch", "model": name, "mode": mode, "device": a.device, "batch": a.batch, "seq": a.seq}
            left = deadline - time.monotonic() if deadline else None
            if left is not None and left <= 0:
                rows.append(dict(row, error="not run: --budget-s spent"))
                continue
            with tempfile.NamedTemporaryFile(suffix=".json") as out:
                cmd = [sys.executable, os.path.abspath(__file__), "--child", "--child-out", out.name,
                       "--device", a.device, "--models", name, "--modes", mode, "--steps", str(a.steps),
                       "--warmup", str(a.warmup), "--batch", str(a.batch), "--seq", str(a.seq),
                       "--threads", str(a.threads)]
                # Its own session, so that a timeout also ends inductor's compile workers.
                proc = subprocess.Popen(cmd, start_new_session=True)
                try:
                    rc = proc.wait(timeout=left)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, 9)
                    proc.wait()
                    rows.append(dict(row, error=f"killed after {left:.0f} s: --budget-s spent"))
                    continue
                if rc != 0:
                    rows.append(dict(row, error=f"exit {rc}"))
                    continue
                with open(out.name) as f:
                    rows.append(json.load(f))
            print(f"step_bench_torch: {name} {mode} done", file=sys.stderr)
    return rows


def genre_row(path):
    """model_bench's output: "genre_step_ms X cpu_ms Y", then "key value" pairs."""
    with open(path) as f:
        lines = f.read().split("\n")
    line = next((x for x in lines if x.startswith("model ")), None)
    if line is None:
        return {"side": "genre", "model": "?", "device": "?", "mode": "?", "error": f"{path}: no model line"}
    kv = line.split()
    g = dict(zip(kv[::2], kv[1::2]))
    gpu = next((x[len("gpu "):] for x in lines if x.startswith("gpu ")), None)
    return {"side": "genre", "model": g["model"], "mode": g["precision"],
            "device": g["device"], "gpu": gpu, "batch": int(g["batch"]), "seq": int(g["seq"]),
            "cls_only": g["cls_only"] == "1", "step_ms": float(lines[0].split()[1]),
            "samples_per_s": float(g["samples_per_s"]), "tokens_per_s": float(g["tokens_per_s"]),
            "first_step_ms": float(g["first_step_ms"]), "startup_ms": float(g["startup_ms"]),
            "peak_mem_bytes": float(g["device_mem_bytes"]) if "device_mem_bytes" in g else None}


def fmt(v, f):
    return "-" if v is None else f(v)


def score(rows):
    """Each run's MFU (None where the peak is unknown) into its row; the
    device's name (any run's: same GPU, same run) and its peak."""
    gpu = next((r["gpu"] for r in rows if r.get("gpu")), None)
    peak = peak_flops(gpu)
    for r in rows:
        if "error" not in r:
            f = model_flops(r["model"], r["batch"], r["seq"])
            r["mfu"] = f / (r["step_ms"] * 1e-3 * peak) if peak else None
    return gpu, peak


def print_table(rows, gpu, peak):
    about = next((r for r in rows if "torch" in r), {})
    print(f"device: {gpu or 'unknown'}, dense bf16 peak {f'{peak / 1e12:.0f} TFLOP/s' if peak else 'unknown'}" +
          (f"; torch {about['torch']}, transformers {about['transformers']}, attention {about['attn']}"
           if about else ""))
    print("genre: model_bench, bf16 mixed precision, fp32, tf32 (TF32 GEMMs), last block for [CLS] only; "
          "torch: bf16 autocast.\n"
          "1st step: the first step alone (compiling included); start-up: process start to its end.\n"
          "peak mem: torch's max_memory_allocated; genre's device use after its steps less before it\n"
          "opened (buffers, cuBLAS's workspaces, its kernels' code)")
    for name in [m for m in MODELS if any(r["model"] == m for r in rows)] + \
            sorted({r["model"] for r in rows} - set(MODELS)):
        mine = [r for r in rows if r["model"] == name]
        shapes = sorted({(r["batch"], r["seq"]) for r in mine if "batch" in r})
        print(f"\n{name}" + "".join(f", batch {b} x {t} tokens" for b, t in shapes))
        print(f"  {'run':<20} {'ms/step':>8} {'samples/s':>10} {'tokens/s':>10} {'MFU':>7} "
              f"{'1st step':>9} {'start-up':>9} {'peak mem':>9}")
        for r in mine:
            label = f"{r['side']} {r.get('device', '')} {r['mode']}"
            if "error" in r:
                print(f"  {label:<20} {r['error']}")
                continue
            print(f"  {label:<20} {r['step_ms']:>8.2f} {r['samples_per_s']:>10.1f} {r['tokens_per_s']:>10.0f} "
                  f"{fmt(r['mfu'], lambda v: f'{100 * v:.1f}%'):>7} {r['first_step_ms'] / 1e3:>8.2f}s "
                  f"{r['startup_ms'] / 1e3:>8.2f}s {fmt(r['peak_mem_bytes'], lambda v: f'{v / 1e9:.2f}GB'):>9}")
        ok = [r for r in mine if "error" not in r]
        tried = {r["mode"] for r in mine if r["side"] == "torch"}
        for g in (r for r in ok if r["side"] == "genre"):
            for mode in (m for m in MODES if m in tried):
                t = next((r for r in ok if r["side"] == "torch" and r["mode"] == mode and
                          (r["batch"], r["seq"]) == (g["batch"], g["seq"])), None)
                x = g["samples_per_s"] / t["samples_per_s"] if t else None
                verdict(f"genre {g['mode']} / torch {mode}", fmt(x, lambda v: f"{v:.2f}x samples/s"),
                        f"{TARGETS[mode]}x", None if x is None else x >= TARGETS[mode])
            mfu = g["mfu"]
            verdict(f"genre {g['mode']} MFU", fmt(mfu, lambda v: f"{100 * v:.1f}%"), f"{100 * TARGETS['mfu']:.0f}%",
                    None if mfu is None else mfu >= TARGETS["mfu"])


def verdict(what, value, target, ok):
    """One line against a target: met, not met, or unknown (no value)."""
    print(f"  {what:<28} {value:>16}   target >= {target}: {'unknown' if ok is None else 'met' if ok else 'not met'}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--models", default="base,minilm", help="comma-separated: base, minilm")
    ap.add_argument("--modes", default="eager,compile", help="comma-separated: eager, compile")
    ap.add_argument("--steps", type=int, default=20, help="timed steps")
    ap.add_argument("--warmup", type=int, default=3, help="steps before them, the first included")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    ap.add_argument("--budget-s", type=float, default=0, help="seconds for all runs together (0: no bound)")
    ap.add_argument("--json", help="write every row here")
    ap.add_argument("--genre", action="append", default=[], help="build/bench/model_bench's output")
    ap.add_argument("--table", help="print the table of a --json file instead of running")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(a)
    models = [SHORT.get(m, m) for m in a.models.split(",")]
    modes = a.modes.split(",")
    if not set(models) <= set(MODELS) or not set(modes) <= set(MODES) or a.steps < 1 or a.warmup < 1:
        ap.error("--models: base, minilm; --modes: eager, compile; --steps and --warmup at least 1")
    if a.table:
        with open(a.table) as f:
            rows = json.load(f)["rows"]
    else:
        rows = run_children(a, models, modes)
    rows += [genre_row(p) for p in a.genre]
    print_table(rows, *score(rows))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rows": rows}, f, indent=1)
            f.write("\n")
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
