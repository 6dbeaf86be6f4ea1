"""PyTorch's own ops on the shapes and byte counts of bench/kernels_bench.c,
timed the same way (CUDA events, median of 7 batches of 20 calls after a
warm-up), printing the same Markdown table. Softmax forward is what
HuggingFace's DistilBERT runs: scale, masked_fill with finfo.min, softmax.
The backwards call ATen's backward kernels directly, as autograd would.
Run by `make test-gpu` right after build/bench/kernels_bench, same GPU."""
import datetime
import statistics

import torch

BATCH, SEQ, DIM, HEADS = 32, 128, 768, 12
WARMUP, CALLS, BATCHES = 5, 20, 7
LN_ROWS, SM_ROWS = BATCH * SEQ, BATCH * HEADS * SEQ
SCALE = 0.125


def time_ms(fn):
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for _ in range(WARMUP):
        fn()
    times = []
    for _ in range(BATCHES):
        start.record()
        for _ in range(CALLS):
            fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop) / CALLS)
    return statistics.median(times)


def cases(dev, dtype, size, name):
    """The timed calls for one dtype (closures over this call's tensors)."""
    rows = []
    x = torch.rand(LN_ROWS, DIM, device=dev, dtype=dtype) + 1
    dy = torch.rand_like(x)
    w = torch.rand(DIM, device=dev, dtype=dtype) + 0.5
    b = torch.rand(DIM, device=dev, dtype=dtype)
    _, mean, rstd = torch.ops.aten.native_layer_norm(x, [DIM], w, b, 1e-12)
    n = LN_ROWS * DIM
    params, stats = 2 * DIM * 4, 2 * LN_ROWS * 4
    rows.append(("layernorm forward", name, f"{LN_ROWS} x {DIM}", n * size * 2 + params + stats,
                 lambda: torch.ops.aten.native_layer_norm(x, [DIM], w, b, 1e-12)))
    rows.append(("layernorm backward", name, f"{LN_ROWS} x {DIM}", n * size * 4 + 3 * params + stats,
                 lambda: torch.ops.aten.native_layer_norm_backward(
                     dy, x, [DIM], mean, rstd, w, b, [True, True, True])))
    s = torch.rand(BATCH, HEADS, SEQ, SEQ, device=dev, dtype=dtype)
    keep = torch.arange(SEQ, device=dev) < SEQ * 3 // 4
    masked = (~keep).view(1, 1, 1, SEQ).expand(BATCH, 1, 1, SEQ)
    minval = torch.finfo(dtype).min
    y = torch.softmax((s * SCALE).masked_fill(masked, minval), dim=-1)
    dys = torch.rand_like(y)
    m = SM_ROWS * SEQ
    rows.append(("softmax forward (scale, mask)", name, f"{SM_ROWS} x {SEQ}", m * size * 2 + BATCH * SEQ * 4,
                 lambda: torch.softmax((s * SCALE).masked_fill(masked, minval), dim=-1)))
    rows.append(("softmax backward", name, f"{SM_ROWS} x {SEQ}", m * size * 4,
                 lambda: torch.ops.aten._softmax_backward_data(dys, y, -1, dtype)))
    g = torch.rand(LN_ROWS, 4 * DIM, device=dev, dtype=dtype)
    rows.append(("gelu forward", name, f"{LN_ROWS} x {4 * DIM}", LN_ROWS * 4 * DIM * size * 2,
                 lambda: torch.nn.functional.gelu(g)))
    return rows


def main():
    dev = torch.device("cuda")
    props = torch.cuda.get_device_properties(dev)
    rows = []
    for dtype, size, name in ((torch.float32, 4, "fp32"), (torch.bfloat16, 2, "bf16")):
        rows += cases(dev, dtype, size, name)
    order = ["layernorm forward", "layernorm backward", "softmax forward (scale, mask)",
             "softmax backward", "gelu forward"]
    rows.sort(key=lambda r: (order.index(r[0]), r[1] != "fp32"))
    # Peak bandwidth as the CUDA benchmark computes it, when torch exposes the fields.
    clock = getattr(props, "memory_clock_rate", None)
    bus = getattr(props, "memory_bus_width", None)
    peak = 2.0 * clock * 1e3 * bus / 8 / 1e9 if clock and bus else None
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"PyTorch {torch.__version__}, {now}, {props.name}"
          + (f", peak memory bandwidth {peak:.0f} GB/s" if peak else "") + "\n")
    print("| op | dtype | shape | us per call | GB/s | of peak |\n|---|---|---|---|---|---|")
    for op, name, shape, nbytes, fn in rows:
        ms = time_ms(fn)
        gbs = nbytes / (ms * 1e-3) / 1e9
        share = f"{100 * gbs / peak:.0f}%" if peak else "n/a"
        print(f"| {op} | {name} | {shape} | {ms * 1e3:.1f} | {gbs:.0f} | {share} |")


if __name__ == "__main__":
    main()
