"""The TensorBoard event files of `genre train` read by TensorBoard itself
(tensorboard's EventAccumulator, the reader behind `tensorboard --logdir`)
against the run's log.jsonl: every scalar tag, every step once, the log's
value. Two runs on the tiny fixture model (tests/fixtures/tiny_distilbert)
and a synthetic dataset: one uninterrupted, and one stopped by an injected
failure at step 8 (checkpoint at step 5) and resumed, whose events span two
files. purge_orphaned_data=False: a step written twice (a resume that
repeated steps) shows up here as two events instead of being hidden by
TensorBoard's purge of out-of-order steps."""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
GENRE = os.path.join(ROOT, "bin/genre")
TINY = os.path.join(ROOT, "tests/fixtures/tiny_distilbert")
NAMES = ["Alpha", "Beta", "Gamma"]

# tag -> (key path in a log.jsonl line, absolute tolerance: half the last
# decimal the log prints; lr and the validation metrics are printed to 6
# significant digits instead, a relative 5e-6).
STEP_TAGS = {"train/loss": (("loss",), 5e-7), "train/lr": (("lr",), 0.0),
             "train/grad_norm": (("grad_norm",), 5e-7), "train/samples_per_s": (("samples_per_s",), 5e-3)}
VAL_TAGS = {"val/jaccard": ("jaccard",), "val/f1": ("f1",), "val/micro_f1": ("micro", "f1"),
            "val/macro_f1": ("macro", "f1"), "val/hamming": ("hamming",), "val/accuracy": ("accuracy",)}


def make_inputs(tmp):
    """The fixture model with a 100-token vocabulary, and a dataset whose
    genres follow from its words (w0..w29 Alpha, w30..w59 Beta, ...)."""
    init, data = os.path.join(tmp, "init"), os.path.join(tmp, "data")
    os.makedirs(init)
    os.makedirs(data)
    for f in ("config.json", "model.safetensors"):
        shutil.copy(os.path.join(TINY, f), init)
    with open(os.path.join(init, "vocab.txt"), "w") as f:
        f.write("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n" + "".join(f"w{i}\n" for i in range(95)))
    with open(os.path.join(data, "labels.txt"), "w") as f:
        f.write("\n".join(NAMES) + "\n")
    rng = random.Random(5)
    for part, n in (("train", 48), ("val", 12), ("test", 12)):
        with open(os.path.join(data, f"{part}.jsonl"), "w") as f:
            for i in range(n):
                g, g2 = i % 3, (i // 3) % 3
                words = [f"w{30 * (g if w < 4 else g2) + rng.randrange(30)}" for w in range(6)]
                labels = sorted({NAMES[g], NAMES[g2]})
                f.write(json.dumps({"title": f"m{i}", "year": 2000, "text": " ".join(words), "labels": labels}) + "\n")
    return init, data


def train(args, env=None):
    run = subprocess.run([GENRE, "train"] + args, capture_output=True, text=True,
                         env=dict(os.environ, **(env or {})))
    return run.returncode, run.stderr


def log_value(line, path):
    for k in path:
        line = line[k]
    return float(line)


def compare(run):
    """Failures (strings) of run's tb/ against its log.jsonl."""
    steps, vals = {}, {}
    with open(os.path.join(run, "log.jsonl")) as f:
        for raw in f:
            line = json.loads(raw)
            (vals if "val" in line else steps)[line["step"]] = line.get("val", line)
    acc = EventAccumulator(os.path.join(run, "tb"), size_guidance={"scalars": 0}, purge_orphaned_data=False)
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    want_tags = set(STEP_TAGS) | set(VAL_TAGS)
    fails = [] if tags == want_tags else [f"{run}: tags {sorted(tags)}, expected {sorted(want_tags)}"]
    for tag in sorted(tags & want_tags):
        events = acc.Scalars(tag)
        rows = steps if tag in STEP_TAGS else vals
        path, tol = STEP_TAGS[tag] if tag in STEP_TAGS else (VAL_TAGS[tag], 0.0)
        rel = 5e-6 if tol == 0.0 else 2e-7  # 2e-7: float32's rounding of the value
        got = [e.step for e in events]
        if got != sorted(rows):
            fails.append(f"{run}: {tag}: steps {got}, log.jsonl has {sorted(rows)}")
            continue
        for e in events:
            want = log_value(rows[e.step], path)
            if abs(e.value - want) > tol + rel * abs(want):
                fails.append(f"{run}: {tag} at step {e.step}: {e.value!r}, log.jsonl {want!r}")
    return fails, sum(len(acc.Scalars(t)) for t in tags)


def main():
    if not os.access(GENRE, os.X_OK):
        print("check_tensorboard: bin/genre is not built")
        return 1
    tmp = tempfile.mkdtemp(prefix="genre-check-tb-")
    try:
        init, data = make_inputs(tmp)
        common = [f"data={data}", f"init={init}", "max_len=16", "batch_size=4", "epochs=2", "lr=3e-3", "seed=7",
                  "loss.type=bce", "eval_every=5", "checkpoint_every=5"]
        whole, cut = os.path.join(tmp, "whole"), os.path.join(tmp, "cut")
        rc, err = train(["--out", whole] + common)
        if rc != 0:
            print(f"check_tensorboard: train failed: {err}")
            return 1
        rc, err = train(["--out", cut] + common, {"GENRE_FAILPOINT": "backend_step:8"})
        if rc != 1 or "injected failure" not in err:
            print(f"check_tensorboard: the run meant to fail at step 8 ended with {rc}: {err}")
            return 1
        rc, err = train(["--resume", cut])
        if rc != 0:
            print(f"check_tensorboard: resume failed: {err}")
            return 1
        fails = []
        for run in (whole, cut):
            f, n = compare(run)
            files = sorted(os.listdir(os.path.join(run, "tb")))
            print(f"check_tensorboard: {os.path.basename(run)}: {n} scalars in {len(files)} file(s) against "
                  f"log.jsonl: {'ok' if not f else f'{len(f)} differences'}")
            fails += f
        if len(os.listdir(os.path.join(cut, "tb"))) != 2:
            fails.append(f"{cut}/tb: expected the first file and the resumed one")
        for f in fails[:20]:
            print(f"check_tensorboard: {f}")
        return 1 if fails else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


sys.exit(main())
