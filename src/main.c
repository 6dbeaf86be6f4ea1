/* bin/genre: one binary, one subcommand per job. */
#include <stdio.h>
#include <string.h>

#include "src/core/blas_arch.h"
#include "models/backend.h"
#include "src/cli/commands.h"
#include "src/core/err.h"
#include "src/core/interrupt.h"

#define GENRE_VERSION "0.1"

static const Command commands[] = {
    {"prepare", cmd_prepare, "per-genre CSV files -> cleaned, stratified train/val/test"},
    {"tokenize", cmd_tokenize, "text lines on stdin -> WordPiece token ids"},
    {"baseline", cmd_baseline, "classical classifiers (logreg, SVM, KNN) on words: the seed's first table"},
    {"train", cmd_train, "fine-tune a pretrained encoder on a prepared dataset"},
    {"eval", cmd_eval, "metrics of a fine-tuned model on a labelled .jsonl file"},
    {"predict", cmd_predict, "genres and scores of texts on stdin, one JSON line each"},
    {"export", cmd_export, "a fine-tuned model as a HuggingFace directory (or an encoder with a fresh head)"},
    {"embed", cmd_embed, "sentence embeddings (final hidden state at [CLS] or mean) of texts"},
    {"sweep", cmd_sweep, "many training runs from one sweep file, and their combined results"},
    {"compare", cmd_compare, "comparison tables of several runs' test metrics"},
    {"inspect", cmd_inspect, "list a safetensors checkpoint's metadata and tensors"},
    {NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: genre COMMAND [options] [key=value ...]\n\n"
               "Fine-tunes DistilBERT-architecture encoders for multi-label text\n"
               "classification (movie genres from plot descriptions).\n\ncommands:\n");
    for (const Command *c = commands; c->name; c++) fprintf(f, "  %-10s %s\n", c->name, c->summary);
    fprintf(f, "\n'genre COMMAND --help' describes a command; 'genre --version' what was built.\n");
}

/* What this binary runs on: the BLAS core (see blas_arch.h) and the CUDA backend. */
static void version(void)
{
    printf("genre %s\n", GENRE_VERSION);
    printf("blas core: %s\n", blas_arch_current());
#ifdef GENRE_CUDA_BACKEND
    char gpu[512];
    if (backend_describe("cuda", gpu, sizeof gpu) == 0) printf("cuda: compiled in; GPU: %s\n", gpu);
    else printf("cuda: compiled in; %s\n", err_msg());
#else
    printf("cuda: not compiled in (built with NVCC=)\n");
#endif
}

int main(int argc, char **argv)
{
    blas_arch_fix(argv);
    interrupt_install();
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        version();
        return 0;
    }
    for (const Command *c = commands; c->name; c++)
        if (!strcmp(argv[1], c->name)) return c->run(argc - 1, argv + 1);
    fprintf(stderr, "genre: unknown command '%s' (see 'genre --help')\n", argv[1]);
    return 2;
}
