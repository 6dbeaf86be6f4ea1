/* genre inspect: what a safetensors checkpoint holds, for users checking a
 * download or a saved model, and for tests/reference/check_safetensors.py,
 * which drives our reader and writer through it. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/cli/args.h"
#include "src/cli/commands.h"
#include "src/core/err.h"
#include "src/core/hash.h"
#include "src/io/safetensors.h"

static void usage(FILE *f)
{
    fputs("usage: genre inspect FILE\n"
          "       genre inspect --dump NAME FILE\n"
          "       genre inspect --rewrite IN OUT\n\n"
          "Reads a safetensors checkpoint, checking every bound, and prints a line\n"
          "'# FILE: N tensors, B data bytes', then '# metadata: {json}' when it has\n"
          "metadata, then one tab-separated line per tensor in file order:\n"
          "  name  dtype  [shape]  sum of the values as float64  fnv1a64 of the raw bytes\n"
          "(control characters in names and metadata are printed as \\u00xx).\n\n"
          "  --dump NAME      print that tensor's values instead, one per line (%.17g)\n"
          "  --rewrite IN OUT read IN and write it back to OUT through genre's writer\n"
          "                   (the bytes HuggingFace's save_file writes for the same tensors)\n",
          f);
}

/* Elements converted per call, so huge tensors need no huge buffer. */
#define CHUNK 65536

/* Visits a tensor's values as doubles, CHUNK at a time. */
static void for_values(const StFile *f, const StTensor *t, void (*fn)(const double *, size_t, void *), void *ctx)
{
    double *buf = xmalloc(CHUNK * sizeof *buf);
    size_t esize = st_dtype_size(t->dtype);
    for (size_t at = 0; at < t->numel; at += CHUNK) {
        StTensor part = *t;
        part.numel = t->numel - at < CHUNK ? t->numel - at : CHUNK;
        part.nbytes = part.numel * esize;
        part.data = (const unsigned char *)t->data + at * esize;
        if (st_read_f64(f, &part, buf, part.numel)) die_err();
        fn(buf, part.numel, ctx);
    }
    free(buf);
}

static void add_values(const double *v, size_t n, void *ctx)
{
    double *sum = ctx;
    for (size_t i = 0; i < n; i++) *sum += v[i];
}

static void print_values(const double *v, size_t n, void *ctx)
{
    (void)ctx;
    for (size_t i = 0; i < n; i++) printf("%.17g\n", v[i]);
}

/* Control characters as \u00xx so each item stays on its line; with
 * `json`, quotes and backslashes escaped too. */
static void put_escaped(const char *s, int json)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (json && (*p == '"' || *p == '\\')) printf("\\%c", *p);
        else if (*p < 0x20) printf("\\u%04x", *p);
        else putchar(*p);
}

/* The metadata as one compact JSON object line, keys in file order. */
static void print_meta(const StFile *f)
{
    printf("# metadata: {");
    for (int i = 0; i < f->n_meta; i++) {
        printf(i ? ",\"" : "\"");
        put_escaped(f->meta_keys[i], 1);
        printf("\":\"");
        put_escaped(f->meta_values[i], 1);
        putchar('"');
    }
    printf("}\n");
}

static void list(const StFile *f)
{
    size_t data = 0;
    for (int i = 0; i < f->n_tensors; i++) data += f->tensors[i].nbytes;
    printf("# %s: %d tensors, %zu data bytes\n", f->path, f->n_tensors, data);
    if (f->n_meta) print_meta(f);
    for (int i = 0; i < f->n_tensors; i++) {
        const StTensor *t = &f->tensors[i];
        put_escaped(t->name, 0);
        printf("\t%s\t[", st_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++) printf("%s%" PRId64, d ? "," : "", t->shape[d]);
        double sum = 0;
        for_values(f, t, add_values, &sum);
        printf("]\t%.17g\t%016" PRIx64 "\n", sum, fnv1a64(t->data, t->nbytes));
    }
}

static int rewrite(const StFile *f, const char *out)
{
    StWriter *w = st_writer_new();
    for (int i = 0; i < f->n_meta; i++) st_writer_meta(w, f->meta_keys[i], f->meta_values[i]);
    for (int i = 0; i < f->n_tensors; i++) {
        const StTensor *t = &f->tensors[i];
        st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data);
    }
    int rc = st_writer_save(w, out);
    st_writer_free(w);
    return rc;
}

int cmd_inspect(int argc, char **argv)
{
    const char *dump = NULL, *rewrite_in = NULL;
    const ArgOpt opts[] = {
        {.name = "--dump", .str = &dump},
        {.name = "--rewrite", .str = &rewrite_in},
        {NULL},
    };
    Args a = args_parse(&(ArgSpec){.cmd = "inspect", .opts = opts, .usage = usage, .positional = true}, argc, argv);
    if (a.n_positional != 1 || (dump && rewrite_in))
        args_error("inspect", "expected FILE, --dump NAME FILE or --rewrite IN OUT");
    /* --rewrite IN OUT: OUT is the operand; otherwise the operand is what is read. */
    const char *in = rewrite_in ? rewrite_in : a.positional[0], *out = rewrite_in ? a.positional[0] : NULL;
    args_free(&a);
    StFile f;
    if (st_open(&f, in)) die_err();
    if (dump) {
        const StTensor *t = st_find(&f, dump);
        if (!t) die("%s: no tensor named '%s'", in, dump);
        for_values(&f, t, print_values, NULL);
    } else if (out) {
        if (rewrite(&f, out)) die_err();
    } else {
        list(&f);
    }
    st_close(&f);
    if (fflush(stdout) != 0 || ferror(stdout)) die("cannot write to standard output");
    return 0;
}
