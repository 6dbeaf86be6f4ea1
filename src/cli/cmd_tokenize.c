/* genre tokenize: UTF-8 lines on stdin, one line of WordPiece ids (or of
 * basic words) per line on stdout. Reads and writes in large blocks; a line
 * is encoded where it was read. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/data/dataset.h"
#include "src/cli/args.h"
#include "src/cli/commands.h"
#include "src/cli/lines.h"
#include "src/core/err.h"
#include "src/core/progress.h"
#include "tokenizer/tokenizer.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: genre tokenize --vocab FILE|DIR [--max-len N] [--special] < lines\n"
            "       genre tokenize --words < lines\n"
            "       genre tokenize --vocab FILE|DIR --stats DATA_DIR [--max-len N]\n\n"
            "Reads UTF-8 text on stdin, one text a line, and writes one line of\n"
            "space-separated BERT uncased WordPiece ids per input line (identical to\n"
            "HuggingFace BertWordPieceTokenizer, lowercase=True, same vocab).\n\n"
            "  --vocab FILE|DIR  vocab.txt, or a model directory holding one\n"
            "  --special         wrap each line in [CLS] ... [SEP]\n"
            "  --max-len N       keep at most N ids a line (in [1, 16777216]); with\n"
            "                    --special, N counts [CLS] and [SEP] and the text is\n"
            "                    cut before [SEP] (N >= 2). Without it nothing is\n"
            "                    truncated.\n"
            "  --words           write the BasicTokenizer words instead (lowercased,\n"
            "                    accents stripped, split on whitespace and\n"
            "                    punctuation), separated by spaces; needs no vocab\n"
            "  --stats DATA_DIR  tokenize every text of a prepared dataset (genre\n"
            "                    prepare's train/val/test.jsonl) and print tokens per\n"
            "                    text, the share cut by --max-len (default 128, counting\n"
            "                    [CLS] and [SEP]), the [UNK] rate and the speed\n\n"
            "Lines end in \\n or \\r\\n; an empty line gives an empty line. A line that\n"
            "is not valid UTF-8 is an error: 'stdin:LINE: invalid UTF-8 at byte N'\n"
            "(N counts from 0 at the start of the line), exit status 1; the ids of\n"
            "the lines before it have already been written.\n");
}

typedef struct {
    char *buf;
    size_t len, cap;
    int mid_line; /* --words: a word of this line was written */
} Out;

static void out_flush(Out *o)
{
    if (o->len && fwrite(o->buf, 1, o->len, stdout) != o->len)
        die("tokenize: writing stdout: %s", strerror(errno));
    o->len = 0;
}

static void out_ids(Out *o, const int32_t *ids, long n)
{
    if (o->cap - o->len < (size_t)n * 12 + 1) {
        out_flush(o);
        if (o->cap < (size_t)n * 12 + 1) o->buf = xrealloc(o->buf, o->cap = (size_t)n * 12 + 1);
    }
    char *p = o->buf + o->len;
    for (long i = 0; i < n; i++) {
        if (i) *p++ = ' ';
        char tmp[12];
        int k = 0;
        uint32_t v = (uint32_t)ids[i];
        do tmp[k++] = (char)('0' + v % 10);
        while (v /= 10);
        while (k) *p++ = tmp[--k];
    }
    *p++ = '\n';
    o->len = (size_t)(p - o->buf);
}

/* basic_tokenize callback: a space unless first on its line, then the word. */
static void out_word(const char *word, size_t len, void *ctx)
{
    Out *o = ctx;
    if (o->cap - o->len < len + 2) {
        out_flush(o);
        if (o->cap < len + 2) o->buf = xrealloc(o->buf, o->cap = len + 2);
    }
    if (o->mid_line) o->buf[o->len++] = ' ';
    memcpy(o->buf + o->len, word, len);
    o->len += len;
    o->mid_line = 1;
}

static void out_line_end(Out *o)
{
    if (o->len == o->cap) out_flush(o);
    o->buf[o->len++] = '\n';
    o->mid_line = 0;
}

static _Noreturn void invalid_line(Out *o, long lineno)
{
    out_flush(o);
    fflush(stdout);
    fprintf(stderr, "genre tokenize: stdin:%ld: %s\n", lineno, err_msg());
    exit(1);
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of n sorted values. */
static long percentile(const long *sorted, int n, double q)
{
    long k = (long)ceil(q * n) - 1;
    return sorted[k < 0 ? 0 : k];
}

/* --stats: what a user needs to choose max_len, per part of a dataset. */
static int dataset_stats(const Tokenizer *t, const char *dir, long max_len)
{
    static const char *const parts[] = {"train", "val", "test"};
    if (max_len < 0) max_len = 128;
    printf("%-6s %7s %8s %7s %5s %5s %7s %9s %7s %8s\n", "part", "movies", "tokens", "mean", "p50",
           "p95", "max", "cut@max", "[UNK]", "MB/s");
    long cap = 4096;
    int32_t *ids = xmalloc((size_t)cap * sizeof *ids);
    int32_t unk = tokenizer_special(t).unk;
    for (int p = 0; p < 3; p++) {
        Dataset d;
        LabelSet ls;
        if (dataset_load_part(&d, &ls, dir, parts[p]) != 0) die_err();
        long *lens = xmalloc((size_t)(d.n ? d.n : 1) * sizeof *lens), total = 0, unks = 0, cut = 0;
        size_t bytes = 0;
        double t0 = wall_seconds();
        for (int i = 0; i < d.n; i++) {
            size_t len = strlen(d.texts[i]);
            long n;
            while ((n = tokenizer_encode(t, d.texts[i], len, ids, cap)) > cap)
                ids = xrealloc(ids, (size_t)(cap = n) * sizeof *ids);
            if (n < 0) die("tokenize: %s/%s.jsonl: movie %d: %s", dir, parts[p], i + 1, err_msg());
            for (long k = 0; k < n; k++) unks += ids[k] == unk;
            lens[i] = n + 2;
            total += n + 2;
            cut += n + 2 > max_len;
            bytes += len;
        }
        double secs = wall_seconds() - t0;
        qsort(lens, (size_t)d.n, sizeof *lens, cmp_long);
        if (d.n)
            printf("%-6s %7d %8ld %7.1f %5ld %5ld %7ld %8.1f%% %6.3f%% %8.1f\n", parts[p], d.n, total,
                   (double)total / d.n, percentile(lens, d.n, 0.5), percentile(lens, d.n, 0.95), lens[d.n - 1],
                   100.0 * cut / d.n, total ? 100.0 * unks / total : 0.0,
                   secs > 0 ? bytes / secs / 1e6 : 0.0);
        free(lens);
        dataset_free(&d);
        labels_free(&ls);
    }
    printf("(tokens per text count [CLS] and [SEP]; cut@max: texts longer than --max-len %ld)\n", max_len);
    free(ids);
    return 0;
}

int cmd_tokenize(int argc, char **argv)
{
    const char *stats_dir = NULL, *vocab = NULL;
    long max_len = -1; /* not given */
    bool special = false, words = false;
    const ArgOpt opts[] = {
        {.name = "--vocab", .str = &vocab},
        {.name = "--max-len", .num = &max_len, .range = "[1, 16777216]"},
        {.name = "--special", .flag = &special},
        {.name = "--stats", .str = &stats_dir},
        {.name = "--words", .flag = &words},
        {NULL},
    };
    args_parse(&(ArgSpec){.cmd = "tokenize", .opts = opts, .usage = usage}, argc, argv);
    if (words ? vocab || special || max_len >= 0 : !vocab)
        args_error("tokenize", words ? "--words takes no other option" : "--vocab is required");
    if (stats_dir && (words || special)) args_error("tokenize", "--stats takes only --vocab and --max-len");
    if (special && max_len >= 0 && max_len < 2)
        args_error("tokenize", "--max-len %ld cannot hold [CLS] and [SEP]", max_len);
    Tokenizer *t = NULL;
    SpecialIds sp = {0, 0, 0, 0, 0};
    if (!words) {
        if (!(t = tokenizer_load(vocab))) die_err();
        sp = tokenizer_special(t);
    }
    if (stats_dir) {
        int rc = dataset_stats(t, stats_dir, max_len);
        tokenizer_free(t);
        return rc;
    }

    Out out = {xmalloc(1 << 20), 0, 1 << 20, 0};
    long id_cap = 4096;
    int32_t *ids = xmalloc((size_t)(id_cap + 2) * sizeof *ids);
    LineReader in;
    lines_open(&in, "tokenize", false); /* the tokenizer finds invalid UTF-8 itself */
    char *line;
    long len;
    while ((len = lines_next(&in, &line)) >= 0) {
        if (words) {
            if (basic_tokenize(line, (size_t)len, out_word, &out) < 0) invalid_line(&out, in.line);
            out_line_end(&out);
            continue;
        }
        long n;
        while ((n = tokenizer_encode(t, line, (size_t)len, ids + 1, id_cap)) > id_cap) {
            id_cap = n;
            ids = xrealloc(ids, (size_t)(id_cap + 2) * sizeof *ids);
        }
        if (n < 0) invalid_line(&out, in.line);
        int32_t *row = ids + 1;
        if (special) {
            if (max_len >= 0 && n > max_len - 2) n = max_len - 2;
            ids[0] = sp.cls;
            ids[n + 1] = sp.sep;
            row = ids;
            n += 2;
        } else if (max_len >= 0 && n > max_len) {
            n = max_len;
        }
        out_ids(&out, row, n);
    }
    lines_close(&in);
    out_flush(&out);
    if (fflush(stdout) != 0) die("tokenize: writing stdout: %s", strerror(errno));
    free(ids);
    free(out.buf);
    tokenizer_free(t);
    return 0;
}
