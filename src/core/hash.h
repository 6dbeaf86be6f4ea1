/* The one string hash of the tree, FNV-1a (64-bit), and the byte-string ->
 * int map built on it. FNV-1a is the same on every run and machine, so it
 * also serves as a checksum (genre inspect prints it for each tensor). */
#ifndef GENRE_HASH_H
#define GENRE_HASH_H

#include <stddef.h>
#include <stdint.h>

/* FNV-1a 64 of the n bytes at data. */
uint64_t fnv1a64(const void *data, size_t n);

/* The hash so far, h (FNV1A64_OFFSET for none), continued over n more
 * bytes: fnv1a64 of a concatenation, piece by piece. */
#define FNV1A64_OFFSET 0xcbf29ce484222325ull
uint64_t fnv1a64_more(uint64_t h, const void *data, size_t n);

/* *h continued over the bytes of the file at path. 0, or -1 with err_set. */
int fnv1a64_file(const char *path, uint64_t *h);

/* Byte strings (any bytes, NUL included) -> ints: open addressing on
 * fnv1a64, kept under half full. A zeroed StrMap is an empty map; the map
 * owns copies of its keys. */
typedef struct {
    char **keys;  /* lens[i] bytes each; NULL: an empty slot */
    size_t *lens;
    int *vals;
    size_t cap, n;
} StrMap;

/* The value of key[0..len), or -1 when the key is absent. */
int strmap_get(const StrMap *m, const char *key, size_t len);
/* The value of key[0..len); when absent, the key is added (a copy) with
 * value val first, so a caller tells "new" by getting val back. */
int strmap_add(StrMap *m, const char *key, size_t len, int val);
void strmap_free(StrMap *m);

#endif
