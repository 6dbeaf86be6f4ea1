"""Writes tests/fixtures/tiny_distilbert_dropout_ref.safetensors: HuggingFace's
DistilBertForSequenceClassification (the tiny fixture model, training mode,
dropout on at every site) run with genre's own dropout masks, so that
tests/model/test_dropout_ref.c (and the CUDA backend's tests) check logits
and every gradient of every layer with dropout on against PyTorch.

The masks are not recomputed here: build/tests/dropout-masks (genre's
dropout op, tests/model/dropout_sites.h) exports them, and every dropout
PyTorch calls in the forward (the nn.Dropout modules and the functional
dropout of the attention probabilities) is replaced, in order, by
x * keep * (1 / (1 - p)) with the next site's mask, after checking that the
site's shape and p are the ones expected. Needs torch and transformers
(not the tests):

    make build/tests/dropout-masks
    python3 tests/reference/make_dropout_fixture.py

The fixture holds the inputs (ids, mask, targets: those of
tiny_distilbert_ref.safetensors), the masks ("mask.<site>"), logits, the BCE
loss and every parameter's gradient ("grad.<hf name>"); its metadata the
probabilities, seed, dropout key and site order.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import load_file, save_file
from transformers import DistilBertForSequenceClassification

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FIX = os.path.join(ROOT, "tests", "fixtures")
TINY = os.path.join(FIX, "tiny_distilbert")
INPUTS = os.path.join(FIX, "tiny_distilbert_ref.safetensors")
OUT = os.path.join(FIX, "tiny_distilbert_dropout_ref.safetensors")
TOOL = os.path.join(ROOT, "build", "tests", "dropout-masks")

# Different at each kind of site, large enough that every mask drops plenty.
P_DROPOUT, P_ATTENTION, P_CLASSIF = 0.2, 0.3, 0.25
SEED, KEY = 123, 4


def genre_masks(B, T):
    if not os.access(TOOL, os.X_OK):
        sys.exit(f"{TOOL} missing: make build/tests/dropout-masks")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "masks.safetensors")
        subprocess.run([TOOL, TINY, str(B), str(T), str(SEED), str(KEY), str(P_DROPOUT),
                        str(P_ATTENTION), str(P_CLASSIF), path], check=True)
        with safe_open(path, "np") as f:
            order = f.metadata()["sites"].split(",")
            masks = {k: f.get_tensor(k) for k in f.keys()}
    return order, masks


class GenreDropout:
    """Stands in for torch.nn.functional.dropout during one forward: each
    call takes the next site's mask, in forward order."""

    def __init__(self, order, masks, probs):
        self.sites = [(name, torch.from_numpy(masks["mask." + name].astype(np.float32)), probs[name])
                      for name in order]
        self.next = 0

    def __call__(self, x, p=0.5, training=True, inplace=False):
        assert training and not inplace, "dropout outside a training forward"
        name, keep, want_p = self.sites[self.next]
        assert abs(p - want_p) < 1e-7, f"site {name}: PyTorch's p {p}, expected {want_p}"
        assert tuple(x.shape) == tuple(keep.shape), f"site {name}: shape {tuple(x.shape)} vs {tuple(keep.shape)}"
        self.next += 1
        # genre: kept x * (1 / (1 - p)) in float32, dropped 0
        scale = np.float32(1) / (np.float32(1) - np.float32(p))
        return x * (keep * torch.tensor(scale, dtype=torch.float32))


def main():
    ref = load_file(INPUTS)
    ids = torch.from_numpy(ref["ids"]).long()
    mask = torch.from_numpy(ref["mask"]).long()
    targets = torch.from_numpy(ref["targets"])
    B, T = ids.shape
    order, masks = genre_masks(B, T)

    model = DistilBertForSequenceClassification.from_pretrained(
        TINY, attn_implementation="eager", dropout=P_DROPOUT, attention_dropout=P_ATTENTION,
        seq_classif_dropout=P_CLASSIF)
    model.train()
    probs = {"emb": P_DROPOUT, "head": P_CLASSIF}
    for l in range(model.config.n_layers):
        probs[f"layer.{l}.attn"] = P_ATTENTION
        probs[f"layer.{l}.ffn"] = P_DROPOUT
    assert order == ["emb"] + [f"layer.{l}.{s}" for l in range(model.config.n_layers)
                               for s in ("attn", "ffn")] + ["head"], order

    stand_in = GenreDropout(order, masks, probs)
    real = torch.nn.functional.dropout
    torch.nn.functional.dropout = stand_in
    try:
        logits = model(input_ids=ids, attention_mask=mask).logits
    finally:
        torch.nn.functional.dropout = real
    assert stand_in.next == len(order), f"PyTorch reached {stand_in.next} of {len(order)} dropout sites"
    loss = torch.nn.BCEWithLogitsLoss()(logits, targets)
    model.zero_grad()
    loss.backward()

    # With dropout off the logits differ: the masks did something.
    with torch.no_grad():
        model.eval()
        plain = model(input_ids=ids, attention_mask=mask).logits
    assert (plain - logits).abs().max() > 1e-2

    out = {"ids": ref["ids"], "mask": ref["mask"], "targets": ref["targets"],
           "logits": logits.detach().numpy().copy(), "loss.bce": np.array([loss.item()], dtype=np.float32)}
    out.update(masks)
    for pname, p in model.named_parameters():
        out["grad." + pname] = p.grad.numpy().copy()
    save_file(out, OUT, metadata={
        "dropout": str(P_DROPOUT), "attention_dropout": str(P_ATTENTION),
        "seq_classif_dropout": str(P_CLASSIF), "seed": str(SEED), "key": str(KEY),
        "sites": ",".join(order)})
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes): loss {loss.item():.6f}, "
          f"max |logits - dropout-off logits| {(plain - logits).abs().max().item():.3g}")


if __name__ == "__main__":
    main()
