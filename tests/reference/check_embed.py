"""`genre embed` on all-MiniLM-L6-v2 against the hidden states transformers
wrote (tests/fixtures/minilm_cls.safetensors, by make_model_fixtures.py):
[CLS] and masked-mean pooling to 1e-4. This runs the whole path: tokenizer,
checkpoint loading (BERT names, token types folded) and the forward pass.
Skips (exit 77, which tests/run counts and prints, and under CI=true fails)
when $GENRE_MINILM holds no model."""
import json
import os
import subprocess
import sys

import numpy as np
from safetensors import safe_open

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
model = os.environ.get("GENRE_MINILM", "")
if not os.path.exists(os.path.join(model, "model.safetensors")):
    print(f"check_embed: skipped: set-up dependency missing: GENRE_MINILM={model!r} has no "
          "model.safetensors (models/fetch-minilm)")
    sys.exit(77)
with safe_open(os.path.join(ROOT, "tests/fixtures/minilm_cls.safetensors"), "np") as f:
    texts = json.loads(f.metadata()["texts"])
    want = {k: f.get_tensor(k) for k in ("cls", "mean")}
worst = 0.0
for pool in ("cls", "mean"):
    out = subprocess.run([os.path.join(ROOT, "bin/genre"), "embed", "--model", model, "--pool", pool],
                         input="\n".join(texts) + "\n", capture_output=True, text=True, check=True)
    got = np.array([[float(x) for x in line.split()] for line in out.stdout.splitlines()])
    assert got.shape == want[pool].shape, (got.shape, want[pool].shape)
    err = np.abs(got - want[pool]).max()
    print(f"check_embed: --pool {pool}: max |genre - transformers| = {err:.3g} over {len(texts)} texts")
    worst = max(worst, err)
sys.exit(0 if worst < 1e-4 else 1)
