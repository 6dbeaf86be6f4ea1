"""Training-step time of genre's CPU DistilBERT against PyTorch on the CPU,
side by side in one run: the all-MiniLM-L6-v2 configuration, batch 16 x
sequence 128, forward + BCE loss + backward, dropout on, the same thread
count for both (default 2). With --adamw the step also clips the gradient
norm to 1 and takes an AdamW step (lr 5e-5, weight decay 0.01 except biases
and LayerNorm weights, as HuggingFace's Trainer; PyTorch's foreach AdamW).
genre computes the last block for the [CLS] rows only, as `genre train`
does (HuggingFace computes every token's); --full makes it compute every
token's too, the same work on both sides.
Needs torch and transformers; run after `make bench` (which builds
build/bench/model_bench).

    python3 bench/model_bench.py [--threads N] [--iters N] [--rounds N] [--adamw] [--full]
"""
import argparse
import os
import platform
import statistics
import subprocess
import time

# Both sides run libgomp: sleeping idle threads rather than spinning ones keep
# OpenMP from starving the BLAS threads on a shared machine. Set before torch
# loads, so it applies to PyTorch and (inherited) to genre alike.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import torch  # noqa: E402
from transformers import DistilBertConfig, DistilBertForSequenceClassification  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def torch_step_ms(model, opt, ids, mask, targets, iters):
    loss_fn = torch.nn.BCEWithLogitsLoss()
    times, cpu = [], []
    for i in range(iters + 1):  # the first is warm-up
        t0, c0 = time.perf_counter(), time.process_time()
        model.zero_grad(set_to_none=False)
        loss = loss_fn(model(input_ids=ids, attention_mask=mask).logits, targets)
        loss.backward()
        if opt is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        times.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return statistics.median(times[1:]), statistics.median(cpu[1:])


def genre_step_ms(threads, B, T, iters, flags):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    cmd = [os.path.join(ROOT, "build", "bench", "model_bench"), str(B), str(T), str(iters)]
    out = subprocess.run(cmd + flags, env=env, check=True,
                         capture_output=True, text=True).stdout
    f = out.split()
    return float(f[1]), float(f[3])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--adamw", action="store_true", help="include clipping and an AdamW step")
    ap.add_argument("--full", action="store_true",
                    help="genre computes the last block for every token, as PyTorch")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = DistilBertConfig(vocab_size=30522, dim=384, n_layers=6, n_heads=12, hidden_dim=1536,
                           max_position_embeddings=512, num_labels=20,
                           problem_type="multi_label_classification")
    model = DistilBertForSequenceClassification(cfg).train()
    opt = None
    if a.adamw:
        def no_decay(name):
            return name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name
        named = list(model.named_parameters())
        decay = [p for n, p in named if not no_decay(n)]
        rest = [p for n, p in named if no_decay(n)]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                                 {"params": rest, "weight_decay": 0.0}], lr=5e-5, foreach=True)
    B, T = a.batch, a.seq
    ids = torch.randint(0, 30522, (B, T))
    mask = torch.ones(B, T, dtype=torch.long)
    for b in range(B):  # the same padding pattern as model_bench.c
        mask[b, T - (b % 16):] = 0
    targets = (torch.rand(B, 20) < 0.2).float()
    ours, theirs = [], []
    for _ in range(a.rounds):  # alternate, so load on the machine hits both alike
        flags = (["adamw"] if a.adamw else []) + (["full"] if a.full else [])
        ours.append(genre_step_ms(a.threads, B, T, a.iters, flags))
        theirs.append(torch_step_ms(model, opt, ids, mask, targets, a.iters))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus; "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads, "
          f"attention {model.config._attn_implementation})")
    print(f"MiniLM config, batch {B} x seq {T}, forward+backward{'+AdamW' if a.adamw else ''}, "
          f"genre's last block {'for every token' if a.full else 'for [CLS] only'}, "
          f"{a.threads} threads, "
          f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, load average {os.getloadavg()[0]:.1f}")
    for i, what in ((0, "wall"), (1, "CPU")):
        g, t = [x[i] for x in ours], [x[i] for x in theirs]
        print(f"{what} ms/step, best and median of {a.rounds} rounds (each the median of "
              f"{a.iters} steps):")
        print(f"  genre  {min(g):8.1f} {statistics.median(g):8.1f}   "
              f"(rounds: {', '.join(f'{x:.0f}' for x in g)})")
        print(f"  torch  {min(t):8.1f} {statistics.median(t):8.1f}   "
              f"(rounds: {', '.join(f'{x:.0f}' for x in t)})")
        print(f"  ratio torch/genre: best {min(t) / min(g):.2f}, median "
              f"{statistics.median(t) / statistics.median(g):.2f}  (>1: genre is faster)")

if __name__ == "__main__":
    main()
