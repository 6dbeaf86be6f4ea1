"""genre baseline against scikit-learn (and gensim), side by side in one run.

On the real data, prepared by `bin/genre prepare`:
  1. logistic regression (bag-of-words and tf-idf): `bin/genre baseline`
     against OneVsRestClassifier(LogisticRegression(solver="liblinear")) on
     the same words (HF BertPreTokenizer + BertNormalizer, the reference of
     our basic_tokenize, then the same >= 2 characters filter), same split,
     same C; both single-threaded (OMP_NUM_THREADS=1 / threads=1, n_jobs=1).
     Prints both metric sets and the fit-time ratio. Times are CPU seconds
     of the process (single-threaded, so fair on a busy machine).
  2. word2vec: gensim's Word2Vec (sg=1, negative sampling, workers=1) with
     our parameters on the same training words, then the same sklearn LogReg
     on each model's mean vectors (ours read back from vectors.bin with
     gensim's word2vec loader); training time of each, single-threaded.

The two sides alternate, --repeats times (both parts), and the figures
are medians. Every thread pool in this process (OpenMP, OpenBLAS) is held
to one thread before numpy and scikit-learn load and again around each fit:
scikit-learn's liblinear calls scipy's BLAS (OpenBLAS), which otherwise runs
a thread per core whose spinning on a busy machine multiplies its CPU time.

Run from the repository root after `make`:
  python3 bench/baseline_bench.py [--data DIR] [--prepared DIR] [--work DIR] [--repeats N]
(gensim is needed for part 2: a scratch venv with --system-site-packages.)"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import jaccard_score, precision_score, recall_score
from sklearn.multiclass import OneVsRestClassifier
from tokenizers.normalizers import BertNormalizer
from tokenizers.pre_tokenizers import BertPreTokenizer

NORM = BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
PRE = BertPreTokenizer()


def words(text, min_chars=2):
    t = NORM.normalize_str(text)
    return [w for w, _ in PRE.pre_tokenize_str(t) if len(w) >= min_chars]


def load(path, labels):
    docs, y = [], []
    with open(path) as f:
        for line in f:
            o = json.loads(line)
            docs.append(words(o["text"]))
            row = np.zeros(len(labels), dtype=int)
            for g in o["labels"]:
                row[labels.index(g)] = 1
            y.append(row)
    return docs, np.array(y)


def at_least_one(P, thr):
    pred = (P > thr).astype(int)
    none = pred.sum(1) == 0
    pred[none, P[none].argmax(1)] = 1
    return pred


def metrics(Y, pred):
    return dict(jaccard=jaccard_score(Y, pred, average="samples", zero_division=0),
                precision=precision_score(Y, pred, average="samples", zero_division=0),
                recall=recall_score(Y, pred, average="samples", zero_division=0),
                at_least_one=float(np.mean((Y & pred).sum(1) >= 1)))


def ours(config, out, prepared, extra=()):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = ["bin/genre", "baseline", "--config", config, "--out", out, "data=" + prepared, "threads=1", *extra]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit("bin/genre baseline failed: " + r.stderr)
    m = re.search(r"(\d+) feature columns; features [\d.]+ s \(cpu ([\d.]+) s\); fit [\d.]+ s \(cpu ([\d.]+) s\)",
                  r.stdout)
    with open(os.path.join(out, "metrics.json")) as f:
        test = json.load(f)["test"]
    return dict(cols=int(m.group(1)), feature_s=float(m.group(2)), fit_s=float(m.group(3)),
                test={k: test[k] for k in ("jaccard", "precision", "recall", "at_least_one")})


def sk_logreg(Xtr, Ytr, Xte, Yte, C=1.0):
    clf = OneVsRestClassifier(LogisticRegression(solver="liblinear", C=C), n_jobs=1)
    with threadpool_limits(1):
        t = time.process_time()
        clf.fit(Xtr, Ytr)
        fit_s = time.process_time() - t
    return fit_s, metrics(Yte, at_least_one(clf.predict_proba(Xte), 0.5))


def median(xs):
    return statistics.median(xs)


def show(name, a, b):
    print(f"  {name:10s}" + "".join(f" {k} {a[k]:.4f}/{b[k]:.4f}" for k in a))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("GENRE_DATA", "../shared/data/movies"))
    ap.add_argument("--prepared", help="an existing `genre prepare` output (default: prepare into --work)")
    ap.add_argument("--work", default=tempfile.mkdtemp(prefix="genre-bench-"))
    ap.add_argument("--skip-word2vec", action="store_true")
    ap.add_argument("--repeats", type=int, default=3, help="alternating rounds per comparison (medians)")
    a = ap.parse_args()
    prepared = a.prepared or os.path.join(a.work, "data")
    if not a.prepared:
        subprocess.run(["bin/genre", "prepare", "--data", a.data, "--out", prepared], check=True,
                       stdout=subprocess.DEVNULL)
    labels = open(os.path.join(prepared, "labels.txt")).read().split()
    tr, Ytr = load(os.path.join(prepared, "train.jsonl"), labels)
    te, Yte = load(os.path.join(prepared, "test.jsonl"), labels)
    import sklearn
    with threadpool_limits(1):
        pools = ", ".join(f"{p['internal_api']} {p['num_threads']}" for p in threadpool_info())
    print(f"data: {len(tr)} train / {len(te)} test movies, {len(labels)} genres")
    print(f"threads: ours OMP_NUM_THREADS=1 threads=1; scikit-learn {sklearn.__version__} n_jobs=1, pools held to"
          f" [{pools}]; times are process CPU seconds, medians of {a.repeats} alternating rounds")
    print("logistic regression: C = 1, tol = 1e-4, max_iter = 100 on both sides (the same stopping rule: "
          "|grad| <= tol * max(min(#pos, #neg), 1) / n * |grad at 0|)")
    results = {}
    for feats, Vec in (("bow", CountVectorizer), ("tfidf", TfidfVectorizer)):
        vec = Vec(analyzer=lambda d: d)
        Xtr = vec.fit_transform(tr)
        Xte = vec.transform(te)
        our_s, sk_s = [], []
        for r in range(a.repeats):
            o = ours(f"configs/baseline/logreg_{feats}.json", os.path.join(a.work, "logreg_" + feats), prepared)
            assert Xtr.shape[1] == o["cols"], f"feature columns differ: sklearn {Xtr.shape[1]}, ours {o['cols']}"
            fit_s, sk = sk_logreg(Xtr, Ytr, Xte, Yte)
            our_s.append(o["fit_s"])
            sk_s.append(fit_s)
            print(f"  {feats} round {r + 1}: fit CPU ours {o['fit_s']:.3f} s, sklearn {fit_s:.3f} s", flush=True)
        ratio = median(sk_s) / median(our_s)
        print(f"logreg {feats}: {o['cols']} columns; fit CPU median ours {median(our_s):.3f} s, sklearn "
              f"{median(sk_s):.3f} s: {ratio:.2f}x; |delta jaccard| {abs(o['test']['jaccard'] - sk['jaccard']):.4f}")
        show("ours/sk", o["test"], sk)
        results[feats] = dict(ours=dict(o, fit_s=our_s), sklearn=dict(fit_s=sk_s, test=sk), ratio=ratio)
    if not a.skip_word2vec:
        import gensim
        from gensim.models import KeyedVectors, Word2Vec
        out = os.path.join(a.work, "logreg_word2vec")
        cfg = json.load(open("configs/baseline/logreg_word2vec.json"))["w2v"]
        our_s, g_s = [], []
        for r in range(a.repeats):
            o = ours("configs/baseline/logreg_word2vec.json", out, prepared)
            with threadpool_limits(1):
                t = time.process_time()
                g = Word2Vec(sentences=tr, vector_size=cfg["dim"], window=cfg["window"], negative=cfg["negative"],
                             sg=1, hs=0, min_count=cfg["min_count"], sample=cfg["sample"], alpha=cfg["alpha"],
                             epochs=cfg["epochs"], workers=1, seed=42)
                g_s.append(time.process_time() - t)
            our_s.append(o["feature_s"])
            print(f"  word2vec round {r + 1}: CPU ours {o['feature_s']:.2f} s, gensim {g_s[-1]:.2f} s", flush=True)
        mine = KeyedVectors.load_word2vec_format(os.path.join(out, "vectors.bin"), binary=True)

        def mean_vectors(kv, docs):
            X = np.zeros((len(docs), kv.vector_size))
            for i, d in enumerate(docs):
                v = [kv[w] for w in d if w in kv.key_to_index]
                if v:
                    X[i] = np.mean(v, axis=0)
            return X
        _, sk_mine = sk_logreg(mean_vectors(mine, tr), Ytr, mean_vectors(mine, te), Yte)
        _, sk_gensim = sk_logreg(mean_vectors(g.wv, tr), Ytr, mean_vectors(g.wv, te), Yte)
        ratio = median(g_s) / median(our_s)
        print(f"word2vec (gensim {gensim.__version__}, workers=1; ours threads=1): training CPU median ours "
              f"{median(our_s):.2f} s (incl. vocabulary and train mean vectors), gensim {median(g_s):.2f} s "
              f"(incl. vocabulary; its job-feeding thread counts too): {ratio:.2f}x; vocabulary ours {len(mine)}, "
              f"gensim {len(g.wv)}")
        print(f"  sklearn LogReg on our vectors jaccard {sk_mine['jaccard']:.4f}, on gensim's {sk_gensim['jaccard']:.4f}"
              f" (|delta| {abs(sk_mine['jaccard'] - sk_gensim['jaccard']):.4f}); our C pipeline {o['test']['jaccard']:.4f}")
        results["word2vec"] = dict(ours=dict(o, feature_s=our_s), gensim_s=g_s, ratio=ratio, sk_on_ours=sk_mine,
                                   sk_on_gensim=sk_gensim)
    with open(os.path.join(a.work, "bench.json"), "w") as f:
        json.dump(results, f, indent=1)
    print("details:", os.path.join(a.work, "bench.json"))


if __name__ == "__main__":
    main()
