#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/core/err.h"
#include "src/io/safetensors.h"

static const char *tmp_path(const char *tag)
{
    static char path[128];
    snprintf(path, sizeof path, "/tmp/genre-st-%d-%s.safetensors", (int)getpid(), tag);
    return path;
}

/* A file image: 8-byte length `hlen` (the header's own length when
 * hlen == UINT64_MAX), the header text, then `ndata` data bytes. */
static unsigned char *image(const char *header, uint64_t hlen, const void *data, size_t ndata, size_t *size)
{
    size_t h = strlen(header);
    if (hlen == UINT64_MAX) hlen = h;
    *size = 8 + h + ndata;
    unsigned char *b = xmalloc(*size);
    memcpy(b, &hlen, 8);
    memcpy(b + 8, header, h);
    if (ndata) memcpy(b + 8 + h, data, ndata);
    return b;
}

/* Parses a header over `ndata` zero bytes; returns st_parse's result and
 * leaves the error in err_msg(). */
static int parse(const char *header, size_t ndata)
{
    static const unsigned char zeros[256];
    size_t size;
    unsigned char *b = image(header, UINT64_MAX, zeros, ndata, &size);
    StFile f;
    int rc = st_parse(&f, "x.safetensors", b, size);
    if (!rc) st_close(&f);
    free(b);
    return rc;
}

static void expect_error(const char *header, size_t ndata, const char *needle)
{
    cr_expect_eq(parse(header, ndata), -1, "accepted: %s", header);
    cr_expect(strstr(err_msg(), "x.safetensors: ") == err_msg(), "error does not name the file: %s", err_msg());
    cr_expect(strstr(err_msg(), needle) != NULL, "for %s\nexpected '%s' in: %s", header, needle, err_msg());
}

static unsigned char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = xmalloc(*n);
    cr_assert_eq(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

Test(safetensors, round_trip_every_dtype)
{
    unsigned char bytes[10][48];
    for (int d = 0; d < 10; d++)
        for (int i = 0; i < 48; i++) bytes[d][i] = (unsigned char)(d * 31 + i * 7);
    for (int i = 0; i < 6; i++) bytes[ST_BOOL][i] = i & 1;
    const int64_t shape[2] = {2, 3}, empty[2] = {0, 4};
    StWriter *w = st_writer_new();
    char name[32];
    for (int d = 0; d < 10; d++) {
        snprintf(name, sizeof name, "t.%s", st_dtype_name((StDtype)d));
        st_writer_add(w, name, (StDtype)d, 2, shape, bytes[d]);
    }
    st_writer_add(w, "scalar", ST_F32, 0, NULL, bytes[0]);
    st_writer_add(w, "empty", ST_F16, 2, empty, NULL);
    st_writer_meta(w, "format", "pt");
    st_writer_meta(w, "note", "ünïcode \"quoted\"\n");
    const char *path = tmp_path("round");
    cr_assert_eq(st_writer_save(w, path), 0, "%s", err_msg());
    st_writer_free(w);

    StFile f;
    cr_assert_eq(st_open(&f, path), 0, "%s", err_msg());
    cr_expect_eq(f.n_tensors, 12);
    cr_expect_str_eq(st_meta(&f, "format"), "pt");
    cr_expect_str_eq(st_meta(&f, "note"), "ünïcode \"quoted\"\n");
    cr_expect_null(st_meta(&f, "absent"));
    for (int d = 0; d < 10; d++) {
        snprintf(name, sizeof name, "t.%s", st_dtype_name((StDtype)d));
        const StTensor *t = st_find(&f, name);
        cr_assert_not_null(t, "%s", name);
        cr_expect_eq(t->dtype, (StDtype)d);
        cr_expect_eq(t->ndim, 2);
        cr_expect(t->shape[0] == 2 && t->shape[1] == 3);
        cr_expect_eq(t->numel, 6);
        cr_expect_eq(t->nbytes, 6 * st_dtype_size((StDtype)d));
        cr_expect_eq(memcmp(t->data, bytes[d], t->nbytes), 0, "%s bytes", name);
    }
    const StTensor *s = st_find(&f, "scalar"), *e = st_find(&f, "empty");
    cr_assert(s && e);
    cr_expect(s->ndim == 0 && s->numel == 1 && s->nbytes == 4);
    cr_expect(e->ndim == 2 && e->numel == 0 && e->nbytes == 0);
    cr_expect_null(st_find(&f, "t.U16"));
    /* file order of offsets = the writer's order: widest dtype rank first */
    cr_expect_str_eq(f.tensors[0].name, "t.I64");
    cr_expect_str_eq(f.tensors[11].name, "t.BOOL");
    uint64_t hlen;
    memcpy(&hlen, f.map, 8);
    cr_expect_eq(hlen % 8, 0, "data section 8-byte aligned");
    st_close(&f);
    unlink(path);
}

/* The two byte strings the reference implementation's own unit tests expect. */
Test(safetensors, writer_matches_reference_bytes)
{
    const float v[6] = {0, 1, 2, 3, 4, 5};
    const int64_t shape[3] = {1, 2, 3};
    StWriter *w = st_writer_new();
    st_writer_add(w, "attn.0", ST_F32, 3, shape, v);
    const char *path = tmp_path("ref");
    cr_assert_eq(st_writer_save(w, path), 0, "%s", err_msg());
    st_writer_free(w);
    size_t n;
    unsigned char *b = read_all(path, &n);
    const char *hdr = "{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}";
    cr_assert_eq(n, 8 + 64 + 24);
    cr_expect_eq(b[0], 64);
    cr_expect_eq(memcmp(b + 8, hdr, 64), 0);
    cr_expect_eq(memcmp(b + 72, v, 24), 0);
    free(b);

    w = st_writer_new();
    st_writer_meta(w, "framework", "pt");
    cr_assert_eq(st_writer_save(w, path), 0, "%s", err_msg());
    st_writer_free(w);
    b = read_all(path, &n);
    cr_assert_eq(n, 8 + 40);
    cr_expect_eq(b[0], 40);
    cr_expect_eq(memcmp(b + 8, "{\"__metadata__\":{\"framework\":\"pt\"}}     ", 40), 0);
    free(b);
    unlink(path);
}

Test(safetensors, writer_orders_by_dtype_rank_then_name_and_escapes_like_serde)
{
    const unsigned char z[16] = {0};
    const int64_t one[1] = {1};
    StWriter *w = st_writer_new();
    st_writer_add(w, "b", ST_F16, 1, one, z);
    st_writer_add(w, "a", ST_BOOL, 1, one, z);
    st_writer_add(w, "c", ST_I64, 1, one, z);
    st_writer_add(w, "\x01q\"/\\", ST_F32, 1, one, z);
    st_writer_add(w, "B", ST_F32, 1, one, z);
    const char *path = tmp_path("order");
    cr_assert_eq(st_writer_save(w, path), 0, "%s", err_msg());
    st_writer_free(w);
    size_t n;
    char *b = (char *)read_all(path, &n);
    const char *want = "{\"c\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]},"
                       "\"\\u0001q\\\"/\\\\\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},"
                       "\"B\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]},"
                       "\"b\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[16,18]},"
                       "\"a\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[18,19]}}";
    cr_expect_eq(memcmp(b + 8, want, strlen(want)), 0, "header: %.*s", (int)(n - 8), b + 8);
    free(b);
    StFile f;
    cr_assert_eq(st_open(&f, path), 0, "%s", err_msg());
    cr_expect_not_null(st_find(&f, "\x01q\"/\\"));
    st_close(&f);
    unlink(path);
}

Test(safetensors, writer_refuses_bad_input_and_leaves_no_file)
{
    const float v[4] = {0};
    const int64_t neg[1] = {-1}, two[1] = {2};
    struct stat st;
    const char *path = tmp_path("refuse");
    unlink(path);

    StWriter *w = st_writer_new();
    st_writer_add(w, "w", ST_F32, 1, two, v);
    st_writer_add(w, "w", ST_F32, 1, two, v);
    cr_expect_eq(st_writer_save(w, path), -1);
    cr_expect(strstr(err_msg(), "tensor 'w': added twice"), "%s", err_msg());
    st_writer_free(w);

    w = st_writer_new();
    st_writer_add(w, "n", ST_F32, 1, neg, v);
    cr_expect_eq(st_writer_save(w, path), -1);
    cr_expect(strstr(err_msg(), "negative dimension"), "%s", err_msg());
    st_writer_free(w);

    w = st_writer_new();
    st_writer_add(w, "bad\xff", ST_F32, 1, two, v);
    cr_expect_eq(st_writer_save(w, path), -1);
    cr_expect(strstr(err_msg(), "not valid UTF-8"), "%s", err_msg());
    st_writer_free(w);

    w = st_writer_new();
    st_writer_meta(w, "k", "\xc3");
    cr_expect_eq(st_writer_save(w, path), -1);
    cr_expect(strstr(err_msg(), "metadata value of 'k' is not valid UTF-8"), "%s", err_msg());
    st_writer_free(w);
    cr_expect_neq(stat(path, &st), 0, "no output after a refused save");
}

Test(safetensors, valid_edge_cases)
{
    cr_expect_eq(parse("{}", 0), 0, "%s", err_msg());
    cr_expect_eq(parse("{}      ", 0), 0, "%s", err_msg());
    cr_expect_eq(parse("{\"s\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]}}", 8), 0, "%s",
                 err_msg());
    cr_expect_eq(parse("{\"z\":{\"dtype\":\"F32\",\"shape\":[3,0,2],\"data_offsets\":[0,0]},"
                       "\"y\":{\"dtype\":\"I8\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0), 0, "%s", err_msg());
    cr_expect_eq(parse("{\"__metadata__\":{},\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2],"
                       "\"extra\":1}}", 2), 0, "%s", err_msg());
}

Test(safetensors, each_kind_of_damage_is_named)
{
    expect_error("not json", 0, "header is not valid JSON at byte 11 (line 1, column 3)");
    expect_error("{\"a\":", 0, "header is not valid JSON");
    expect_error("{\"a\":1,\"a\":2}", 0, "header is not valid JSON");
    expect_error("{\"\xff\":1}", 0, "header is not valid JSON");
    expect_error("[1,2]", 0, "header is not a JSON object");
    expect_error("{\"a\":[]}", 0, "tensor 'a': entry is not a JSON object");
    expect_error("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'a': missing \"dtype\"");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "tensor 'a': missing \"shape\"");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "tensor 'a': missing \"data_offsets\"");
    expect_error("{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "\"dtype\" is not a string");
    expect_error("{\"a\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                 "tensor 'a': unknown or unsupported dtype 'Q4'");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":3,\"data_offsets\":[0,4]}}", 4, "\"shape\" is not an array");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,4]}}", 4,
                 "tensor 'a': shape[1] is not a non-negative integer");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4,
                 "shape[0] is not a non-negative integer");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
                 "tensor 'a': 9 dimensions, at most 8 supported");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", 0,
                 "element count overflows");
    expect_error("{\"a\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,0]}}", 0,
                 "element count overflows");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 8,
                 "tensor 'a': shape and dtype F32 need 8 bytes but data_offsets [0, 4] hold 4");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
                 "\"data_offsets\" is not an array [begin, end]");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4,
                 "\"data_offsets\" are not non-negative integers");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8, "end before they begin");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 4,
                 "tensor 'a': data_offsets [4, 8] run past the data section (4 bytes)");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
                 "tensors 'a' [0, 8] and 'b' [4, 8] overlap");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
                 "data bytes [0, 4] before tensor 'a' belong to no tensor");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8,
                 "data bytes [4, 8] after the last tensor belong to no tensor");
    expect_error("{\"__metadata__\":[\"a\"]}", 0, "\"__metadata__\" is not a JSON object");
    expect_error("{\"__metadata__\":{\"k\":1}}", 0, "\"__metadata__\" value of 'k' is not a string");
}

Test(safetensors, header_length_damage)
{
    size_t size;
    StFile f;
    unsigned char *b = image("{}", 9, NULL, 0, &size);
    cr_expect_eq(st_parse(&f, "x.safetensors", b, size), -1);
    cr_expect(strstr(err_msg(), "x.safetensors: header length 9 runs past the end of the file (10 bytes)"), "%s",
              err_msg());
    free(b);
    b = image("{}", (uint64_t)1 << 62, NULL, 0, &size);
    cr_expect_eq(st_parse(&f, "x.safetensors", b, size), -1);
    cr_expect(strstr(err_msg(), "header length 4611686018427387904 exceeds"), "%s", err_msg());
    free(b);
    b = image("{}", UINT64_MAX - 1, NULL, 0, &size);
    cr_expect_eq(st_parse(&f, "x.safetensors", b, size), -1);
    free(b);
    cr_expect_eq(st_parse(&f, "x.safetensors", "\x02\0\0\0", 4), -1);
    cr_expect(strstr(err_msg(), "4 bytes is too short"), "%s", err_msg());
}

Test(safetensors, files_empty_missing_and_every_truncation)
{
    const char *path = tmp_path("trunc");
    FILE *fp = fopen(path, "wb");
    fclose(fp);
    StFile f;
    cr_expect_eq(st_open(&f, path), -1);
    cr_expect(strstr(err_msg(), "0 bytes is too short"), "%s", err_msg());
    cr_expect_eq(st_open(&f, "/nonexistent/x.safetensors"), -1);
    cr_expect(strstr(err_msg(), "/nonexistent/x.safetensors: cannot open"), "%s", err_msg());
    cr_expect_eq(st_open(&f, "/tmp"), -1);
    cr_expect(strstr(err_msg(), "/tmp: not a regular file"), "%s", err_msg());

    const float v[5] = {1, 2, 3, 4, 5};
    const int64_t shape[1] = {5};
    StWriter *w = st_writer_new();
    st_writer_add(w, "v", ST_F32, 1, shape, v);
    st_writer_meta(w, "k", "v");
    cr_assert_eq(st_writer_save(w, path), 0, "%s", err_msg());
    st_writer_free(w);
    size_t n;
    unsigned char *b = read_all(path, &n);
    for (size_t cut = 0; cut < n; cut++) {
        unsigned char *c = xmalloc(cut + 1); /* exact size, so ASan sees any overread */
        memcpy(c, b, cut);
        cr_expect_eq(st_parse(&f, "cut", c, cut), -1, "accepted a file cut to %zu of %zu bytes", cut, n);
        cr_expect(strncmp(err_msg(), "cut: ", 5) == 0, "%s", err_msg());
        free(c);
    }
    free(b);
    unlink(path);
}

/* half h = (-1)^s * 2^(e-15) * 1.m, or 2^-14 * 0.m when e == 0. */
static double half_oracle(unsigned h)
{
    unsigned e = (h >> 10) & 31, m = h & 1023;
    double x = e ? ldexp(1024 + m, (int)e - 25) : ldexp(m, -24);
    return h & 0x8000 ? -x : x;
}

static double bf16_oracle(unsigned b)
{
    unsigned e = (b >> 7) & 255, m = b & 127;
    double x = e ? ldexp(128 + m, (int)e - 134) : ldexp(m, -133);
    return b & 0x8000 ? -x : x;
}

/* Every 16-bit pattern as F16 and as BF16, stored at an odd offset so the
 * reads are unaligned. */
Test(safetensors, f16_bf16_conversion_exhaustive_and_unaligned)
{
    const char *header =
             "{\"h\":{\"dtype\":\"F16\",\"shape\":[65536],\"data_offsets\":[0,131072]},"
             "\"b\":{\"dtype\":\"BF16\",\"shape\":[256,256],\"data_offsets\":[131072,262144]}}";
    cr_assert_eq(strlen(header) % 2, 1, "odd header so the data is unaligned");
    uint16_t *bits = xmalloc(2 * 65536 * 2);
    for (unsigned i = 0; i < 65536; i++) bits[i] = bits[65536 + i] = (uint16_t)i;
    size_t size;
    unsigned char *img = image(header, UINT64_MAX, bits, 262144, &size);
    StFile f;
    cr_assert_eq(st_parse(&f, "bits", img, size), 0, "%s", err_msg());
    float *h = xmalloc(65536 * sizeof *h), *b = xmalloc(65536 * sizeof *b);
    cr_assert_eq(st_read_f32(&f, st_find(&f, "h"), h, 65536), 0, "%s", err_msg());
    cr_assert_eq(st_read_f32(&f, st_find(&f, "b"), b, 65536), 0, "%s", err_msg());
    int bad = 0;
    for (unsigned i = 0; i < 65536; i++) {
        unsigned he = (i >> 10) & 31, be = (i >> 7) & 255;
        if (he == 31) bad += (i & 1023) ? !isnan(h[i]) : !(isinf(h[i]) && !!signbit(h[i]) == !!(i & 0x8000));
        else bad += (double)h[i] != half_oracle(i) || !!signbit(h[i]) != !!(i & 0x8000);
        if (be == 255) bad += (i & 127) ? !isnan(b[i]) : !(isinf(b[i]) && !!signbit(b[i]) == !!(i & 0x8000));
        else bad += (double)b[i] != bf16_oracle(i) || !!signbit(b[i]) != !!(i & 0x8000);
    }
    cr_expect_eq(bad, 0, "%d of 131072 conversions wrong", bad);
    /* a few by hand */
    cr_expect_eq(h[0x3c00], 1.0f);
    cr_expect_eq(h[0xc000], -2.0f);
    cr_expect_eq(h[0x7bff], 65504.0f);
    cr_expect_eq(h[0x3555], 0.333251953125f);
    cr_expect_eq(h[0x0001], 5.9604644775390625e-08f);
    cr_expect_eq(h[0x03ff], 6.0975551605224609375e-05f);
    cr_expect_eq(h[0x0400], 6.103515625e-05f);
    cr_expect_eq(b[0x3f80], 1.0f);
    cr_expect_eq(b[0xc040], -3.0f);
    cr_expect_eq(b[0x3eab], 0.333984375f);
    cr_expect_eq(b[0x0001], 9.18354961579912115600575419705e-41f);
    cr_expect(isinf(b[0xff80]) && b[0xff80] < 0);

    double *d = xmalloc(65536 * sizeof *d);
    cr_assert_eq(st_read_f64(&f, st_find(&f, "h"), d, 65536), 0, "%s", err_msg());
    cr_expect_eq(d[0x3555], 0.333251953125);
    cr_expect_eq(st_read_f32(&f, st_find(&f, "h"), h, 10), -1);
    cr_expect(strstr(err_msg(), "bits: tensor 'h': has 65536 elements, caller expects 10"), "%s", err_msg());
    st_close(&f);
    free(d);
    free(h);
    free(b);
    free(img);
    free(bits);
}

Test(safetensors, f64_and_integer_reads)
{
    const double dv[4] = {0.1, -1e300, 1e-320, 3.5};
    const int64_t iv[2] = {-5, (int64_t)1 << 53};
    unsigned char data[48];
    memcpy(data, dv, 32);
    memcpy(data + 32, iv, 16);
    size_t size;
    unsigned char *img = image("{\"d\":{\"dtype\":\"F64\",\"shape\":[4],\"data_offsets\":[0,32]},"
                               "\"i\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[32,48]}}",
                               UINT64_MAX, data, 48, &size);
    StFile f;
    cr_assert_eq(st_parse(&f, "m", img, size), 0, "%s", err_msg());
    float x[4];
    cr_assert_eq(st_read_f32(&f, st_find(&f, "d"), x, 4), 0, "%s", err_msg());
    cr_expect_eq(x[0], 0.1f);
    cr_expect(isinf(x[1]) && x[1] < 0, "IEEE overflow to -inf");
    cr_expect_eq(x[2], 0.0f);
    cr_expect_eq(x[3], 3.5f);
    cr_expect_eq(st_read_f32(&f, st_find(&f, "i"), x, 2), -1);
    cr_expect(strstr(err_msg(), "m: tensor 'i': dtype I64 is not a floating-point type"), "%s", err_msg());
    double y[2];
    cr_assert_eq(st_read_f64(&f, st_find(&f, "i"), y, 2), 0, "%s", err_msg());
    cr_expect(y[0] == -5 && y[1] == 9007199254740992.0);
    st_close(&f);
    free(img);
}

/* The fuzzing seeds and regressions: "ok-*" files must parse, "bad-*" must be
 * refused (run from the repository root, as tests/run does). */
Test(safetensors, fuzz_corpus_replays)
{
    const char *dir = "tests/fuzz/corpus_safetensors";
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "%s", dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        int ok = !strncmp(e->d_name, "ok-", 3);
        if (!ok && strncmp(e->d_name, "bad-", 4)) continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        StFile f;
        int rc = st_open(&f, path);
        cr_expect_eq(rc, ok ? 0 : -1, "%s: %s", e->d_name, rc ? err_msg() : "accepted");
        if (!rc) st_close(&f);
        n++;
    }
    closedir(d);
    cr_expect_geq(n, 6, "seeds missing from %s", dir);
}
