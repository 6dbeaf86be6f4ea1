/* The safetensors reader and writer; the format and every check the reader
 * makes are described in safetensors.h. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/core/atomic.h"
#include "src/core/err.h"
#include "src/core/jsonfile.h"
#include "src/io/safetensors.h"
#include "src/core/utf8.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c reads and writes the file's little-endian bytes directly"
#endif

/* The reference implementation refuses larger headers too. */
#define ST_MAX_HEADER 100000000ull

/* name, element size, and rank in the reference's Dtype enum, whose
 * descending order the writer sorts by. */
static const struct {
    const char *name;
    size_t size;
    int rank;
} dtypes[] = {
    [ST_F32] = {"F32", 4, 7},  [ST_F16] = {"F16", 2, 4}, [ST_BF16] = {"BF16", 2, 5},
    [ST_F64] = {"F64", 8, 8},  [ST_I64] = {"I64", 8, 9}, [ST_I32] = {"I32", 4, 6},
    [ST_I16] = {"I16", 2, 3},  [ST_I8] = {"I8", 1, 2},   [ST_U8] = {"U8", 1, 1},
    [ST_BOOL] = {"BOOL", 1, 0},
};
#define N_DTYPES ((int)(sizeof dtypes / sizeof dtypes[0]))

const char *st_dtype_name(StDtype d) { return (int)d >= 0 && (int)d < N_DTYPES ? dtypes[d].name : "?"; }
size_t st_dtype_size(StDtype d) { return (int)d >= 0 && (int)d < N_DTYPES ? dtypes[d].size : 0; }

static int dtype_parse(const char *s, StDtype *d)
{
    for (int i = 0; i < N_DTYPES; i++)
        if (!strcmp(s, dtypes[i].name)) { *d = (StDtype)i; return 0; }
    return -1;
}

/* ---- reading ---- */

typedef struct {
    StTensor t;
    size_t begin, end;
} Span;

static int span_cmp(const void *a, const void *b)
{
    const Span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->t.name, y->t.name);
}

/* A non-negative JSON integer, or -1. */
static int64_t json_count(const json_t *v)
{
    if (!json_is_integer(v)) return -1;
    json_int_t x = json_integer_value(v);
    return x < 0 ? -1 : (int64_t)x;
}

/* Checks one header entry and fills its span; data_size bounds the offsets. */
static int parse_entry(const char *path, const char *name, const json_t *v, size_t data_size, Span *s)
{
    if (!json_is_object(v)) return err_set("%s: tensor '%s': entry is not a JSON object", path, name);
    const json_t *dt = json_object_get(v, "dtype");
    const json_t *sh = json_object_get(v, "shape");
    const json_t *off = json_object_get(v, "data_offsets");
    if (!dt) return err_set("%s: tensor '%s': missing \"dtype\"", path, name);
    if (!sh) return err_set("%s: tensor '%s': missing \"shape\"", path, name);
    if (!off) return err_set("%s: tensor '%s': missing \"data_offsets\"", path, name);
    if (!json_is_string(dt)) return err_set("%s: tensor '%s': \"dtype\" is not a string", path, name);
    StTensor *t = &s->t;
    if (dtype_parse(json_string_value(dt), &t->dtype))
        return err_set("%s: tensor '%s': unknown or unsupported dtype '%s' (supported: F32 F16 BF16 "
                       "F64 I64 I32 I16 I8 U8 BOOL)", path, name, json_string_value(dt));
    if (!json_is_array(sh)) return err_set("%s: tensor '%s': \"shape\" is not an array", path, name);
    size_t ndim = json_array_size(sh);
    if (ndim > ST_MAX_DIMS)
        return err_set("%s: tensor '%s': %zu dimensions, at most %d supported", path, name, ndim, ST_MAX_DIMS);
    t->ndim = (int)ndim;
    uint64_t numel = 1;
    int overflow = 0;
    for (size_t i = 0; i < ndim; i++) {
        int64_t d = json_count(json_array_get(sh, i));
        if (d < 0)
            return err_set("%s: tensor '%s': shape[%zu] is not a non-negative integer", path, name, i);
        t->shape[i] = d;
        overflow |= __builtin_mul_overflow(numel, (uint64_t)d, &numel);
    }
    uint64_t nbytes;
    overflow |= __builtin_mul_overflow(numel, (uint64_t)dtypes[t->dtype].size, &nbytes);
    if (overflow || nbytes > SIZE_MAX)
        return err_set("%s: tensor '%s': shape too large (element count overflows)", path, name);
    if (!json_is_array(off) || json_array_size(off) != 2)
        return err_set("%s: tensor '%s': \"data_offsets\" is not an array [begin, end]", path, name);
    int64_t b = json_count(json_array_get(off, 0)), e = json_count(json_array_get(off, 1));
    if (b < 0 || e < 0)
        return err_set("%s: tensor '%s': \"data_offsets\" are not non-negative integers", path, name);
    if (b > e)
        return err_set("%s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64 "] end before they begin",
                       path, name, b, e);
    if ((uint64_t)e > data_size)
        return err_set("%s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64 "] run past the data "
                       "section (%zu bytes)", path, name, b, e, data_size);
    if ((uint64_t)(e - b) != nbytes)
        return err_set("%s: tensor '%s': shape and dtype %s need %" PRIu64 " bytes but data_offsets "
                       "[%" PRId64 ", %" PRId64 "] hold %" PRId64, path, name, dtypes[t->dtype].name,
                       nbytes, b, e, e - b);
    s->begin = (size_t)b;
    s->end = (size_t)e;
    t->numel = (size_t)numel;
    t->nbytes = (size_t)nbytes;
    return 0;
}

static int parse_meta(StFile *f, const json_t *m)
{
    if (!json_is_object(m)) return err_set("%s: \"__metadata__\" is not a JSON object", f->path);
    size_t n = json_object_size(m);
    f->meta_keys = xcalloc(n, sizeof *f->meta_keys);
    f->meta_values = xcalloc(n, sizeof *f->meta_values);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)m, k, v) {
        if (!json_is_string(v))
            return err_set("%s: \"__metadata__\" value of '%s' is not a string", f->path, k);
        f->meta_keys[f->n_meta] = xstrdup(k);
        f->meta_values[f->n_meta] = xstrdup(json_string_value(v));
        f->n_meta++;
    }
    return 0;
}

/* Sorts the spans by offset and checks that they tile [0, data_size). */
static int check_tiling(const char *path, Span *s, int n, size_t data_size)
{
    qsort(s, (size_t)n, sizeof *s, span_cmp);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        if (s[i].begin < at)
            return err_set("%s: tensors '%s' [%zu, %zu] and '%s' [%zu, %zu] overlap", path, s[i - 1].t.name,
                           s[i - 1].begin, s[i - 1].end, s[i].t.name, s[i].begin, s[i].end);
        if (s[i].begin > at)
            return err_set("%s: data bytes [%zu, %zu] before tensor '%s' belong to no tensor", path, at,
                           s[i].begin, s[i].t.name);
        at = s[i].end;
    }
    if (at != data_size)
        return err_set("%s: data bytes [%zu, %zu] after the last tensor belong to no tensor", path, at,
                       data_size);
    return 0;
}

static int parse_header(StFile *f, const unsigned char *buf, size_t size)
{
    const char *path = f->path;
    if (size < 8)
        return err_set("%s: %zu bytes is too short for a safetensors file (8-byte header length)", path, size);
    uint64_t n;
    memcpy(&n, buf, 8);
    if (n > ST_MAX_HEADER)
        return err_set("%s: header length %" PRIu64 " exceeds the %llu-byte limit (not a safetensors file?)",
                       path, n, ST_MAX_HEADER);
    if (n > size - 8)
        return err_set("%s: header length %" PRIu64 " runs past the end of the file (%zu bytes)", path, n, size);
    json_error_t je;
    json_t *root = json_loadb((const char *)buf + 8, (size_t)n, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return err_set("%s: header is not valid JSON at byte %d (line %d, column %d): %s", path,
                       8 + je.position, je.line, je.column, json_error_what(&je));
    if (!json_is_object(root)) {
        json_decref(root);
        return err_set("%s: header is not a JSON object", path);
    }
    const unsigned char *data = buf + 8 + n;
    size_t data_size = size - 8 - (size_t)n;
    size_t cap = json_object_size(root);
    Span *spans = xcalloc(cap, sizeof *spans);
    int ns = 0, rc = 0;
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v) {
        if (!strcmp(k, "__metadata__")) {
            if ((rc = parse_meta(f, v))) break;
            continue;
        }
        Span *s = &spans[ns];
        if ((rc = parse_entry(path, k, v, data_size, s))) break;
        s->t.name = xstrdup(k);
        s->t.data = data + s->begin;
        ns++;
    }
    json_decref(root);
    if (!rc) rc = check_tiling(path, spans, ns, data_size);
    f->tensors = xcalloc((size_t)ns, sizeof *f->tensors);
    for (int i = 0; i < ns; i++) f->tensors[i] = spans[i].t;
    f->n_tensors = ns;
    free(spans);
    return rc;
}

int st_parse(StFile *f, const char *name, const void *buf, size_t size)
{
    memset(f, 0, sizeof *f);
    f->path = xstrdup(name);
    if (parse_header(f, buf, size)) {
        st_close(f);
        return -1;
    }
    return 0;
}

int st_open(StFile *f, const char *path)
{
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return err_set("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return err_set("%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return err_set("%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    void *map = NULL;
    if (size > 0) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return err_set("%s: cannot map: %s", path, strerror(e));
        }
    }
    close(fd);
    if (st_parse(f, path, size ? map : "", size)) {
        if (map) munmap(map, size);
        return -1;
    }
    f->map = map;
    f->map_size = size;
    return 0;
}

void st_close(StFile *f)
{
    for (int i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->tensors);
    free(f->meta_keys);
    free(f->meta_values);
    free(f->path);
    if (f->map) munmap(f->map, f->map_size);
    memset(f, 0, sizeof *f);
}

const StTensor *st_find(const StFile *f, const char *name)
{
    for (int i = 0; i < f->n_tensors; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

const char *st_meta(const StFile *f, const char *key)
{
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta_keys[i], key)) return f->meta_values[i];
    return NULL;
}

/* ---- conversions ---- */

/* IEEE half -> float, exact: subnormals are renormalised, inf and nan kept
 * (nan payload shifted into the float mantissa). */
static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else { /* subnormal: value man * 2^-24; shift until the implicit bit */
        int e = 113;
        while (!(man & 0x400)) { man <<= 1; e--; }
        bits = sign | ((uint32_t)e << 23) | ((man & 0x3ff) << 13);
    }
    float x;
    memcpy(&x, &bits, 4);
    return x;
}

static float bf16_to_float(uint16_t b)
{
    uint32_t bits = (uint32_t)b << 16;
    float x;
    memcpy(&x, &bits, 4);
    return x;
}

/* load_T(p, i): element i of a tensor's bytes, copied byte-wise because the
 * data may be unaligned. */
#define DEFINE_LOAD(T)                                                                                  \
    static T load_##T(const void *p, size_t i)                                                          \
    {                                                                                                   \
        T v;                                                                                            \
        memcpy(&v, (const unsigned char *)p + i * sizeof v, sizeof v);                                  \
        return v;                                                                                       \
    }
DEFINE_LOAD(float)
DEFINE_LOAD(double)
DEFINE_LOAD(int64_t)
DEFINE_LOAD(int32_t)
DEFINE_LOAD(int16_t)
DEFINE_LOAD(int8_t)
DEFINE_LOAD(uint16_t)
DEFINE_LOAD(uint8_t)

static int check_n(const StFile *f, const StTensor *t, size_t n)
{
    if (n != t->numel)
        return err_set("%s: tensor '%s': has %zu elements, caller expects %zu", f->path, t->name, t->numel, n);
    return 0;
}

int st_read_f32(const StFile *f, const StTensor *t, float *dst, size_t n)
{
    if (check_n(f, t, n)) return -1;
    const void *p = t->data;
    switch (t->dtype) {
    case ST_F32: if (n) memcpy(dst, p, n * 4); return 0;
    case ST_F16: for (size_t i = 0; i < n; i++) dst[i] = half_to_float(load_uint16_t(p, i)); return 0;
    case ST_BF16: for (size_t i = 0; i < n; i++) dst[i] = bf16_to_float(load_uint16_t(p, i)); return 0;
    case ST_F64: for (size_t i = 0; i < n; i++) dst[i] = (float)load_double(p, i); return 0;
    default:
        return err_set("%s: tensor '%s': dtype %s is not a floating-point type", f->path, t->name,
                       st_dtype_name(t->dtype));
    }
}

int st_read_f64(const StFile *f, const StTensor *t, double *dst, size_t n)
{
    if (check_n(f, t, n)) return -1;
    const void *p = t->data;
    switch (t->dtype) {
    case ST_F32: for (size_t i = 0; i < n; i++) dst[i] = load_float(p, i); break;
    case ST_F16: for (size_t i = 0; i < n; i++) dst[i] = half_to_float(load_uint16_t(p, i)); break;
    case ST_BF16: for (size_t i = 0; i < n; i++) dst[i] = bf16_to_float(load_uint16_t(p, i)); break;
    case ST_F64: if (n) memcpy(dst, p, n * 8); break;
    case ST_I64: for (size_t i = 0; i < n; i++) dst[i] = (double)load_int64_t(p, i); break;
    case ST_I32: for (size_t i = 0; i < n; i++) dst[i] = load_int32_t(p, i); break;
    case ST_I16: for (size_t i = 0; i < n; i++) dst[i] = load_int16_t(p, i); break;
    case ST_I8: for (size_t i = 0; i < n; i++) dst[i] = load_int8_t(p, i); break;
    case ST_U8: for (size_t i = 0; i < n; i++) dst[i] = load_uint8_t(p, i); break;
    case ST_BOOL: for (size_t i = 0; i < n; i++) dst[i] = load_uint8_t(p, i) != 0; break;
    }
    return 0;
}

/* ---- writing ---- */

typedef struct {
    char *name;
    StDtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data;
    size_t nbytes;
} WEntry;

struct StWriter {
    WEntry *t;
    int n, cap;
    char **keys, **values;
    int n_meta, cap_meta;
    char *error; /* the first bad st_writer_add, reported by save */
};

StWriter *st_writer_new(void) { return xcalloc(1, sizeof(StWriter)); }

static void writer_fail(StWriter *w, const char *name, const char *why)
{
    if (w->error) return;
    size_t n = strlen(name) + strlen(why) + 32;
    w->error = xmalloc(n);
    snprintf(w->error, n, "tensor '%s': %s", name, why);
}

void st_writer_add(StWriter *w, const char *name, StDtype dtype, int ndim, const int64_t *shape,
                   const void *data)
{
    const char *bad = NULL;
    uint64_t numel = 1;
    if ((int)dtype < 0 || (int)dtype >= N_DTYPES) bad = "unknown dtype";
    else if (ndim < 0 || ndim > ST_MAX_DIMS) bad = "bad number of dimensions";
    for (int i = 0; !bad && i < ndim; i++) {
        if (shape[i] < 0) bad = "negative dimension";
        else if (__builtin_mul_overflow(numel, (uint64_t)shape[i], &numel)) bad = "shape too large";
    }
    if (!bad && numel > SIZE_MAX / dtypes[dtype].size) bad = "shape too large";
    for (int i = 0; !bad && i < w->n; i++)
        if (!strcmp(w->t[i].name, name)) bad = "added twice";
    if (bad) {
        writer_fail(w, name, bad);
        return;
    }
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 16;
        w->t = xrealloc(w->t, (size_t)w->cap * sizeof *w->t);
    }
    WEntry *e = &w->t[w->n++];
    memset(e, 0, sizeof *e);
    e->name = xstrdup(name);
    e->dtype = dtype;
    e->ndim = ndim;
    if (ndim) memcpy(e->shape, shape, (size_t)ndim * sizeof *shape);
    e->data = data;
    e->nbytes = (size_t)numel * dtypes[dtype].size;
}

void st_writer_meta(StWriter *w, const char *key, const char *value)
{
    for (int i = 0; i < w->n_meta; i++)
        if (!strcmp(w->keys[i], key)) {
            free(w->values[i]);
            w->values[i] = xstrdup(value);
            return;
        }
    if (w->n_meta == w->cap_meta) {
        w->cap_meta = w->cap_meta ? 2 * w->cap_meta : 8;
        w->keys = xrealloc(w->keys, (size_t)w->cap_meta * sizeof *w->keys);
        w->values = xrealloc(w->values, (size_t)w->cap_meta * sizeof *w->values);
    }
    w->keys[w->n_meta] = xstrdup(key);
    w->values[w->n_meta] = xstrdup(value);
    w->n_meta++;
}

void st_writer_free(StWriter *w)
{
    if (!w) return;
    for (int i = 0; i < w->n; i++) free(w->t[i].name);
    for (int i = 0; i < w->n_meta; i++) {
        free(w->keys[i]);
        free(w->values[i]);
    }
    free(w->t);
    free(w->keys);
    free(w->values);
    free(w->error);
    free(w);
}

/* The reference's order: descending dtype rank, then names byte-wise. */
static int wentry_cmp(const void *a, const void *b)
{
    const WEntry *x = a, *y = b;
    int rx = dtypes[x->dtype].rank, ry = dtypes[y->dtype].rank;
    if (rx != ry) return ry - rx;
    return strcmp(x->name, y->name);
}

typedef struct {
    char *s;
    size_t n, cap;
} Buf;

static void buf_put(Buf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        while (b->n + n + 1 > b->cap) b->cap = b->cap ? 2 * b->cap : 4096;
        b->s = xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

static void buf_str(Buf *b, const char *s) { buf_put(b, s, strlen(s)); }

/* A JSON string escaped as serde_json writes it: \" \\ \b \t \n \f \r, other
 * control characters as lowercase \u00xx, everything else (UTF-8 included) raw. */
static int buf_json_string(Buf *b, const char *s)
{
    size_t len = strlen(s);
    if (utf8_check(s, len) != len) return -1;
    buf_str(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        switch (*p) {
        case '"': buf_str(b, "\\\""); break;
        case '\\': buf_str(b, "\\\\"); break;
        case '\b': buf_str(b, "\\b"); break;
        case '\t': buf_str(b, "\\t"); break;
        case '\n': buf_str(b, "\\n"); break;
        case '\f': buf_str(b, "\\f"); break;
        case '\r': buf_str(b, "\\r"); break;
        default:
            if (*p < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", *p);
                buf_str(b, esc);
            } else {
                buf_put(b, (const char *)p, 1);
            }
        }
    }
    buf_str(b, "\"");
    return 0;
}

/* The padded header; -1 with err_set on a name or value that is not UTF-8. */
static int build_header(StWriter *w, const char *path, Buf *h)
{
    buf_str(h, "{");
    if (w->n_meta) {
        buf_str(h, "\"__metadata__\":{");
        for (int i = 0; i < w->n_meta; i++) {
            if (i) buf_str(h, ",");
            if (buf_json_string(h, w->keys[i]))
                return err_set("%s: metadata key '%s' is not valid UTF-8", path, w->keys[i]);
            buf_str(h, ":");
            if (buf_json_string(h, w->values[i]))
                return err_set("%s: metadata value of '%s' is not valid UTF-8", path, w->keys[i]);
        }
        buf_str(h, "}");
    }
    size_t off = 0;
    char num[64];
    for (int i = 0; i < w->n; i++) {
        const WEntry *e = &w->t[i];
        if (w->n_meta || i) buf_str(h, ",");
        if (buf_json_string(h, e->name)) return err_set("%s: tensor name '%s' is not valid UTF-8", path, e->name);
        buf_str(h, ":{\"dtype\":\"");
        buf_str(h, dtypes[e->dtype].name);
        buf_str(h, "\",\"shape\":[");
        for (int d = 0; d < e->ndim; d++) {
            snprintf(num, sizeof num, "%s%" PRId64, d ? "," : "", e->shape[d]);
            buf_str(h, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%zu,%zu]}", off, off + e->nbytes);
        buf_str(h, num);
        off += e->nbytes;
    }
    buf_str(h, "}");
    while (h->n % 8) buf_str(h, " ");
    return 0;
}

int st_writer_save(StWriter *w, const char *path)
{
    if (w->error) return err_set("%s: %s", path, w->error);
    if (w->n) qsort(w->t, (size_t)w->n, sizeof *w->t, wentry_cmp);
    Buf h = {0};
    if (build_header(w, path, &h)) {
        free(h.s);
        return -1;
    }
    AtomicFile *af = atomic_open(path);
    if (!af) {
        free(h.s);
        return -1;
    }
    FILE *out = atomic_stream(af);
    uint64_t n = h.n;
    fwrite(&n, 8, 1, out);
    fwrite(h.s, 1, h.n, out);
    for (int i = 0; i < w->n; i++)
        if (w->t[i].nbytes) fwrite(w->t[i].data, 1, w->t[i].nbytes, out);
    free(h.s);
    return atomic_commit(af);
}
