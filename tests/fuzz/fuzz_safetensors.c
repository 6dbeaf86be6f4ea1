/* libFuzzer harness for the safetensors reader and writer (`make
 * fuzz-safetensors`). Any input must either be refused with a message naming
 * the file or parse into tensors whose bytes lie inside the input; a parsed
 * input is then written back through the writer and re-read, and must come
 * back with the same tensors and metadata. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/core/err.h"
#include "src/io/safetensors.h"

static char out_path[64];

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_safetensors: %s\n", what);
        abort();
    }
}

static void rewrite_and_compare(const StFile *f)
{
    StWriter *w = st_writer_new();
    for (int i = 0; i < f->n_meta; i++) st_writer_meta(w, f->meta_keys[i], f->meta_values[i]);
    for (int i = 0; i < f->n_tensors; i++) {
        const StTensor *t = &f->tensors[i];
        st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data);
    }
    check(st_writer_save(w, out_path) == 0, "writer refused what the reader accepted");
    st_writer_free(w);
    StFile g;
    check(st_open(&g, out_path) == 0, "reader refused what the writer wrote");
    check(g.n_tensors == f->n_tensors && g.n_meta == f->n_meta, "tensor or metadata count changed");
    for (int i = 0; i < f->n_tensors; i++) {
        const StTensor *a = &f->tensors[i], *b = st_find(&g, a->name);
        check(b != NULL, "tensor lost");
        check(a->dtype == b->dtype && a->ndim == b->ndim && a->nbytes == b->nbytes, "tensor header changed");
        check(!memcmp(a->shape, b->shape, (size_t)a->ndim * sizeof *a->shape), "shape changed");
        check(!a->nbytes || !memcmp(a->data, b->data, a->nbytes), "tensor bytes changed");
    }
    for (int i = 0; i < f->n_meta; i++) {
        const char *v = st_meta(&g, f->meta_keys[i]);
        check(v && !strcmp(v, f->meta_values[i]), "metadata changed");
    }
    st_close(&g);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (!out_path[0])
        snprintf(out_path, sizeof out_path, "%s/genre-fuzz-%d.safetensors",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (int)getpid());
    StFile f;
    if (st_parse(&f, "in", data, size)) {
        check(!strncmp(err_msg(), "in: ", 4), "error does not name the file");
        return 0;
    }
    for (int i = 0; i < f.n_tensors; i++) {
        const StTensor *t = &f.tensors[i];
        const unsigned char *p = t->data;
        check(p >= data && p + t->nbytes <= data + size, "tensor outside the input");
        check(t->nbytes == t->numel * st_dtype_size(t->dtype), "nbytes != numel * size");
        check(st_find(&f, t->name) != NULL, "st_find misses a tensor");
        double *v = malloc((t->numel ? t->numel : 1) * sizeof *v);
        check(st_read_f64(&f, t, v, t->numel) == 0, "st_read_f64 failed");
        free(v);
        float *x = malloc((t->numel ? t->numel : 1) * sizeof *x);
        int is_float = t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16 || t->dtype == ST_F64;
        check((st_read_f32(&f, t, x, t->numel) == 0) == is_float, "st_read_f32 and the dtype disagree");
        free(x);
    }
    rewrite_and_compare(&f);
    st_close(&f);
    return 0;
}
