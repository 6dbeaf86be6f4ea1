"""Writes the fixtures the C model tests compare against (needs torch and
transformers; the tests themselves do not):

tests/fixtures/tiny_distilbert/          a tiny DistilBertForSequenceClassification,
                                         written by save_pretrained
tests/fixtures/tiny_distilbert_ref.safetensors
    inputs (ids, mask, targets, label counts), logits, the losses
    (bce, bce_logw as pos_weight and as weight, focal, asymmetric loss, and
    bce, focal and asl with class-balanced weights "cbw"), every parameter's
    gradient under each loss ("grad.<loss>.<hf name>"), and the losses and
    parameters after 3 AdamW steps with warmup and clipping ("adamw.*").
tests/fixtures/minilm_cls.safetensors    (when $GENRE_MINILM is set)
    all-MiniLM-L6-v2 token ids, mask, [CLS] and masked-mean final hidden
    states for 5 plot descriptions written for this test (the texts are in
    its metadata, for tests/reference/check_embed.py).

Dropout is off so everything is deterministic.

    python3 tests/reference/make_model_fixtures.py            # regenerate
    python3 tests/reference/make_model_fixtures.py --check-saved DIR
        loads DIR (written by `genre`'s saver from the tiny model) with
        transformers and checks its logits against the fixture.
"""
import json
import os
import sys

import numpy as np
import torch
from safetensors.numpy import load_file, save_file
from transformers import (AutoTokenizer, BertModel, DistilBertConfig,
                          DistilBertForSequenceClassification,
                          get_linear_schedule_with_warmup)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
FIX = os.path.join(ROOT, "tests", "fixtures")
TINY = os.path.join(FIX, "tiny_distilbert")
REF = os.path.join(FIX, "tiny_distilbert_ref.safetensors")

B, T, L = 3, 8, 5
LENGTHS = [8, 5, 3]
ADAM = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
WARMUP, TOTAL, STEPS, MAX_NORM = 1, 4, 3, 0.5
ALPHA, GAMMA = 0.375, 2.0
GAMMA_POS, GAMMA_NEG, CLIP = 0.0, 4.0, 0.05
CB_BETA = 0.99


def focal(logits, y, alpha=ALPHA, gamma=GAMMA):
    """torchvision.ops.sigmoid_focal_loss, mean reduction (same formula)."""
    p = torch.sigmoid(logits)
    ce = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * ((1 - p_t) ** gamma)
    alpha_t = alpha * y + (1 - alpha) * (1 - y)
    return (alpha_t * loss).mean()


def asl(logits, y, gamma_pos=GAMMA_POS, gamma_neg=GAMMA_NEG, clip=CLIP, eps=1e-8, weight=None):
    """AsymmetricLoss of Ridnik et al.'s official code (github.com/Alibaba-MIIL/ASL,
    losses.py) with disable_torch_grad_focal_loss=False, mean instead of sum."""
    xs_pos = torch.sigmoid(logits)
    xs_neg = 1 - xs_pos
    if clip > 0:
        xs_neg = (xs_neg + clip).clamp(max=1)
    loss = y * torch.log(xs_pos.clamp(min=eps)) + (1 - y) * torch.log(xs_neg.clamp(min=eps))
    pt = xs_pos * y + xs_neg * (1 - y)
    loss = loss * torch.pow(1 - pt, gamma_pos * y + gamma_neg * (1 - y))
    if weight is not None:
        loss = loss * weight
    return -loss.mean()


def class_balanced(counts, beta=CB_BETA):
    """Cui et al. 2019: (1 - beta) / (1 - beta^n) per label (n = 0 counted as 1), mean 1."""
    n = torch.clamp(counts.double(), min=1)
    w = (1 - beta) / (1 - torch.pow(torch.tensor(beta, dtype=torch.float64), n))
    return (w / w.mean()).float()


def inputs():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 100, (B, T), generator=g)
    mask = torch.zeros(B, T, dtype=torch.long)
    for b, n in enumerate(LENGTHS):
        mask[b, :n] = 1
        ids[b, n:] = 0
    targets = torch.randint(0, 2, (B, L), generator=g).float()
    counts = torch.tensor([3, 40, 0, 12, 7])
    n_examples = 50
    w = torch.log(n_examples / (counts.double() + 1))
    w = (w / w.mean()).float()
    return ids, mask, targets, counts, n_examples, w


def tiny_model():
    torch.manual_seed(0)
    cfg = DistilBertConfig(vocab_size=100, dim=32, n_layers=2, n_heads=4, hidden_dim=37,
                           max_position_embeddings=16, num_labels=L, dropout=0.0,
                           attention_dropout=0.0, seq_classif_dropout=0.0,
                           problem_type="multi_label_classification")
    cfg._attn_implementation = "eager"
    model = DistilBertForSequenceClassification(cfg)
    # Larger than the 0.02 init so every path carries signal.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name or "layer_norm" in name:
                p.add_(0.1 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(0.2 * torch.randn_like(p))
    model.eval()
    return model


def losses(logits, targets, w, cbw):
    return {
        "bce": torch.nn.BCEWithLogitsLoss()(logits, targets),
        "bce_logw": torch.nn.BCEWithLogitsLoss(pos_weight=w)(logits, targets),
        "bce_logw_weight": torch.nn.BCEWithLogitsLoss(weight=w)(logits, targets),
        "focal": focal(logits, targets),
        "asl": asl(logits, targets),
        "bce_cb": torch.nn.BCEWithLogitsLoss(weight=cbw)(logits, targets),
        "focal_cb": focal_weighted(logits, targets, cbw),
        "asl_cb": asl(logits, targets, weight=cbw),
    }


def focal_weighted(logits, y, weight):
    """focal with every element of label c multiplied by weight[c]."""
    p = torch.sigmoid(logits)
    ce = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    alpha_t = ALPHA * y + (1 - ALPHA) * (1 - y)
    return (weight * alpha_t * ce * ((1 - p_t) ** GAMMA)).mean()


def make_tiny():
    model = tiny_model()
    model.save_pretrained(TINY)
    ids, mask, targets, counts, n_examples, w = inputs()
    out = {"ids": ids.int().numpy(), "mask": mask.int().numpy(), "targets": targets.numpy(),
           "label_counts": counts.long().numpy(), "n_examples": np.array([n_examples]),
           "logw": w.numpy(), "cbw": class_balanced(counts).numpy()}
    logits = model(input_ids=ids, attention_mask=mask).logits
    out["logits"] = logits.detach().numpy()
    for name, loss in losses(logits, targets, w, class_balanced(counts)).items():
        model.zero_grad()
        out["loss." + name] = np.array([loss.item()], dtype=np.float32)
        loss.backward(retain_graph=True)
        for pname, p in model.named_parameters():
            out[f"grad.{name}.{pname}"] = p.grad.numpy().copy()

    # AdamW with HuggingFace Trainer's parameter groups, warmup, clipping.
    no_decay = lambda n: n.endswith("bias") or "LayerNorm" in n or "layer_norm" in n
    groups = [
        {"params": [p for n, p in model.named_parameters() if not no_decay(n)]},
        {"params": [p for n, p in model.named_parameters() if no_decay(n)], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, foreach=False, **ADAM)
    sched = get_linear_schedule_with_warmup(opt, WARMUP, TOTAL)
    step_losses, norms = [], []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = torch.nn.BCEWithLogitsLoss()(model(input_ids=ids, attention_mask=mask).logits,
                                            targets)
        loss.backward()
        norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_NORM).item())
        opt.step()
        sched.step()
        step_losses.append(loss.item())
    assert min(norms) > MAX_NORM, "clipping must be exercised"
    out["adamw.losses"] = np.array(step_losses, dtype=np.float32)
    out["adamw.grad_norms"] = np.array(norms, dtype=np.float32)
    for pname, p in model.named_parameters():
        out["adamw." + pname] = p.detach().numpy().copy()
    save_file(out, REF, metadata={
        "lr": str(ADAM["lr"]), "weight_decay": str(ADAM["weight_decay"]),
        "warmup": str(WARMUP), "total": str(TOTAL), "max_norm": str(MAX_NORM),
        "asl": f"gamma_pos={GAMMA_POS} gamma_neg={GAMMA_NEG} clip={CLIP}", "cb_beta": str(CB_BETA)})
    print(f"wrote {TINY} and {REF} ({os.path.getsize(REF)} bytes)")


# Written for this test (not from the data set), in the style of the descriptions.
TEXTS = [
    "A retired detective is pulled back into one last case when a string of murders "
    "echoes the crime that ended his career.",
    "Two sisters inherit a crumbling farmhouse and discover that the orchard hides a "
    "portal to a kingdom at war.",
    "An aging boxer trains a stubborn teenager from his neighborhood for the fight of "
    "her life.",
    "During the winter of 1944, a small platoon must hold a bridge against overwhelming odds.",
    "A lonely robot on a deserted space station learns to paint... <more>",
]


def make_minilm(path):
    tok = AutoTokenizer.from_pretrained(path)
    model = BertModel.from_pretrained(path, add_pooling_layer=False,
                                      attn_implementation="eager").eval()
    enc = tok(TEXTS, padding=True, truncation=True, max_length=64, return_tensors="pt")
    with torch.no_grad():
        h = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
    m = enc["attention_mask"].unsqueeze(-1).float()
    mean = (h * m).sum(1) / m.sum(1)
    dst = os.path.join(FIX, "minilm_cls.safetensors")
    save_file({"ids": enc["input_ids"].int().numpy(), "mask": enc["attention_mask"].int().numpy(),
               "cls": h[:, 0].numpy().copy(), "mean": mean.numpy()}, dst,
              metadata={"texts": json.dumps(TEXTS)})
    print(f"wrote {dst}")


def check_saved(d):
    ref = load_file(REF)
    model = DistilBertForSequenceClassification.from_pretrained(d, attn_implementation="eager").eval()
    ids = torch.from_numpy(ref["ids"]).long()
    mask = torch.from_numpy(ref["mask"]).long()
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits.numpy()
    err = np.abs(logits - ref["logits"]).max()
    print(f"{d}: transformers reload, max |logits - fixture| = {err:.3g}")
    assert model.config.problem_type == "multi_label_classification"
    assert err < 1e-5, err


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check-saved":
        check_saved(sys.argv[2])
        sys.exit(0)
    make_tiny()
    if os.environ.get("GENRE_MINILM"):
        make_minilm(os.environ["GENRE_MINILM"])
