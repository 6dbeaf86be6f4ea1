"""Writes tests/fixtures/baseline.json: scikit-learn's answers on tiny
problems for tests/unit/test_baseline.c (tf-idf / counts on a fixed token corpus,
liblinear logistic regression and LinearSVC coefficients).

Run: python3 tests/reference/make_baseline_fixtures.py (needs scikit-learn)."""
import json
import os

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

# max_features cases avoid ties at the cut (sklearn breaks them arbitrarily).
# Pre-split words (what basic_tokenize would give); "é" checks code point order.
DOCS = [
    "the cat sat on the mat",
    "the dog sat on the log the end",
    "a cat and a dog",
    "war and peace and war",
    "the end of the war é",
    "zebra",
]


def analyzer(ngram_max):
    def run(doc):
        w = doc.split()
        out = list(w)
        if ngram_max >= 2:
            out += [a + " " + b for a, b in zip(w, w[1:])]
        return out
    return run


def vectorizers():
    cases = [
        ("bow", dict(), CountVectorizer),
        ("bow_binary_bigram_min2", dict(binary=True, ngram_max=2, min_df=2), CountVectorizer),
        ("tfidf", dict(), TfidfVectorizer),
        ("tfidf_sublinear_nosmooth_maxdf", dict(sublinear_tf=True, smooth_idf=False, max_df=0.5), TfidfVectorizer),
        ("tfidf_bigram_max3", dict(ngram_max=2, max_features=3), TfidfVectorizer),
    ]
    out = []
    for name, o, cls in cases:
        kw = dict(analyzer=analyzer(o.get("ngram_max", 1)), min_df=o.get("min_df", 1),
                  max_df=o.get("max_df", 1.0), max_features=o.get("max_features"), binary=o.get("binary", False))
        if cls is TfidfVectorizer:
            kw.update(sublinear_tf=o.get("sublinear_tf", False), smooth_idf=o.get("smooth_idf", True))
        v = cls(**kw)
        X = v.fit_transform(DOCS[:5]).toarray()  # the last document is "test" only
        Xt = v.transform(DOCS[5:]).toarray()
        out.append(dict(name=name, tfidf=cls is TfidfVectorizer, options=o,
                        vocabulary=list(v.get_feature_names_out()),
                        train=X.tolist(), test=Xt.tolist()))
    return out


def linear_problem():
    rng = np.random.default_rng(7)
    n, d = 60, 5
    X = rng.normal(size=(n, d)) * (rng.random(size=(n, d)) < 0.6)
    w = rng.normal(size=(2, d))
    Y = (X @ w.T + rng.normal(scale=0.8, size=(n, 2)) > 0.2).astype(int)
    res = dict(X=X.tolist(), Y=Y.tolist(), C=0.7, logreg=[], logreg_balanced=[], svm=[])
    for c in range(2):
        for key, cw in (("logreg", None), ("logreg_balanced", "balanced")):
            m = LogisticRegression(solver="liblinear", C=0.7, tol=1e-10, max_iter=1000, class_weight=cw)
            m.fit(X, Y[:, c])
            res[key].append(list(m.coef_[0]) + [float(m.intercept_[0])])
        s = LinearSVC(C=0.7, loss="squared_hinge", dual=True, tol=1e-10, max_iter=100000)
        s.fit(X, Y[:, c])
        res["svm"].append(list(s.coef_[0]) + [float(s.intercept_[0])])
    return res


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "fixtures", "baseline.json")
    data = dict(docs=DOCS, n_train=5, vectorizers=vectorizers(), linear=linear_problem())
    with open(path, "w") as f:
        json.dump(data, f, indent=1)
    print("wrote", os.path.normpath(path))


if __name__ == "__main__":
    main()
