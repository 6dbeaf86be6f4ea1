"""How well `genre prepare` keeps each genre's (and each genre pair's) share in
train/val/test, next to skmultilearn's iterative_train_test_split (applied
twice: 80/20, then the 20 halved) and a random split of the same movies.

    bin/genre prepare --data ../shared/data/movies --out runs/data
    python3 -m venv --system-site-packages /tmp/skvenv && /tmp/skvenv/bin/pip install scikit-multilearn
    /tmp/skvenv/bin/python bench/split_vs_skmultilearn.py runs/data

Prints part sizes, the largest and mean absolute deviation of a genre's share
in a part from the requested share (in percentage points), per genre, and the
same for genre pairs with at least 50 movies.
"""
import json, time, numpy as np, sys
d = sys.argv[1] if len(sys.argv) > 1 else "runs/data"
labels = [l.strip() for l in open(d + '/labels.txt')]
rows, ours = [], []
for p, name in enumerate(['train', 'val', 'test']):
    for line in open(f'{d}/{name}.jsonl'):
        o = json.loads(line); rows.append([1 if l in o['labels'] else 0 for l in labels]); ours.append(p)
Y = np.array(rows); ours = np.array(ours)
props = np.array([0.8, 0.1, 0.1])
def devs(part):
    out = []
    for l in range(Y.shape[1]):
        m = Y[:, l] == 1
        out.append([np.mean(part[m] == p) - props[p] for p in range(3)])
    return np.array(out)
def report(name, part):
    dv = devs(part)
    sizes = [int(np.sum(part == p)) for p in range(3)]
    print(f'{name:14s} sizes {sizes}  max|dev| {100*np.abs(dv).max():.2f} pts  mean|dev| {100*np.abs(dv).mean():.3f} pts')
    return dv
dv_ours = report('genre', ours)
from skmultilearn.model_selection import iterative_train_test_split
X = np.arange(len(Y)).reshape(-1, 1)
t = time.time()
np.random.seed(0)
Xtr, ytr, Xrest, yrest = iterative_train_test_split(X, Y, test_size=0.2)
Xva, yva, Xte, yte = iterative_train_test_split(Xrest, yrest, test_size=0.5)
el = time.time() - t
sk = np.zeros(len(Y), int); sk[Xva[:, 0]] = 1; sk[Xte[:, 0]] = 2
dv_sk = report('skmultilearn', sk)
print(f'skmultilearn time {el:.1f}s')
rng = np.random.default_rng(0); perm = rng.permutation(len(Y)); rnd = np.zeros(len(Y), int)
n = len(Y); rnd[perm[int(.8*n):int(.9*n)]] = 1; rnd[perm[int(.9*n):]] = 2
report('random', rnd)
print('label            count   genre(train/val/test, pts)        skmultilearn(pts)')
for l, name in enumerate(labels):
    print(f'{name:12s} {Y[:,l].sum():6d}   ' + ' '.join(f'{100*x:+.2f}' for x in dv_ours[l]) + '   |  ' + ' '.join(f'{100*x:+.2f}' for x in dv_sk[l]))
def pair_devs(part, min_n=50):
    out = []
    L = Y.shape[1]
    for a in range(L):
        for b in range(a + 1, L):
            m = (Y[:, a] == 1) & (Y[:, b] == 1)
            if m.sum() < min_n: continue
            out.append([np.mean(part[m] == p) - props[p] for p in range(3)])
    return np.abs(np.array(out))
for name, part in [('genre', ours), ('skmultilearn', sk), ('random', rnd)]:
    pd = pair_devs(part)
    print(f'pairs>=50 ({len(pd)}) {name:13s} max|dev| {100*pd.max():.2f} pts  mean|dev| {100*pd.mean():.2f} pts')
