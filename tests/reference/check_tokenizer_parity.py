"""Live parity check: `genre tokenize` against HuggingFace `tokenizers`.

Compares the token ids of BertWordPieceTokenizer(vocab, lowercase=True) with
those of bin/genre on:
  - the `description` of every row of every CSV in $GENRE_DATA;
  - tests/fixtures/tokenizer_adversarial.txt, one case a line;
  - a sweep of every Unicode scalar value, each as "a<c>a <c>", so that any
    character our tables classify differently (control, whitespace,
    punctuation, mark, CJK, lowercase, NFD) shows up.
Our binary reads one text a line, so \\r and \\n inside a text are replaced
by spaces, in the very strings both sides get (both are whitespace to BERT,
so ids are unaffected). Ids are compared without special tokens; the
words of the BasicTokenizer (`genre tokenize --words` against HF's
normalizer and pre-tokenizer) on all texts too; then
every 10th description and the adversarial cases once more with --special
--max-len 64 against HF's [CLS] ... [SEP] truncated to 64.
Exits 1 on any mismatch. Without CSV files in $GENRE_DATA the rest still
runs, and then exits 77 (skipped, tests/run: a failure under CI=true) saying
that the descriptions were not compared.
"""
import csv
import glob
import os
import subprocess
import sys

from tokenizers import BertWordPieceTokenizer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
GENRE = os.path.join(ROOT, "bin", "genre")
ADVERSARIAL = os.path.join(ROOT, "tests", "fixtures", "tokenizer_adversarial.txt")
MAX_LEN = 64


def one_line(s):
    return s.replace("\r", " ").replace("\n", " ")


def descriptions(data):
    files = sorted(glob.glob(os.path.join(data, "*.csv")))
    out = []
    for path in files:
        with open(path, newline="", encoding="utf-8") as f:
            out.extend(one_line(row["description"]) for row in csv.DictReader(f))
    return out


def adversarial():
    with open(ADVERSARIAL, encoding="utf-8", newline="") as f:
        text = f.read()
    return text[:-1].split("\n") if text.endswith("\n") else text.split("\n")


def sweep(chunk=512):
    cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF and c not in (0x0A, 0x0D)]
    return [" ".join(f"a{chr(c)}a {chr(c)}" for c in cps[i:i + chunk]) for i in range(0, len(cps), chunk)]


def run_genre(texts, *args):
    """The output lines of `genre tokenize ARGS` on the texts, one a line."""
    data = "".join(t + "\n" for t in texts).encode("utf-8")
    r = subprocess.run([GENRE, "tokenize", *args], input=data, capture_output=True)
    if r.returncode != 0:
        sys.exit(f"check_tokenizer_parity: genre tokenize failed: {r.stderr.decode(errors='replace')}")
    lines = r.stdout.decode("utf-8").split("\n")
    assert lines[-1] == "", "output must end in a newline"
    return lines[:-1]


def ours(vocab, texts, *args):
    return [[int(x) for x in line.split(" ") if x] for line in run_genre(texts, "--vocab", vocab, *args)]


def compare(name, texts, want, got):
    """Indices of the mismatching texts; prints the first few."""
    if len(got) != len(texts):
        sys.exit(f"check_tokenizer_parity: {len(texts)} texts in, {len(got)} lines out ({name})")
    bad = [i for i in range(len(texts)) if got[i] != want[i]]
    for i in bad[:5]:
        print(f"  MISMATCH ({name}) text {i}: {texts[i][:200]!r}\n    hf:   {want[i][:30]}\n    ours: {got[i][:30]}")
    return bad


def main():
    data = os.environ.get("GENRE_DATA", os.path.join(ROOT, "..", "shared", "data", "movies"))
    model = os.environ.get("GENRE_MINILM", os.path.join(ROOT, ".cache", "models", "all-MiniLM-L6-v2"))
    vocab = os.path.join(model, "vocab.txt")
    desc, adv, swp = descriptions(data), adversarial(), sweep()
    hf = BertWordPieceTokenizer(vocab, lowercase=True)

    texts = desc + adv + swp
    want = [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
    bad = compare("ids", texts, want, ours(vocab, texts))

    # The words before WordPiece (normalizer + pre-tokenizer): catches a
    # difference in lowercasing or NFD that ids cannot show (both [UNK]).
    norm, pre = hf.normalizer, hf.pre_tokenizer
    want = [" ".join(w for w, _ in pre.pre_tokenize_str(norm.normalize_str(t))) for t in texts]
    bad_words = compare("--words", texts, want, run_genre(texts, "--words"))

    # Model input: [CLS] ... [SEP] cut to MAX_LEN, on every 10th description
    # (the ids are compared above; this checks the wrapping and the cut).
    texts_sp = desc[::10] + adv
    hf.enable_truncation(MAX_LEN)
    want = [e.ids for e in hf.encode_batch(texts_sp)]
    bad_sp = compare(f"--special --max-len {MAX_LEN}", texts_sp, want,
                     ours(vocab, texts_sp, "--special", "--max-len", str(MAX_LEN)))

    print(f"tokenizer parity: {len(texts) - len(bad)}/{len(texts)} texts identical ({len(desc)} descriptions, "
          f"{len(adv)} adversarial, {len(swp)} code-point sweeps covering {0x110000 - 0x800 - 2} code points); "
          f"with --special --max-len {MAX_LEN}: {len(texts_sp) - len(bad_sp)}/{len(texts_sp)}; "
          f"basic words identical: {len(texts) - len(bad_words)}/{len(texts)}")
    if bad or bad_sp or bad_words:
        return 1
    if not desc:
        print(f"check_tokenizer_parity: skipped: set-up dependency missing: no CSV files in "
              f"GENRE_DATA={data!r}, so no description was compared (the rest passed)")
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main())
