/* genre embed: texts on stdin (one a line), one line of floats per text on
 * stdout: the encoder's final hidden state at [CLS] or its attention-masked
 * mean over the tokens. Texts are encoded in batches, each padded only to
 * its longest text. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/backend.h"
#include "models/checkpoint.h"
#include "src/cli/args.h"
#include "src/cli/commands.h"
#include "src/cli/lines.h"
#include "src/core/err.h"
#include "tokenizer/tokenizer.h"

#define BATCH 32

static void usage(FILE *f)
{
    fprintf(f,
            "usage: genre embed --model DIR [--pool cls|mean] [--max-len N] [--device cpu|cuda] < texts\n\n"
            "Reads UTF-8 texts on stdin, one a line, and writes one line of\n"
            "space-separated floats per text: the final hidden state of the encoder\n"
            "in DIR (a DistilBERT or BERT checkpoint with vocab.txt, e.g.\n"
            "all-MiniLM-L6-v2) at [CLS] (--pool cls, the default) or averaged over\n"
            "the text's tokens (--pool mean, as sentence-transformers pools).\n\n"
            "  --max-len N  truncate to N tokens, [CLS] and [SEP] included\n"
            "               (in [2, 512], default 128; cut to the model's positions)\n");
}

typedef struct {
    const Tokenizer *tok;
    Backend *model;
    int dim;
    float *hidden; /* BATCH x max_len x dim */
    bool mean;
    int max_len;
    int32_t *ids, *mask, *packed_ids, *packed_mask;
    int *lengths;
} Embedder;

static void write_batch(Embedder *e, char *const *texts, int n, long first_line)
{
    if (tokenizer_encode_batch(e->tok, (const char *const *)texts, n, e->max_len, e->ids, e->mask,
                               e->lengths))
        die("stdin:%ld..%ld: %s", first_line, first_line + n - 1, err_msg());
    int T = 1;
    for (int i = 0; i < n; i++) T = e->lengths[i] > T ? e->lengths[i] : T;
    for (int i = 0; i < n; i++) { /* pad only to the longest text of this batch */
        memcpy(e->packed_ids + (size_t)i * T, e->ids + (size_t)i * e->max_len, T * sizeof(int32_t));
        memcpy(e->packed_mask + (size_t)i * T, e->mask + (size_t)i * e->max_len, T * sizeof(int32_t));
    }
    const ForwardArgs eval = {.cls_only = false}; /* every token's hidden state */
    if (backend_forward(e->model, e->packed_ids, e->packed_mask, n, T, &eval) ||
        backend_hidden(e->model, e->hidden))
        die_err();
    const float *h = e->hidden;
    int D = e->dim;
    for (int i = 0; i < n; i++) {
        const float *row = h + (size_t)i * T * D;
        for (int d = 0; d < D; d++) {
            float v = row[d];
            if (e->mean) {
                double s = 0;
                for (int t = 0; t < e->lengths[i]; t++) s += row[(size_t)t * D + d];
                v = (float)(s / e->lengths[i]);
            }
            printf(d ? " %.7g" : "%.7g", v);
        }
        putchar('\n');
    }
}

int cmd_embed(int argc, char **argv)
{
    const char *dir = NULL, *pool = "cls";
    long max_len = 128;
    const char *device = "cpu";
    const ArgOpt opts[] = {
        ARG_DEVICE(&device),
        ARG_MODEL(&dir),
        {.name = "--pool", .str = &pool, .choices = "cls|mean"},
        ARG_MAX_LEN(&max_len),
        {NULL},
    };
    args_parse(&(ArgSpec){.cmd = "embed", .opts = opts, .usage = usage}, argc, argv);
    Tokenizer *tok = tokenizer_load(dir);
    if (!tok) die_err();
    ModelWeights w;
    if (checkpoint_load(&w, dir, 0, 0)) die_err();
    const DistilBertConfig cfg = w.lay.cfg;
    if (max_len > cfg.max_position_embeddings) max_len = cfg.max_position_embeddings;
    if (tokenizer_vocab_size(tok) > cfg.vocab_size)
        die("%s: vocab.txt has %d tokens, the model only %d", dir, tokenizer_vocab_size(tok), cfg.vocab_size);
    Backend *model = backend_open(device, &w);
    if (!model || backend_reserve(model, BATCH, max_len)) die_err();
    weights_free(&w);
    Embedder e = {.tok = tok, .model = model, .dim = cfg.dim, .mean = !strcmp(pool, "mean"), .max_len = (int)max_len};
    e.hidden = xmalloc((size_t)BATCH * max_len * cfg.dim * sizeof *e.hidden);
    size_t cells = (size_t)BATCH * max_len;
    e.ids = xmalloc(cells * sizeof *e.ids), e.mask = xmalloc(cells * sizeof *e.mask);
    e.packed_ids = xmalloc(cells * sizeof *e.ids), e.packed_mask = xmalloc(cells * sizeof *e.mask);
    e.lengths = xmalloc(BATCH * sizeof *e.lengths);
    char *texts[BATCH] = {0}, *line;
    size_t caps[BATCH] = {0};
    int n = 0;
    long len;
    LineReader in;
    lines_open(&in, "embed", true);
    while ((len = lines_next(&in, &line)) >= 0) {
        if (caps[n] <= (size_t)len) texts[n] = xrealloc(texts[n], caps[n] = (size_t)len + 1);
        memcpy(texts[n], line, (size_t)len + 1);
        if (++n == BATCH) {
            write_batch(&e, texts, n, in.line - n + 1);
            n = 0;
        }
    }
    if (n) write_batch(&e, texts, n, in.line - n + 1);
    lines_close(&in);
    if (fflush(stdout) || ferror(stdout)) die("embed: writing stdout: %s", strerror(errno));
    for (int i = 0; i < BATCH; i++) free(texts[i]);
    free(e.ids), free(e.mask), free(e.packed_ids), free(e.packed_mask), free(e.lengths), free(e.hidden);
    backend_close(model);
    tokenizer_free(tok);
    return 0;
}
