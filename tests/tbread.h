/* A reader of TensorBoard event files for the tests, written from the
 * format (not from src/eval/tbevents.c): every record's length and data
 * CRC checked, every Event decoded as protobuf, keeping the scalars. */
#ifndef GENRE_TESTS_TBREAD_H
#define GENRE_TESTS_TBREAD_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/eval/tbevents.h"

typedef struct {
    int file;       /* index of its file in name order */
    long step;
    char tag[64];
    float value;
} TbScalarRead;

typedef struct {
    TbScalarRead *s;
    int n, files, versions; /* scalars, files, file_version events ("brain.Event:2") */
    int version_first;      /* every file begins with its file_version event */
    char error[4600];       /* set on the first damaged record */
} TbRead;

static uint64_t tbr_le(const uint8_t *p, int n)
{
    uint64_t x = 0;
    for (int i = n - 1; i >= 0; i--) x = x << 8 | p[i];
    return x;
}

static int tbr_varint(const uint8_t **p, const uint8_t *end, uint64_t *x)
{
    *x = 0;
    for (int shift = 0; *p < end && shift < 64; shift += 7) {
        uint8_t b = *(*p)++;
        *x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return 0;
    }
    return -1;
}

/* The fields of one message: calls fn(field, wire type, value or bytes). */
typedef void (*TbrField)(int field, int wt, uint64_t v, const uint8_t *bytes, size_t n, void *ctx);

static int tbr_fields(const uint8_t *p, const uint8_t *end, TbrField fn, void *ctx)
{
    while (p < end) {
        uint64_t key, v = 0;
        if (tbr_varint(&p, end, &key) != 0) return -1;
        int wt = (int)(key & 7), field = (int)(key >> 3);
        const uint8_t *bytes = NULL;
        size_t n = 0;
        if (wt == 0) {
            if (tbr_varint(&p, end, &v) != 0) return -1;
        } else if (wt == 1 || wt == 5) {
            n = wt == 1 ? 8 : 4;
            if ((size_t)(end - p) < n) return -1;
            v = tbr_le(p, (int)n);
            p += n;
        } else if (wt == 2) {
            if (tbr_varint(&p, end, &v) != 0 || v > (uint64_t)(end - p)) return -1;
            bytes = p;
            n = (size_t)v;
            p += n;
        } else {
            return -1;
        }
        fn(field, wt, v, bytes, n, ctx);
    }
    return 0;
}

typedef struct {
    long step;
    int has_summary, is_version, values;
    char tag[64];
    float value;
} TbrEvent;

static void tbr_value(int field, int wt, uint64_t v, const uint8_t *bytes, size_t n, void *ctx)
{
    TbrEvent *e = ctx;
    if (field == 1 && wt == 2) snprintf(e->tag, sizeof e->tag, "%.*s", (int)n, (const char *)bytes);
    if (field == 2 && wt == 5) {
        uint32_t u = (uint32_t)v;
        memcpy(&e->value, &u, 4);
    }
}

static void tbr_summary(int field, int wt, uint64_t v, const uint8_t *bytes, size_t n, void *ctx)
{
    (void)v;
    if (field == 1 && wt == 2) {
        ((TbrEvent *)ctx)->values++;
        tbr_fields(bytes, bytes + n, tbr_value, ctx);
    }
}

static void tbr_event(int field, int wt, uint64_t v, const uint8_t *bytes, size_t n, void *ctx)
{
    TbrEvent *e = ctx;
    if (field == 2 && wt == 0) e->step = (long)v;
    if (field == 3 && wt == 2) e->is_version = n == 13 && !memcmp(bytes, "brain.Event:2", 13);
    if (field == 5 && wt == 2) {
        e->has_summary = 1;
        tbr_fields(bytes, bytes + n, tbr_summary, ctx);
    }
}

static int tbr_names(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }

static int tbr_is_events(const struct dirent *d) { return strstr(d->d_name, "tfevents") != NULL; }

/* Every events file of dir in name order into r (zeroed here). 0, or -1
 * with r->error saying which record of which file is damaged. */
static int tb_read_dir(TbRead *r, const char *dir)
{
    memset(r, 0, sizeof *r);
    r->version_first = 1;
    struct dirent **names;
    int n = scandir(dir, &names, tbr_is_events, tbr_names), rc = 0;
    if (n < 0) {
        snprintf(r->error, sizeof r->error, "%s: cannot list", dir);
        return -1;
    }
    for (int k = 0; k < n; k++) {
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, names[k]->d_name);
        FILE *f = fopen(path, "rb");
        uint8_t head[12], *data = NULL;
        for (int rec = 0; rc == 0 && f; rec++) {
            size_t got = fread(head, 1, 12, f);
            if (got == 0) break;
            if (got < 12) {
                snprintf(r->error, sizeof r->error, "%s: record %d: cut short in its header", path, rec);
                rc = -1;
                break;
            }
            uint64_t len = tbr_le(head, 8);
            uint8_t crc[4];
            if ((uint32_t)tbr_le(head + 8, 4) != tb_masked_crc(tb_crc32c(head, 8)) || len > 1 << 20) {
                snprintf(r->error, sizeof r->error, "%s: record %d: bad length CRC", path, rec);
                rc = -1;
                break;
            }
            data = realloc(data, len ? len : 1);
            if (fread(data, 1, len, f) != len || fread(crc, 1, 4, f) != 4 ||
                (uint32_t)tbr_le(crc, 4) != tb_masked_crc(tb_crc32c(data, len))) {
                snprintf(r->error, sizeof r->error, "%s: record %d: cut short or bad data CRC", path, rec);
                rc = -1;
                break;
            }
            TbrEvent e = {0};
            if (tbr_fields(data, data + len, tbr_event, &e) != 0) {
                snprintf(r->error, sizeof r->error, "%s: record %d: not protobuf", path, rec);
                rc = -1;
                break;
            }
            if (e.is_version) r->versions++;
            if (rec == 0 && !e.is_version) r->version_first = 0;
            if (e.has_summary && e.values == 1) {
                r->s = realloc(r->s, (size_t)(r->n + 1) * sizeof *r->s);
                r->s[r->n] = (TbScalarRead){.file = k, .step = e.step, .value = e.value};
                snprintf(r->s[r->n++].tag, sizeof r->s->tag, "%s", e.tag);
            }
        }
        free(data);
        if (f) fclose(f);
        free(names[k]);
    }
    free(names);
    r->files = n;
    return rc;
}

/* The value of tag at step, and how many times the pair was written. */
static int tb_find(const TbRead *r, const char *tag, long step, float *value)
{
    int count = 0;
    for (int i = 0; i < r->n; i++)
        if (r->s[i].step == step && !strcmp(r->s[i].tag, tag)) {
            *value = r->s[i].value;
            count++;
        }
    return count;
}

static void tb_read_free(TbRead *r)
{
    free(r->s);
    memset(r, 0, sizeof *r);
}

#endif
