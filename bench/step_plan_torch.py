"""The PyTorch half of the step plan (bench/step_plan is the C half): what a
GPU would execute for one training step of HuggingFace's
DistilBertForSequenceClassification in eager mode (no torch.compile) under
bf16 autocast, and the step time a roofline predicts on an H100 SXM.

    python3 bench/step_plan_torch.py [--ours FILE] [--json OUT]

The step is HuggingFace Trainer's with its defaults: forward under
autocast(bf16) with dropout on (train mode; p 0.1, 0.2 before the
classifier), BCEWithLogits loss (problem_type multi_label_classification),
backward outside autocast, clip_grad_norm_(max_norm 1.0, foreach), one
torch.optim.AdamW step and model.zero_grad(set_to_none=True), which launches
nothing. AdamW is the fused one (fused=True), because Trainer's default optim
is "adamw_torch_fused" for torch >= 2.8; lr 5e-5, weight decay 0.01 on all
but biases and LayerNorm weights (two parameter groups: _foreach_add_ and
_fused_adamw_ run once for each), as genre's own trainer. The Trainer's
bookkeeping (loss divided by the accumulation steps, the NaN/Inf filter,
tr_loss +=) and the learning-rate schedule (Python floats) are left out.
Batch 32 x 128, every token real (attention mask all ones, which
HuggingFace's mask builder checks with one .all() and then skips the mask
add). Models are random-init from configs built here: DistilBERT-base, and
all-MiniLM-L6-v2 expressed as a DistilBERT config (dim 384, FFN 1536).
MiniLM is really a BertModel: its token_type embeddings add one gather and
one add (and one embedding backward), BERT drops out the attention output
before its residual add (one dropout more per layer) and its pooler is
dense + tanh; none of that is counted here.

Method. The step runs on the CPU under torch.autocast("cpu", bf16) inside a
TorchDispatchMode, which sees every leaf aten operator after autograd with
its real input and output tensors (dtypes, shapes, strides, in-place
aliasing): the list of operators with shapes that the PyTorch profiler
would give, with exact bytes (the profiler itself is not used). A
first step at a tiny batch creates AdamW's state, so the counted step is a
steady-state one. Where CPU dispatch differs from what CUDA runs, it is made
to run what CUDA runs, before counting:
  - autocast: CUDA runs layer_norm in fp32 (inputs cast) and softmax with
    dtype=float32 (bf16 input: one cast, then an fp32 softmax; the fused
    half_to_float path is for fp16 only); CPU autocast runs both in bf16.
    Both get CUDA's policy through AutocastCPU kernels registered here (for
    layer_norm it changes nothing: the residual adds already promote to fp32).
  - dropout: CUDA's at::dropout runs native_dropout (one kernel: reads x,
    writes y and a bool mask; backward native_dropout_backward, one kernel);
    on the CPU it decomposes into bernoulli_/div_/mul. An AutogradCPU kernel
    registered here routes dropout to native_dropout as on CUDA.
  - attention is HuggingFace's eager path (attn_implementation="eager":
    matmul, scale, softmax, dropout, matmul), not scaled_dot_product_attention.

Operators to kernels:
  - no kernel: views and metadata (any operator whose output aliases its
    input: view, t, transpose, permute, expand, unsqueeze, squeeze, slice,
    select, detach, alias, as_strided, split...), _unsafe_view, allocations
    (empty, empty_like, empty_strided), profiler markers, and
    _local_scalar_dense (.item(): a device-to-host copy, not a kernel).
  - GEMM: mm, addmm, bmm, baddbmm (what linear and matmul decompose into;
    addmm's bias rides in cuBLASLt's epilogue): one launch, 2*m*n*k FLOPs
    (times the batch for bmm), bytes = operands read once + output written.
  - every other operator: one kernel reading its tensor inputs and writing
    its outputs (an in-place operator's tensor read and written); bytes are
    each tensor's footprint (elements at nonzero strides: a broadcast
    operand counts once).
  - composites (no device kernel of their own, so the dispatch mode sees
    them whole) and ATen CUDA kernels that launch several kernels:
    embedding = one index_select (reads the gathered rows, not the table);
    select_backward = zeros + copy into the slice (2);
    binary_cross_entropy_with_logits = log_sigmoid, rsub, mul_, sub_, mean (5);
    native_layer_norm_backward = dX kernel + dgamma/dbeta kernel (2; both
    read dY and X);
    embedding_dense_backward: up to 3072 indices zeros + one feature kernel
    (2), else arange, cub radix_sort_pairs (taken as 10: histogram, scan and
    8 onesweep passes over 64-bit keys), zeros, cub unique_by_key (2),
    partials-per-segment, cub exclusive_sum (2), two 1-thread kernels,
    partial offsets, compute_grad_weight, sum_and_scatter (21 in all;
    bytes: zeros of the table, grad read, partials written and read, rows
    written, the index arrays six times);
    _to_copy, clone, div_, ones_like, stack: one kernel each.
    Any other composite stops the script.
  - multi_tensor_apply (aten/src/ATen/native/cuda/MultiTensorApply.cuh):
    tensors are cut into 65536-element chunks, one block each; a launch
    takes at most 320 blocks and depth_to_max_tensors = {110, 64, 48, 36,
    30} tensors for depth 1..5 (the 4 KB kernel-argument tables;
    multi_tensor_apply_for_fused_optimizer uses the same; versions of that
    file with 32 KB arguments on CUDA >= 12.1 allow {770, 448, 336, 252,
    210} tensors and 2240 blocks, about 10 launches fewer here). _foreach_add_
    (AdamW's step counters, on the device for fused) and _foreach_mul_
    (clipping) are depth 1; _fused_adamw_ is depth 4 (params, grads,
    exp_avg, exp_avg_sq; reads all, writes all but grads); _foreach_norm is
    depth 1 plus two zeros and ceil(n / 400) lpnorm_cleanup launches
    (ForeachReduceOp.cu, MAX_TENSORS_PER_KERNEL 400).

Roofline on an H100 SXM (989 TFLOP/s dense bf16, 3.35 TB/s), no launch
overhead: a GEMM takes max(flops / 989e12, bytes / 3.35e12), any other
kernel bytes / 3.35e12; the predicted step is the sum.
MFU = model FLOPs / (predicted time * 989e12), with model FLOPs per step =
6 * N_nonembedding * tokens + 12 * n_layers * seq * dim * tokens (attention
scores and weighted sum, forward and backward), N_nonembedding = every
parameter but the word and position embeddings (transformer layers,
embedding LayerNorm, pre_classifier, classifier).

--json OUT writes the counts in bench/step_plan's shape; --ours FILE reads
that shape (build/bench/step_plan --json FILE) and prints both side by side
with ours/eager and the issue's targets: at most a third of eager's
launches, at most half of its non-GEMM bytes, predicted MFU at least 40%.
Needs torch and transformers (CPU wheels do); runs on the CPU in under a
minute with one thread.
"""
import argparse
import collections
import json
import math
import sys

import torch

from hf_trainer_optim import trainer_adamw
from torch.utils._python_dispatch import TorchDispatchMode
from transformers import DistilBertConfig, DistilBertForSequenceClassification

GPU = {"name": "H100 SXM", "bf16_tflops": 989, "tb_per_s": 3.35}
PEAK_FLOPS, PEAK_BYTES = GPU["bf16_tflops"] * 1e12, GPU["tb_per_s"] * 1e12
MODELS = {"distilbert-base": {"dim": 768, "ffn": 3072}, "all-MiniLM-L6-v2": {"dim": 384, "ffn": 1536}}
LAYERS, HEADS, VOCAB, MAX_POS, LABELS, BATCH, SEQ = 6, 12, 30522, 512, 20, 32, 128
PRECISION = "bf16 autocast, fp32 weights and AdamW state (HuggingFace eager)"
TARGETS = {"launches": 1 / 3, "nongemm_bytes": 1 / 2, "mfu": 0.40}

CHUNK, MAX_BLOCKS, MAX_TENSORS, NORM_CLEANUP_TENSORS = 65536, 320, (110, 64, 48, 36, 30), 400
GEMMS = {"mm", "addmm", "bmm", "baddbmm"}
NO_KERNEL = {"_unsafe_view", "empty", "empty_like", "empty_strided", "_local_scalar_dense"}
ONE_KERNEL_COMPOSITES = {"_to_copy", "clone", "div_", "ones_like", "stack"}
EMBEDDING_SORT_PATH_LAUNCHES = 21

Kernel = collections.namedtuple("Kernel", "name launches bytes flops")


def tensors(x):
    """The tensors in an argument, a list of arguments or a returned tuple."""
    if isinstance(x, torch.Tensor):
        return [x]
    if isinstance(x, (list, tuple)):
        return [t for a in x for t in tensors(a)]
    return []


def footprint(t):
    """Bytes a kernel touches for t: its elements at nonzero strides."""
    if t.numel() == 0:
        return 0
    return t.element_size() * math.prod(n for n, s in zip(t.shape, t.stride()) if s != 0)


def moved(reads, writes):
    """Bytes read (each distinct tensor once) plus bytes written."""
    seen = {(t.data_ptr(), t.shape, t.stride(), t.dtype): t for t in reads}
    return sum(map(footprint, seen.values())) + sum(map(footprint, writes))


def written(func, args, out):
    """What an operator writes: its returns, or for one returning nothing
    the arguments its schema marks as mutated."""
    if out is not None:
        return tensors(out)
    mutated = [a for a, s in zip(args, func._schema.arguments) if s.alias_info and s.alias_info.is_write]
    return tensors(mutated)


def mta_launches(numels, max_tensors):
    """Launches of one multi_tensor_apply over tensors of these sizes."""
    launches = blocks = held = 0
    for n in filter(None, numels):
        held += 1
        chunks = -(-n // CHUNK)
        for c in range(chunks):
            blocks += 1
            last = c == chunks - 1
            if (held == max_tensors and last) or blocks == MAX_BLOCKS:
                launches += 1
                blocks, held = 0, 0 if last else 1
    return launches + (blocks > 0)


def gemm(name, args, out):
    a = args[1] if name in ("addmm", "baddbmm") else args[0]
    flops = 2 * out.numel() * a.shape[-1]
    return Kernel(name, 1, moved(tensors(args), [out]), flops)


def layer_norm_backward(args, out):
    """dX kernel, then dgamma/dbeta kernel: dY, X, mean and rstd read twice."""
    dy, x, _, mean, rstd = args[:5]
    return 2, moved(tensors(args), tensors(out)) + sum(map(footprint, (dy, x, mean, rstd)))


def embedding_backward(args, out):
    grad, indices = args[0], args[1]
    if indices.numel() <= 3072:
        return 2, moved([grad, indices], [out])
    return EMBEDDING_SORT_PATH_LAUNCHES, footprint(out) + 4 * footprint(grad) + 6 * footprint(indices)


def foreach_norm(args, out):
    numels = [t.numel() for t in args[0]]
    launches = 2 + mta_launches(numels, MAX_TENSORS[0]) + -(-len(numels) // NORM_CLEANUP_TENSORS)
    return launches, moved(tensors(args[0]), tensors(out))


def foreach_inplace(args, out):
    lists = args[0]
    return mta_launches([t.numel() for t in lists], MAX_TENSORS[0]), moved(lists, lists)


def fused_adamw(args, out):
    params, grads, exp_avgs, exp_avg_sqs, _, steps = args[:6]
    launches = mta_launches([t.numel() for t in params], MAX_TENSORS[3])
    return launches, moved(params + grads + exp_avgs + exp_avg_sqs + steps, params + exp_avgs + exp_avg_sqs)


MULTI_KERNEL = {
    "embedding": lambda args, out: (1, 2 * footprint(out) + footprint(args[1])),
    "select_backward": lambda args, out: (2, footprint(out) + 2 * footprint(args[0])),
    "binary_cross_entropy_with_logits": lambda args, out: (5, moved(tensors(args), [out])),
    "native_layer_norm_backward": layer_norm_backward,
    "embedding_dense_backward": embedding_backward,
    "_foreach_norm": foreach_norm,
    "_foreach_add_": foreach_inplace,
    "_foreach_mul_": foreach_inplace,
    "_fused_adamw_": fused_adamw,
}


def has_device_kernel(func):
    """Whether ATen has a kernel of its own for func (a CPU one where torch
    was built without CUDA) rather than a composite of other operators."""
    return any(torch._C._dispatch_has_kernel_for_dispatch_key(func.name(), key) for key in ("CUDA", "CPU"))


class KernelPlan(TorchDispatchMode):
    """Records, for each aten operator run inside it, the CUDA kernels eager
    PyTorch would launch for it (see the module docstring)."""

    def __init__(self):
        super().__init__()
        self.kernels = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        kernel = self.kernel(func, list(args), out)
        if kernel:
            self.kernels.append(kernel)
        return out

    @staticmethod
    def kernel(func, args, out):
        name = func.overloadpacket.__name__
        if func.namespace != "aten" or func.is_view or name in NO_KERNEL:
            return None
        if name in GEMMS:
            return gemm(name, args, out)
        if name in MULTI_KERNEL:
            return Kernel(name, *MULTI_KERNEL[name](args, out), 0)
        if not has_device_kernel(func) and name not in ONE_KERNEL_COMPOSITES:
            sys.exit(f"step_plan_torch: {func} is a composite with no mapping here; add one")
        return Kernel(name, 1, moved(tensors(args), written(func, args, out)), 0)


def cuda_dispatch_on_cpu():
    """Registers CPU kernels that make the CPU run what CUDA would: CUDA's
    autocast policy for layer_norm (fp32) and softmax (dtype=float32), and
    dropout through native_dropout. Keep the returned library alive."""
    lib = torch.library.Library("aten", "IMPL")
    no_autocast = torch._C.DispatchKeySet(torch._C.DispatchKey.AutocastCPU)
    low = (torch.bfloat16, torch.float16)

    def layer_norm(x, shape, weight=None, bias=None, eps=1e-5, cudnn=True):
        x, weight, bias = (t.float() if t is not None and t.dtype in low else t for t in (x, weight, bias))
        with torch._C._ExcludeDispatchKeyGuard(no_autocast):
            return torch.ops.aten.layer_norm(x, shape, weight, bias, eps, cudnn)

    def softmax(x, dim, dtype=None):
        if dtype is None and x.dtype in low:
            dtype = torch.float32
        with torch._C._ExcludeDispatchKeyGuard(no_autocast):
            return torch.ops.aten.softmax.int(x, dim, dtype)

    def dropout(x, p, train):
        if train and 0 < p < 1 and x.numel() > 0:
            return torch.ops.aten.native_dropout(x, p, train)[0]
        return torch.ops.aten.dropout.default.decompose(x, p, train)

    lib.impl("layer_norm", layer_norm, "AutocastCPU")
    lib.impl("softmax.int", softmax, "AutocastCPU")
    lib.impl("dropout", dropout, "AutogradCPU")
    return lib


def build(name):
    spec = MODELS[name]
    config = DistilBertConfig(vocab_size=VOCAB, max_position_embeddings=MAX_POS, n_layers=LAYERS,
                              n_heads=HEADS, dim=spec["dim"], hidden_dim=spec["ffn"], num_labels=LABELS,
                              problem_type="multi_label_classification", attn_implementation="eager")
    model = DistilBertForSequenceClassification(config).train()
    opt = trainer_adamw(model)
    return model, opt


def batch(b, s):
    return {"input_ids": torch.randint(0, VOCAB, (b, s)),
            "attention_mask": torch.ones(b, s, dtype=torch.long),
            "labels": torch.randint(0, 2, (b, LABELS)).float()}


def train_step(model, opt, inputs):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(**inputs).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    model.zero_grad(set_to_none=True)


def model_flops(model):
    emb = model.distilbert.embeddings
    n = sum(p.numel() for p in model.parameters())
    n -= emb.word_embeddings.weight.numel() + emb.position_embeddings.weight.numel()
    tokens, dim = BATCH * SEQ, model.config.dim
    return 6 * n * tokens + 12 * LAYERS * SEQ * dim * tokens


def seconds(k):
    return max(k.flops / PEAK_FLOPS, k.bytes / PEAK_BYTES) if k.name in GEMMS else k.bytes / PEAK_BYTES


def plan(name):
    """The step's counts for one model, in bench/step_plan's JSON shape."""
    torch.manual_seed(0)
    model, opt = build(name)
    train_step(model, opt, batch(1, 8))
    inputs = batch(BATCH, SEQ)
    with KernelPlan() as rec:
        train_step(model, opt, inputs)
    kernels = rec.kernels
    gemms = [k for k in kernels if k.name in GEMMS]
    t = sum(map(seconds, kernels))
    mflops = model_flops(model)
    by_name = collections.defaultdict(lambda: [0, 0, 0])
    for k in kernels:
        by_name[k.name] = [a + b for a, b in zip(by_name[k.name], k[1:])]
    spec = MODELS[name]
    return {"name": name, "dim": spec["dim"], "layers": LAYERS, "heads": HEADS, "ffn": spec["ffn"],
            "vocab": VOCAB, "labels": LABELS, "batch": BATCH, "seq": SEQ, "precision": PRECISION,
            "launches": sum(k.launches for k in kernels), "gemm_launches": sum(k.launches for k in gemms),
            "gemm_flops": sum(k.flops for k in gemms), "gemm_bytes": sum(k.bytes for k in gemms),
            "nongemm_bytes": sum(k.bytes for k in kernels if k.name not in GEMMS), "model_flops": mflops,
            "predicted_ms": t * 1e3, "mfu": mflops / (t * PEAK_FLOPS),
            "kernels": [{"name": n, "launches": r[0], "bytes": r[1], "flops": r[2]}
                        for n, r in sorted(by_name.items(), key=lambda kv: -kv[1][1])]}


FIELDS = [("launches", "launches per step", lambda v: f"{v:.0f}"),
          ("gemm_launches", "GEMM launches", lambda v: f"{v:.0f}"),
          ("nongemm_bytes", "non-GEMM bytes", lambda v: f"{v / 1e9:.3f} GB"),
          ("gemm_flops", "GEMM FLOPs", lambda v: f"{v / 1e12:.3f} TFLOP"),
          ("gemm_bytes", "GEMM bytes", lambda v: f"{v / 1e9:.3f} GB"),
          ("model_flops", "model FLOPs", lambda v: f"{v / 1e12:.3f} TFLOP"),
          ("predicted_ms", "predicted step", lambda v: f"{v:.3f} ms"),
          ("mfu", "MFU", lambda v: f"{100 * v:.1f} %")]


def print_model(m):
    print(f"{m['name']}: dim {m['dim']}, {m['layers']} layers, {m['heads']} heads, FFN {m['ffn']}, "
          f"vocab {m['vocab']}, {m['labels']} labels, batch {m['batch']} x {m['seq']}, {m['precision']}, "
          f"on {GPU['name']} ({GPU['bf16_tflops']} TFLOP/s bf16, {GPU['tb_per_s']} TB/s)")
    for key, label, fmt in FIELDS:
        print(f"  {label:<20} {fmt(m[key])}")
    nongemm = [k for k in m["kernels"] if k["name"] not in GEMMS]
    print("  top 15 non-GEMM operators by bytes:")
    print(f"    {'operator':<34} {'launches':>8} {'MB':>9} {'share':>6}")
    for k in nongemm[:15]:
        print(f"    {k['name']:<34} {k['launches']:>8} {k['bytes'] / 1e6:>9.1f} "
              f"{100 * k['bytes'] / m['nongemm_bytes']:>5.1f}%")


def target(key, eager, ours):
    """The issue's target on this row, if it has one, and whether it is met."""
    if key == "mfu":
        return f"ours >= {100 * TARGETS[key]:.0f} %: " + ("met" if ours[key] >= TARGETS[key] else "not met")
    if key in TARGETS:
        ok = ours[key] <= TARGETS[key] * eager[key]
        return f"ours/eager <= 1/{round(1 / TARGETS[key])}: " + ("met" if ok else "not met")
    return ""


def print_side_by_side(eager, ours):
    print(f"  against ours ({ours.get('precision', 'precision not given')}):")
    print(f"    {'':<20} {'eager':>14} {'ours':>14} {'ours/eager':>10}  target")
    for key, label, fmt in FIELDS:
        ratio = f"{ours[key] / eager[key]:.3f}" if eager[key] else "-"
        row = f"    {label:<20} {fmt(eager[key]):>14} {fmt(ours[key]):>14} {ratio:>10}"
        print(f"{row}  {target(key, eager, ours)}".rstrip())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ours", help="bench/step_plan's JSON to compare against")
    ap.add_argument("--json", help="write this side's counts here, in the same shape")
    opts = ap.parse_args()
    torch.set_num_threads(1)
    ours = {}
    if opts.ours:
        with open(opts.ours) as f:
            # against bf16 autocast: our bf16 plan where the file has one (it also plans fp32)
            for m in json.load(f)["models"]:
                if m["name"] not in ours or m.get("precision") == "bf16":
                    ours[m["name"]] = m
    lib = cuda_dispatch_on_cpu()  # noqa: F841 (its kernels stay registered while it lives)
    models = [plan(name) for name in MODELS]
    for m in models:
        print_model(m)
        if m["name"] in ours:
            print_side_by_side(m, ours[m["name"]])
        elif opts.ours:
            print(f"  ({opts.ours} has no model named {m['name']})")
        print()
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump({"gpu": GPU, "models": models}, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
