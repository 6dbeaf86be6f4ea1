#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/err.h"
#include "src/core/hash.h"

uint64_t fnv1a64_more(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

uint64_t fnv1a64(const void *data, size_t n) { return fnv1a64_more(FNV1A64_OFFSET, data, n); }

int fnv1a64_file(const char *path, uint64_t *h)
{
    FILE *f = fopen(path, "rb");
    if (!f) return err_set("%s: cannot open: %s", path, strerror(errno));
    unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) *h = fnv1a64_more(*h, buf, n);
    int bad = ferror(f);
    fclose(f);
    return bad ? err_set("%s: read error", path) : 0;
}

/* The slot holding key, or the empty slot where it belongs. */
static size_t slot_of(const StrMap *m, const char *key, size_t len)
{
    size_t i = fnv1a64(key, len) & (m->cap - 1);
    while (m->keys[i] && (m->lens[i] != len || memcmp(m->keys[i], key, len) != 0)) i = (i + 1) & (m->cap - 1);
    return i;
}

int strmap_get(const StrMap *m, const char *key, size_t len)
{
    if (!m->cap) return -1;
    size_t i = slot_of(m, key, len);
    return m->keys[i] ? m->vals[i] : -1;
}

static void grow(StrMap *m)
{
    StrMap big = {.cap = m->cap ? 2 * m->cap : 1024, .n = m->n};
    big.keys = xcalloc(big.cap, sizeof *big.keys);
    big.lens = xmalloc(big.cap * sizeof *big.lens);
    big.vals = xmalloc(big.cap * sizeof *big.vals);
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i]) {
            size_t j = slot_of(&big, m->keys[i], m->lens[i]);
            big.keys[j] = m->keys[i];
            big.lens[j] = m->lens[i];
            big.vals[j] = m->vals[i];
        }
    free(m->keys);
    free(m->lens);
    free(m->vals);
    *m = big;
}

int strmap_add(StrMap *m, const char *key, size_t len, int val)
{
    if (2 * (m->n + 1) > m->cap) grow(m);
    size_t i = slot_of(m, key, len);
    if (m->keys[i]) return m->vals[i];
    m->keys[i] = memcpy(xmalloc(len), key, len); /* never NULL, even for "" */
    m->lens[i] = len;
    m->vals[i] = val;
    m->n++;
    return val;
}

void strmap_free(StrMap *m)
{
    for (size_t i = 0; i < m->cap; i++) free(m->keys[i]);
    free(m->keys);
    free(m->lens);
    free(m->vals);
    memset(m, 0, sizeof *m);
}
