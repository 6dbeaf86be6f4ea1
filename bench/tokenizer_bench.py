"""Single-thread tokenizer throughput: genre's C tokenizer against HuggingFace
`tokenizers` (BertWordPieceTokenizer, lowercase=True, same vocab), on the
same texts in the same run: the `description` of every row of every CSV in
$GENRE_DATA (\\r and \\n replaced by spaces, as in the parity check).

  - genre:            build/bench/bench_tokenizer (tokenizer_encode per text,
                      texts in memory, no I/O);
  - hf encode:        tokenizer.encode(text) in a Python loop;
  - hf encode_batch:  tokenizer.encode_batch(texts), pinned to one thread
                      (RAYON_NUM_THREADS=1 before tokenizers is imported).
Times are CPU time of the process (steadier than wall time on a shared
machine; each side runs one thread). The three are timed in turn, REPEATS
rounds, and the median of each reported; no special tokens.
usage: python3 bench/tokenizer_bench.py [REPEATS]   (after `make bench`)
"""
import os

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import csv  # noqa: E402
import glob  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import tokenizers  # noqa: E402
from tokenizers import BertWordPieceTokenizer  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
BENCH = os.path.join(ROOT, "build", "bench", "bench_tokenizer")


def descriptions(data):
    out = []
    for path in sorted(glob.glob(os.path.join(data, "*.csv"))):
        with open(path, newline="", encoding="utf-8") as f:
            out.extend(row["description"].replace("\r", " ").replace("\n", " ") for row in csv.DictReader(f))
    if not out:
        sys.exit(f"tokenizer_bench: no descriptions in {data}")
    return out


def cpu_time(fn):
    t0 = time.process_time()
    result = fn()
    return time.process_time() - t0, result


def main():
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    data = os.environ.get("GENRE_DATA", os.path.join(ROOT, "..", "shared", "data", "movies"))
    model = os.environ.get("GENRE_MINILM", os.path.join(ROOT, ".cache", "models", "all-MiniLM-L6-v2"))
    texts = descriptions(data)
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    hf = BertWordPieceTokenizer(os.path.join(model, "vocab.txt"), lowercase=True)

    def ours(path):
        out = subprocess.run([BENCH, model, path, "1"], capture_output=True, text=True, check=True).stdout
        kv = dict(item.split("=") for item in out.split())
        return float(kv["seconds"]), int(kv["tokens"])

    def loop():
        return sum(len(hf.encode(t, add_special_tokens=False).ids) for t in texts)

    def batch():
        return sum(len(e.ids) for e in hf.encode_batch(texts, add_special_tokens=False))

    times = {"ours": [], "loop": [], "batch": []}
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt") as f:
        f.write("".join(t + "\n" for t in texts))
        f.flush()
        for _ in range(repeats):
            t, ours_tokens = ours(f.name)
            times["ours"].append(t)
            t, loop_tokens = cpu_time(loop)
            times["loop"].append(t)
            t, batch_tokens = cpu_time(batch)
            times["batch"].append(t)
    t_ours, t_loop, t_batch = (statistics.median(times[k]) for k in ("ours", "loop", "batch"))
    if not ours_tokens == loop_tokens == batch_tokens:
        sys.exit(f"tokenizer_bench: token counts differ: genre {ours_tokens}, hf {loop_tokens}/{batch_tokens}")

    print(f"{len(texts)} texts, {nbytes / 1e6:.2f} MB, {ours_tokens} tokens; tokenizers {tokenizers.__version__}; "
          f"median of {repeats} rounds; CPU time, one thread")
    print(f"{'':22} {'MB/s':>8} {'texts/s':>10} {'genre speed-up':>15}")
    for name, t in (("genre (C)", t_ours), ("hf encode (loop)", t_loop), ("hf encode_batch", t_batch)):
        print(f"{name:22} {nbytes / 1e6 / t:8.2f} {len(texts) / t:10.0f} {t / t_ours:14.2f}x")


if __name__ == "__main__":
    main()
