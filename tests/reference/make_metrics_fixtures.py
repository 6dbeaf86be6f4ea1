"""Writes tests/fixtures/metrics.json: multi-label predictions with
scikit-learn's metric values, for tests/unit/test_metrics.c (|diff| <= 1e-9).

Cases: random predictions of several shapes, degenerate ones (all-zero rows,
a label never true, a label never predicted, n = 1, two labels), and the
predictions of a quick tf-idf logistic regression on a small sample of the
real data at $GENRE_DATA (required), its float32 scores included so that the
test also checks the "predict at least one" rule against numpy's argmax.

Run from the repository root: python3 tests/reference/make_metrics_fixtures.py
"""
import csv
import glob
import json
import os
import sys
import warnings

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (accuracy_score, hamming_loss, jaccard_score,
                             precision_recall_fscore_support)

warnings.simplefilter("ignore", UndefinedMetricWarning)
OUT = "tests/fixtures/metrics.json"


def expected(yt, yp):
    e = {
        "jaccard": jaccard_score(yt, yp, average="samples", zero_division=0),
        "hamming": hamming_loss(yt, yp),
        "accuracy": accuracy_score(yt, yp),
        "at_least_one": float(((yt & yp).sum(1) >= 1).mean()),
        "at_least_two": float(((yt & yp).sum(1) >= 2).mean()),
    }
    p, r, f, _ = precision_recall_fscore_support(yt, yp, average="samples", zero_division=0)
    e.update(precision=p, recall=r, f1=f)
    for avg in ("micro", "macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(yt, yp, average=avg, zero_division=0)
        e[avg] = {"precision": p, "recall": r, "f1": f}
    p, r, f, s = precision_recall_fscore_support(yt, yp, average=None, zero_division=0)
    j = jaccard_score(yt, yp, average=None, zero_division=0)
    e["per_label"] = {"precision": p.tolist(), "recall": r.tolist(), "f1": f.tolist(),
                      "jaccard": j.tolist(), "support": s.tolist()}
    return {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in e.items()}


def rows(y):
    return ["".join(str(int(v)) for v in row) for row in y]


def case(name, yt, yp, **extra):
    yt, yp = np.asarray(yt, dtype=np.int64), np.asarray(yp, dtype=np.int64)
    c = {"name": name, "n": yt.shape[0], "n_labels": yt.shape[1],
         "y_true": rows(yt), "y_pred": rows(yp), "expect": expected(yt, yp)}
    c.update(extra)
    return c


def random_cases(rng):
    def bern(n, L, p):
        return (rng.random((n, L)) < p).astype(np.int64)

    out = [case("dense", bern(60, 7, 0.4), bern(60, 7, 0.4)),
           case("sparse", bern(80, 20, 0.08), bern(80, 20, 0.08))]
    yt, yp = bern(30, 6, 0.3), bern(30, 6, 0.3)
    yt[::3] = 0
    yp[::4] = 0
    yt[0] = yp[0] = 0
    out.append(case("zero_rows", yt, yp))
    yt, yp = bern(25, 5, 0.4), bern(25, 5, 0.4)
    yt[:, 2] = 0
    yp[:, 3] = 0
    yp[:, 4] = 0
    yt[:, 4] = 0
    out.append(case("label_never_true_or_pred", yt, yp))
    out.append(case("n1", [[1, 1, 0, 0, 1]], [[1, 0, 1, 0, 0]]))
    out.append(case("n1_empty", np.zeros((1, 4)), np.zeros((1, 4))))
    out.append(case("all_zero", np.zeros((4, 3)), np.zeros((4, 3))))
    out.append(case("two_labels", bern(20, 2, 0.5), bern(20, 2, 0.5)))
    y = bern(15, 4, 0.5)
    out.append(case("perfect", y, y))
    return out


def load_movies(data, rng, n_max):
    """The per-genre CSVs merged on (title, year): texts and label rows."""
    files = sorted(glob.glob(os.path.join(data, "*.csv")))
    labels = [os.path.basename(f)[:-4] for f in files]
    movies = {}
    for li, f in enumerate(files):
        with open(f, newline="", encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                key = (r["title"], r["year"])
                text, ls = movies.setdefault(key, (r["description"], set()))
                ls.add(li)
    keys = sorted(movies)
    pick = rng.choice(len(keys), size=min(n_max, len(keys)), replace=False)
    texts = [movies[keys[i]][0] for i in pick]
    y = np.zeros((len(pick), len(labels)), dtype=np.int64)
    for row, i in enumerate(pick):
        y[row, list(movies[keys[i]][1])] = 1
    return texts, y


def real_cases(rng):
    data = os.environ.get("GENRE_DATA", "../shared/data/movies")
    if not glob.glob(os.path.join(data, "*.csv")):
        sys.exit(f"no data at {data}: the real-prediction cases need it (set GENRE_DATA)")
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    texts, y = load_movies(data, rng, 2200)
    n_test = 200
    keep = y[:-n_test].sum(0) > 0  # every label must be seen in training
    y = y[:, keep]
    vec = TfidfVectorizer(min_df=2)
    x_train = vec.fit_transform(texts[:-n_test])
    x_test = vec.transform(texts[-n_test:])
    clf = OneVsRestClassifier(LogisticRegression(C=4.0, solver="liblinear"))
    clf.fit(x_train, y[:-n_test])
    scores = clf.predict_proba(x_test).astype(np.float32)
    yt = y[-n_test:]
    plain = (scores > np.float32(0.5)).astype(np.int64)
    at_least_one = plain.copy()
    empty = plain.sum(1) == 0
    at_least_one[empty, scores[empty].argmax(1)] = 1
    return [case("real_threshold", yt, plain),
            case("real_at_least_one", yt, at_least_one, threshold=0.5,
                 scores=[[float(v) for v in row] for row in scores])]


def main():
    rng = np.random.default_rng(20241125)
    cases = random_cases(rng) + real_cases(rng)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"generator": "tests/reference/make_metrics_fixtures.py", "cases": cases}, f)
        f.write("\n")
    print(f"wrote {OUT}: {len(cases)} cases")


if __name__ == "__main__":
    main()
