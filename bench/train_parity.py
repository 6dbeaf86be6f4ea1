"""Fine-tuning parity: `genre train` against HuggingFace transformers + PyTorch
on the CPU, from the same initial weights, on the same movies in the same
batch order, with the same hyper-parameters, loss, schedule and clipping.

1. Builds the common starting point: all-MiniLM-L6-v2 (BERT names) mapped to a
   DistilBertForSequenceClassification (token_type_embeddings[0] folded into
   the position embeddings, as models/checkpoint.c does; the head initialised
   by transformers under torch.manual_seed(--head-seed)), written with
   save_pretrained, vocab.txt and id2label from labels.txt. Both sides start
   from this directory (genre: init=DIR). Checks that `genre predict` and
   transformers give the same probabilities on a few texts, and that both
   tokenizers give the same ids on every training text.
2. Runs `bin/genre train` (threads: OMP_NUM_THREADS) and reads log.jsonl.
3. Trains the transformers model with torch (torch.set_num_threads) over the
   batches genre used (build/bench/train_plan prints them), validating at the
   steps genre validated.
4. Prints val Jaccard of both (threshold, at-least-one rule, sample Jaccard
   as sklearn's jaccard_score(average="samples")), samples/s of both, and
   writes an SVG of the two loss curves (raw and smoothed).

--seeds 42,1,2 runs one pair per seed (genre's seed: batch order and dropout;
PyTorch's dropout seed) and prints each side's mean and spread: with dropout
on, one run per side is too noisy to compare to 0.02.

--no-dropout writes the starting directory with every dropout at 0, so the
two runs are deterministic and their losses should agree step by step
(up to float rounding that grows with the steps).

    make bench && /work/torchvenv/bin/python bench/train_parity.py \
        [--config configs/train/cpu.json] [--threads 2] [--no-dropout] \
        [--work DIR] [--svg FILE] [--seeds 42,1,2] [key=value ...]   (overrides for both sides)
    /work/torchvenv/bin/python bench/train_parity.py --replot WORK/steps.json --svg FILE
"""
import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time

# Both sides use libgomp: idle threads sleep rather than spin (set before torch).
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402
from sklearn.metrics import jaccard_score, roc_auc_score  # noqa: E402
from transformers import (BertTokenizerFast, DistilBertConfig,  # noqa: E402
                          DistilBertForSequenceClassification,
                          get_linear_schedule_with_warmup)

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
GENRE = os.path.join(ROOT, "bin", "genre")
PLAN = os.path.join(ROOT, "build", "bench", "train_plan")

# BERT (without "bert.") -> DistilBERT names, per layer.
LAYER_MAP = {
    "attention.self.query": "attention.q_lin", "attention.self.key": "attention.k_lin",
    "attention.self.value": "attention.v_lin", "attention.output.dense": "attention.out_lin",
    "attention.output.LayerNorm": "sa_layer_norm", "intermediate.dense": "ffn.lin1",
    "output.dense": "ffn.lin2", "output.LayerNorm": "output_layer_norm",
}


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout


def load_jsonl(path, limit=0):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            rows.append(json.loads(line))
            if limit and len(rows) == limit:
                break
    return rows


def multi_hot(rows, labels):
    index = {name: i for i, name in enumerate(labels)}
    y = np.zeros((len(rows), len(labels)), dtype=np.float32)
    for i, r in enumerate(rows):
        for name in r["labels"]:
            y[i, index[name]] = 1
    return y


def build_init(minilm, labels, out, head_seed, no_dropout):
    """The common starting point, written by transformers' save_pretrained."""
    with open(os.path.join(minilm, "config.json")) as f:
        bc = json.load(f)
    w = {k[5:] if k.startswith("bert.") else k: v
         for k, v in load_file(os.path.join(minilm, "model.safetensors")).items()}
    state = {
        "distilbert.embeddings.word_embeddings.weight": w["embeddings.word_embeddings.weight"],
        "distilbert.embeddings.position_embeddings.weight":
            w["embeddings.position_embeddings.weight"] + w["embeddings.token_type_embeddings.weight"][0],
        "distilbert.embeddings.LayerNorm.weight": w["embeddings.LayerNorm.weight"],
        "distilbert.embeddings.LayerNorm.bias": w["embeddings.LayerNorm.bias"],
    }
    for layer in range(bc["num_hidden_layers"]):
        for b, d in LAYER_MAP.items():
            for kind in ("weight", "bias"):
                state[f"distilbert.transformer.layer.{layer}.{d}.{kind}"] = \
                    w[f"encoder.layer.{layer}.{b}.{kind}"]
    drop = 0.0 if no_dropout else bc["hidden_dropout_prob"]
    cfg = DistilBertConfig(
        vocab_size=bc["vocab_size"], dim=bc["hidden_size"], n_layers=bc["num_hidden_layers"],
        n_heads=bc["num_attention_heads"], hidden_dim=bc["intermediate_size"],
        max_position_embeddings=bc["max_position_embeddings"], activation=bc["hidden_act"],
        dropout=drop, attention_dropout=0.0 if no_dropout else bc["attention_probs_dropout_prob"],
        # transformers' default seq_classif_dropout (0.2) unless dropout is off
        **({"seq_classif_dropout": 0.0} if no_dropout else {}),
        initializer_range=bc["initializer_range"], pad_token_id=bc.get("pad_token_id", 0),
        num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={n: i for i, n in enumerate(labels)}, problem_type="multi_label_classification")
    assert abs(bc.get("layer_norm_eps", 1e-12) - 1e-12) < 1e-15, "DistilBERT's LayerNorm eps is 1e-12"
    torch.manual_seed(head_seed)
    model = DistilBertForSequenceClassification(cfg)
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()},
                                                strict=False)
    assert not unexpected, unexpected
    assert sorted(missing) == sorted(["pre_classifier.weight", "pre_classifier.bias",
                                      "classifier.weight", "classifier.bias"]), missing
    if os.path.isdir(out):
        shutil.rmtree(out)
    model.save_pretrained(out)
    shutil.copy(os.path.join(minilm, "vocab.txt"), os.path.join(out, "vocab.txt"))
    return cfg


def check_init(init, texts, max_len, tok):
    """genre predict against transformers on the same directory: max |dp|."""
    model = DistilBertForSequenceClassification.from_pretrained(init).eval()
    enc = tok(texts, truncation=True, max_length=max_len, padding=True, return_tensors="pt")
    with torch.no_grad():
        p = torch.sigmoid(model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits)
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    out = sh([GENRE, "predict", "--model", init, "--max-len", str(max_len)],
             input="\n".join(texts) + "\n")
    got = np.array([[json.loads(line)["scores"][n] for n in labels] for line in out.splitlines()])
    return float(np.abs(got - p.numpy()).max())


def check_tokens(init, texts, max_len, tok):
    """Movies whose HF ids differ from `genre tokenize --special` (newlines as spaces)."""
    flat = [t.replace("\n", " ").replace("\r", " ") for t in texts]
    out = sh([GENRE, "tokenize", "--vocab", init, "--special", "--max-len", str(max_len)],
             input="\n".join(flat) + "\n")
    ours = [list(map(int, line.split())) for line in out.splitlines()]
    hf = tok(flat, truncation=True, max_length=max_len)["input_ids"]
    return sum(a != b for a, b in zip(ours, hf)) + abs(len(ours) - len(hf))


def loss_fn(cfg, counts, n):
    kind = cfg["loss.type"]
    if kind == "bce":
        return torch.nn.BCEWithLogitsLoss()
    if kind == "bce_logw":
        w = np.log(n / (counts + 1.0))
        w = torch.tensor(w / w.mean(), dtype=torch.float32)
        if cfg["loss.logw_as"] == "pos_weight":
            return torch.nn.BCEWithLogitsLoss(pos_weight=w)
        return torch.nn.BCEWithLogitsLoss(weight=w)
    alpha, gamma = cfg["loss.alpha"], cfg["loss.gamma"]

    def focal(logits, y):  # torchvision.ops.sigmoid_focal_loss, mean
        p = torch.sigmoid(logits)
        ce = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
        p_t = p * y + (1 - p) * (1 - y)
        loss = ce * (1 - p_t) ** gamma
        if alpha >= 0:
            loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
        return loss.mean()
    return focal


def pad_batch(ids, rows):
    T = max(len(ids[i]) for i in rows)
    x = torch.zeros((len(rows), T), dtype=torch.long)
    m = torch.zeros((len(rows), T), dtype=torch.long)
    for r, i in enumerate(rows):
        x[r, :len(ids[i])] = torch.tensor(ids[i])
        m[r, :len(ids[i])] = 1
    return x, m


def probabilities(model, ids, batch):
    """Sigmoid outputs in eval mode, in length-sorted batches."""
    model.eval()
    order = sorted(range(len(ids)), key=lambda i: (len(ids[i]), i))
    probs = np.zeros((len(ids), model.config.num_labels), dtype=np.float32)
    with torch.no_grad():
        for s in range(0, len(order), batch):
            rows = order[s:s + batch]
            x, m = pad_batch(ids, rows)
            probs[rows] = torch.sigmoid(model(input_ids=x, attention_mask=m).logits).numpy()
    model.train()
    return probs


def at_least_one(probs, threshold):
    """Labels above the threshold, the top one where none is."""
    pred = (probs > threshold).astype(np.int8)
    none = pred.sum(1) == 0
    pred[none, probs[none].argmax(1)] = 1
    return pred


def summary(probs, y):
    """What Jaccard at 0.5 cannot show near the label prior: macro ROC-AUC,
    val BCE, the largest probability and how many labels are ever the top one."""
    keep = (y.sum(0) > 0) & (y.sum(0) < len(y))
    p = np.clip(probs, 1e-7, 1 - 1e-7)
    bce = float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())
    return {"auc": float(roc_auc_score(y[:, keep], probs[:, keep], average="macro")), "bce": bce,
            "max_p": float(probs.max()), "top_labels": int(len(set(probs.argmax(1))))}


def train_torch(init, cfg, plan, ids, y, val_ids, val_y, eval_steps, threads, seed):
    torch.set_num_threads(threads)
    torch.manual_seed(seed)  # only the dropout masks: the head comes from init
    model = DistilBertForSequenceClassification.from_pretrained(init).train()
    decay = [p for n, p in model.named_parameters() if not no_decay(n)]
    rest = [p for n, p in model.named_parameters() if no_decay(n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg["weight_decay"]},
                             {"params": rest, "weight_decay": 0.0}],
                            lr=cfg["lr"], betas=(0.9, 0.999), eps=1e-8, foreach=False)
    batch, accum = cfg["batch_size"], cfg["grad_accum"]
    per_epoch = (len(plan[0]) + accum - 1) // accum
    total = per_epoch * cfg["epochs"]
    if 0 < cfg["max_steps"] < total:
        total = cfg["max_steps"]
    warmup = warmup_steps(cfg["warmup_ratio"], total)
    sched = get_linear_schedule_with_warmup(opt, warmup, total)
    lossf = loss_fn(cfg, y.sum(0), len(y))
    log, vals, step = [], [], 0
    for epoch, batches in enumerate(plan):
        for k in range(0, len(batches), accum):
            if step >= total:
                break
            t0 = time.perf_counter()
            micro = batches[k:k + accum]
            opt.zero_grad(set_to_none=False)
            loss_sum = 0.0
            for rows in micro:
                x, m = pad_batch(ids, rows)
                loss = lossf(model(input_ids=x, attention_mask=m).logits, torch.from_numpy(y[rows]))
                (loss / len(micro)).backward()
                loss_sum += loss.item()
            rate = opt.param_groups[0]["lr"]
            norm = (torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["max_grad_norm"]).item()
                    if cfg["max_grad_norm"] > 0 else 0.0)
            opt.step()
            sched.step()
            step += 1
            dt = time.perf_counter() - t0
            log.append({"step": step, "loss": loss_sum / len(micro), "lr": rate, "grad_norm": norm,
                        "samples": sum(map(len, micro)), "seconds": dt})
            if step in eval_steps:
                pred = at_least_one(probabilities(model, val_ids, batch * 2), cfg["threshold"])
                vals.append({"step": step, "jaccard": jaccard_score(val_y, pred, average="samples")})
                print(f"  torch step {step}: val jaccard {vals[-1]['jaccard']:.4f}", flush=True)
            if step % 20 == 0:
                print(f"  torch step {step}/{total} loss {log[-1]['loss']:.4f}", flush=True)
    return log, vals, warmup, total, probabilities(model, val_ids, batch * 2)


def no_decay(name):
    """transformers' Trainer: no weight decay on biases and LayerNorm parameters."""
    return "bias" in name or "LayerNorm" in name or "layer_norm" in name


def warmup_steps(ratio, total):
    """transformers' TrainingArguments.get_warmup_steps for a ratio."""
    return math.ceil(total * ratio)


def smooth(v, k=15):
    out, acc = [], 0.0
    for i, x in enumerate(v):  # exponential moving average, bias-corrected
        acc = acc * (1 - 1 / k) + x / k
        out.append(acc / (1 - (1 - 1 / k) ** (i + 1)))
    return out


def write_svg(path, title, curves):
    """curves: (label, colour, values, width, opacity, dash); x is the step."""
    W, H, l, r, t, b = 760, 420, 60, 20, 40, 50
    n = max(len(c[2]) for c in curves)
    lo = min(min(c[2]) for c in curves)
    hi = max(max(c[2]) for c in curves)
    X = lambda i: l + (W - l - r) * i / max(n - 1, 1)  # noqa: E731
    Y = lambda v: t + (H - t - b) * (hi - v) / ((hi - lo) or 1)  # noqa: E731
    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="14">{title}</text>',
         f'<line x1="{l}" y1="{H - b}" x2="{W - r}" y2="{H - b}" stroke="black"/>',
         f'<line x1="{l}" y1="{t}" x2="{l}" y2="{H - b}" stroke="black"/>',
         f'<text x="{(W + l) / 2}" y="{H - 12}" text-anchor="middle">optimizer step</text>',
         f'<text x="16" y="{H / 2}" transform="rotate(-90 16 {H / 2})" text-anchor="middle">training loss</text>']
    for j in range(6):
        v = lo + (hi - lo) * j / 5
        s.append(f'<text x="{l - 6}" y="{Y(v) + 4:.1f}" text-anchor="end">{v:.3f}</text>')
        s.append(f'<line x1="{l}" y1="{Y(v):.1f}" x2="{W - r}" y2="{Y(v):.1f}" stroke="#ddd"/>')
    for j in range(6):
        i = round((n - 1) * j / 5)
        s.append(f'<text x="{X(i):.1f}" y="{H - b + 16}" text-anchor="middle">{i + 1}</text>')
    for k, (label, colour, vals, width, opacity, dash) in enumerate(curves):
        pts = " ".join(f"{X(i):.1f},{Y(v):.1f}" for i, v in enumerate(vals))
        style = (f'fill="none" stroke="{colour}" stroke-width="{width}" stroke-opacity="{opacity}"'
                 + (f' stroke-dasharray="{dash}"' if dash else ""))
        s.append(f'<polyline {style} points="{pts}"/>')
        s.append(f'<line x1="{W - r - 200}" y1="{t + 12 + 16 * k}" x2="{W - r - 176}" '
                 f'y2="{t + 12 + 16 * k}" {style}/>')
        s.append(f'<text x="{W - r - 170}" y="{t + 16 + 16 * k}">{label}</text>')
    s.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(s) + "\n")


def plot(steps, svg):
    """The loss curves of a steps file this script wrote."""
    with open(steps) as f:
        d = json.load(f)
    gl, tl = [r["loss"] for r in d["genre"]], [r["loss"] for r in d["torch"]]
    write_svg(svg, d.get("title", "Training loss, genre vs transformers+PyTorch"),
              # PyTorch wide underneath, genre dashed on top: where they coincide both show.
              [("PyTorch", "#d62728", tl, 2, 0.35, ""), ("genre", "#1f77b4", gl, 1, 0.6, "3 2"),
               ("PyTorch (EMA 15)", "#d62728", smooth(tl), 4, 0.8, ""),
               ("genre (EMA 15)", "#1f77b4", smooth(gl), 1.8, 1, "6 3")])


def load_avg():
    return os.getloadavg()[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=os.path.join(ROOT, "configs", "train", "cpu.json"))
    ap.add_argument("--data", help="prepared data directory (default: genre prepare of $GENRE_DATA into WORK/data)")
    ap.add_argument("--work", default=os.path.join(ROOT, "runs", "parity"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--head-seed", type=int, default=0)
    ap.add_argument("--torch-seed", type=int, help="PyTorch's dropout seed (default: the config's seed)")
    ap.add_argument("--reuse-genre", action="store_true",
                    help="keep genre's run from an earlier call on WORK (e.g. to vary --torch-seed)")
    ap.add_argument("--no-dropout", action="store_true")
    ap.add_argument("--seeds", help="comma-separated seeds: one pair of runs per seed (genre's seed=S, PyTorch's "
                    "dropout seed S, genre's batch order), then the mean and spread of each side")
    ap.add_argument("--svg", help="loss curves (default WORK/loss.svg)")
    ap.add_argument("overrides", nargs="*", help="key=value for both sides (genre's config keys)")
    ap.add_argument("--replot", metavar="STEPS_JSON", help="only redraw the SVG (--svg) of a saved run")
    a = ap.parse_args()
    if a.replot:
        plot(a.replot, a.svg or os.path.splitext(a.replot)[0] + ".svg")
        return 0
    os.makedirs(a.work, exist_ok=True)
    minilm = os.path.join(ROOT, sh([os.path.join(ROOT, "models", "fetch-minilm")], cwd=ROOT).strip())
    data = a.data or os.path.join(a.work, "data")
    if not a.data:
        src = os.environ.get("GENRE_DATA", "/work/shared/data/movies")
        sh([GENRE, "prepare", "--data", src, "--out", data])
    with open(os.path.join(data, "labels.txt")) as f:
        labels = [line.strip() for line in f if line.strip()]

    init = os.path.join(a.work, "init_nodrop" if a.no_dropout else "init")
    build_init(minilm, labels, init, a.head_seed, a.no_dropout)
    # The MiniLM tokenizer as transformers loads it (BERT uncased WordPiece).
    tok = BertTokenizerFast.from_pretrained(minilm)

    seeds = [int(x) for x in a.seeds.split(",")] if a.seeds else [None]
    finals = [run_pair(a, data, init, labels, tok, seed) for seed in seeds]
    if len(finals) > 1:
        g = np.array([f[0] for f in finals])
        t = np.array([f[1] for f in finals])
        print()
        print("seed  genre val jaccard  torch val jaccard")
        for seed, (gj, tj) in zip(seeds, finals):
            print(f"{seed:4d}  {gj:.4f}             {tj:.4f}")
        d = g.mean() - t.mean()
        print(f"over {len(seeds)} seeds: genre {g.mean():.4f} +- {g.std(ddof=1):.4f} (min {g.min():.4f}, max "
              f"{g.max():.4f}); torch {t.mean():.4f} +- {t.std(ddof=1):.4f} (min {t.min():.4f}, max {t.max():.4f}); "
              f"difference of means {d:+.4f} ({'within' if abs(d) <= 0.02 else 'OUTSIDE'} 0.02), its standard "
              f"error {math.sqrt(g.var(ddof=1) / len(g) + t.var(ddof=1) / len(t)):.4f}")
    return 0


def run_pair(a, data, init, labels, tok, seed):
    """Trains genre, then PyTorch on genre's batches; prints the comparison and
    returns the final val Jaccards (genre, torch). seed (None: the config's)
    sets genre's seed (batch order, dropout) and PyTorch's dropout seed."""
    # genre first: its resolved config.json is the one both sides follow.
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    tag = ("_nodrop" if a.no_dropout else "") + ("" if seed is None else f"_s{seed}")
    run = os.path.join(a.work, "genre" + tag)
    overrides = [*a.overrides, *([] if seed is None else [f"seed={seed}"])]
    cmd = [GENRE, "train", "--config", a.config, "--out", run, f"data={data}", f"init={init}", *overrides]
    print("genre:", " ".join(cmd), flush=True)
    load0 = load_avg()
    t0 = time.perf_counter()
    if not (a.reuse_genre and os.path.exists(os.path.join(run, "metrics.json"))):
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    genre_wall = time.perf_counter() - t0
    load1 = load_avg()
    with open(os.path.join(run, "config.json")) as f:
        cfg = json.load(f)
    cfg = {**cfg, **{f"loss.{k}": v for k, v in cfg.get("loss", {}).items()}}
    assert not cfg.get("oversample"), "train_plan does not cover oversampling"
    glog = load_jsonl(os.path.join(run, "log.jsonl"))
    gsteps = [r for r in glog if "loss" in r]
    gvals = [{"step": r["step"], "jaccard": r["val"]["jaccard"]} for r in glog if "val" in r]
    with open(os.path.join(run, "metrics.json")) as f:
        gmetrics = json.load(f)

    train = load_jsonl(os.path.join(data, "train.jsonl"), cfg["limit_train"])
    val = load_jsonl(os.path.join(data, "val.jsonl"), cfg["limit_eval"])
    max_len = cfg["max_len"]
    out = sh([PLAN, data, init, str(cfg["limit_train"]), str(max_len), str(cfg["batch_size"]),
              str(cfg["seed"]), str(cfg["length_window"]), str(cfg["epochs"])])
    lines = [json.loads(x) for x in out.splitlines()]
    plan = [x["batches"] for x in lines if "batches" in x]
    ids = tok([r["text"] for r in train], truncation=True, max_length=max_len)["input_ids"]
    val_ids = tok([r["text"] for r in val], truncation=True, max_length=max_len)["input_ids"]
    assert [len(x) for x in ids] == lines[-1]["lengths"], "token counts differ from genre's"
    bad = check_tokens(init, [r["text"] for r in train], max_len, tok)
    dp = check_init(init, [r["text"] for r in val[:8]], max_len, tok)
    print(f"tokens: {bad} of {len(train)} training texts differ from genre's; "
          f"init: max |p_genre - p_transformers| = {dp:.2e} on 8 val texts (predict prints 4 decimals)",
          flush=True)

    y, val_y = multi_hot(train, labels), multi_hot(val, labels)
    load2 = load_avg()
    t0 = time.perf_counter()
    tlog, tvals, warmup, total, tprobs = train_torch(init, cfg, plan, ids, y, val_ids, val_y.astype(np.int8),
                                             {v["step"] for v in gvals}, a.threads,
                                                     cfg["seed"] if a.torch_seed is None or seed is not None
                                                     else a.torch_seed)
    torch_wall = time.perf_counter() - t0
    load3 = load_avg()

    # Samples/s over the optimizer steps only (validation excluded), both sides.
    # genre logs samples/s per step; its steps saw the same batches as torch's.
    g_time = sum(t["samples"] / r["samples_per_s"] for r, t in zip(gsteps, tlog))
    g_sps = sum(t["samples"] for t in tlog) / g_time
    t_sps = sum(t["samples"] for t in tlog) / sum(t["seconds"] for t in tlog)
    gl = np.array([r["loss"] for r in gsteps])
    tl = np.array([r["loss"] for r in tlog])
    glr = np.array([r["lr"] for r in gsteps])
    tlr = np.array([r["lr"] for r in tlog])
    gn = np.array([r["grad_norm"] for r in gsteps])
    tn = np.array([r["grad_norm"] for r in tlog])
    assert len(gl) == len(tl), (len(gl), len(tl))
    gj, tj = gvals[-1]["jaccard"], tvals[-1]["jaccard"]

    print()
    print(f"machine: {platform.machine()} {os.cpu_count()} CPUs, {platform.platform()}; "
          f"torch {torch.__version__}, threads {a.threads} each (OMP_NUM_THREADS / set_num_threads)")
    print(f"load average (1 min): genre {load0:.1f}->{load1:.1f}, torch {load2:.1f}->{load3:.1f}")
    print(f"config: {os.path.relpath(a.config, ROOT)} {' '.join(overrides)}"
          f"{' dropout off' if a.no_dropout else ''}: {cfg['limit_train']} movies, {cfg['epochs']} epoch(s), "
          f"{total} steps, batch {cfg['batch_size']}x{cfg['grad_accum']}, max_len {max_len}, lr {cfg['lr']}, "
          f"warmup {warmup} steps (torch, Trainer's ceil), loss {cfg['loss.type']}")
    print(f"step 1 loss: genre {gl[0]:.6f} torch {tl[0]:.6f} (diff {gl[0] - tl[0]:+.2e}); "
          f"grad norm genre {gn[0]:.6f} torch {tn[0]:.6f}")
    print(f"lr: max |genre - torch| over the steps = {np.abs(glr - tlr).max():.3g}")
    for lo, hi in ((0, 10), (10, 50), (50, len(gl))):
        if lo < len(gl):
            print(f"loss steps {lo + 1}-{min(hi, len(gl))}: mean genre {gl[lo:hi].mean():.4f} torch "
                  f"{tl[lo:hi].mean():.4f}, mean |diff| {np.abs(gl[lo:hi] - tl[lo:hi]).mean():.2e}, "
                  f"max |diff| {np.abs(gl[lo:hi] - tl[lo:hi]).max():.2e}")
    print(f"grad norm: max relative |genre - torch| over the steps = {(np.abs(gn - tn) / tn).max():.2e}")
    print(f"final loss (mean of last 20 steps): genre {gl[-20:].mean():.4f} torch {tl[-20:].mean():.4f}")
    for g, t in zip(gvals, tvals):
        print(f"val jaccard at step {g['step']}: genre {g['jaccard']:.4f} torch {t['jaccard']:.4f}")
    print(f"final val jaccard: genre {gj:.4f} torch {tj:.4f} diff {gj - tj:+.4f} "
          f"({'within' if abs(gj - tj) <= 0.02 else 'OUTSIDE'} 0.02); genre best (metrics.json) "
          f"{gmetrics['val']['jaccard']:.4f}")
    # genre's final model scored by the same code (its best/ is a transformers directory).
    gprobs = probabilities(DistilBertForSequenceClassification.from_pretrained(os.path.join(run, "best")),
                           val_ids, 2 * cfg["batch_size"])
    gs, ts = summary(gprobs, val_y), summary(tprobs, val_y)
    print(f"val macro ROC-AUC: genre {gs['auc']:.4f} torch {ts['auc']:.4f}; val BCE: genre {gs['bce']:.4f} "
          f"torch {ts['bce']:.4f}; largest probability: genre {gs['max_p']:.3f} torch {ts['max_p']:.3f}; "
          f"labels ever on top: genre {gs['top_labels']} torch {ts['top_labels']}; "
          f"mean |p_genre - p_torch| {np.abs(gprobs - tprobs).mean():.2e} "
          f"(genre's best/ against torch's last step: the same model when val runs once)")
    print(f"samples/s (optimizer steps only): genre {g_sps:.1f} torch {t_sps:.1f} "
          f"genre/torch {g_sps / t_sps:.2f}x; wall incl. validation: genre {genre_wall:.0f} s "
          f"(process, incl. test eval and report) torch {torch_wall:.0f} s")
    if seed is None and a.torch_seed is not None:
        tag += f"_seed{a.torch_seed}"
    svg = a.svg if a.svg and seed is None else os.path.join(a.work, f"loss{tag}.svg")
    title = (f"Training loss, genre vs transformers+PyTorch ({cfg['loss.type']}, lr {cfg['lr']:g}, "
             f"{total} steps{', dropout off' if a.no_dropout else ''})")
    steps = os.path.join(a.work, f"steps{tag}.json")
    with open(steps, "w") as f:
        json.dump({"title": title, "genre": gsteps, "torch": tlog, "genre_val": gvals, "torch_val": tvals}, f)
    plot(steps, svg)
    print(f"loss curves: {svg}; per-step logs: {steps}")
    return gj, tj


if __name__ == "__main__":
    sys.exit(main())
