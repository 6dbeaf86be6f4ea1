/* The safetensors format: an 8-byte little-endian header length, a JSON
 * header {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
 * "__metadata__": {str: str}}, then the raw little-endian tensor bytes.
 *
 * The reader maps the file and checks every bound before trusting it:
 * header length within the file, valid UTF-8 JSON, known dtypes, shapes whose
 * element count times the dtype size equals the offset span, spans inside
 * the data section, no overlaps. Each kind of damage is a one-line error
 * naming the file (and the tensor), never a crash. Like the reference
 * implementation (huggingface/safetensors), the spans must tile the data
 * section exactly: no gaps, no overlaps, no trailing bytes. Zero-size tensors
 * and 0-dim scalars are valid. The host must be little-endian. */
#ifndef GENRE_SAFETENSORS_H
#define GENRE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

typedef enum { ST_F32, ST_F16, ST_BF16, ST_F64, ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL } StDtype;

#define ST_MAX_DIMS 8

typedef struct {
    char *name;
    StDtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t numel;
    const void *data; /* points into the mapping; little-endian, maybe unaligned */
    size_t nbytes;
} StTensor;

typedef struct {
    char *path;
    int n_tensors;
    StTensor *tensors;   /* in file order of data offsets */
    int n_meta;
    char **meta_keys, **meta_values;
    void *map;
    size_t map_size;
} StFile;

/* Opens and validates a file. 0, or -1 with err_set. */
int st_open(StFile *f, const char *path);
void st_close(StFile *f);
/* Validates a file already in memory (`name` is used in errors). The tensors
 * point into buf, which must outlive f; st_close leaves buf alone. */
int st_parse(StFile *f, const char *name, const void *buf, size_t size);

/* The tensor of that name, or NULL. */
const StTensor *st_find(const StFile *f, const char *name);
/* The metadata value of a key, or NULL. */
const char *st_meta(const StFile *f, const char *key);

/* Converts a float tensor (F32, F16, BF16, F64) into `n` floats; n must equal
 * numel. 0, or -1 with err_set naming file and tensor. */
int st_read_f32(const StFile *f, const StTensor *t, float *dst, size_t n);

/* Converts any tensor into `n` doubles (integers exact up to 2^53; BOOL as
 * 0 or 1); n must equal numel. 0, or -1 with err_set. */
int st_read_f64(const StFile *f, const StTensor *t, double *dst, size_t n);

const char *st_dtype_name(StDtype d);
size_t st_dtype_size(StDtype d);

/* Writing: tensors are referenced, not copied, until st_writer_save. */
typedef struct StWriter StWriter;
StWriter *st_writer_new(void);
void st_writer_add(StWriter *w, const char *name, StDtype dtype, int ndim, const int64_t *shape,
                   const void *data);
/* Sets a metadata entry; setting a key again replaces its value in place. */
void st_writer_meta(StWriter *w, const char *key, const char *value);
/* Writes atomically (atomic.h) exactly the bytes HuggingFace's save_file
 * writes: compact JSON header, `__metadata__` first when there is any (its
 * keys in the order given; HuggingFace's own order is a hash order, and it
 * writes an empty `{}` when given an empty dict), then the tensors by
 * descending dtype alignment rank and then by name, the header padded with
 * spaces so the data starts 8-byte aligned. Names and metadata must be
 * valid UTF-8; a repeated name or a bad shape given to st_writer_add is
 * reported here. 0, or -1 with err_set. */
int st_writer_save(StWriter *w, const char *path);
void st_writer_free(StWriter *w);

#endif
