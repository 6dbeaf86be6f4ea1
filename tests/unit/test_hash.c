#include <criterion/criterion.h>
#include <stdio.h>

#include "src/core/hash.h"

/* The published FNV-1a 64 test vectors: inspect's checksums depend on them. */
Test(hash, fnv1a64_vectors)
{
    cr_expect_eq(fnv1a64("", 0), 0xcbf29ce484222325ull);
    cr_expect_eq(fnv1a64("a", 1), 0xaf63dc4c8601ec8cull);
    cr_expect_eq(fnv1a64("foobar", 6), 0x85944171f73967e8ull);
}

Test(hash, strmap_adds_once_and_grows)
{
    StrMap m = {0};
    cr_expect_eq(strmap_get(&m, "x", 1), -1, "an empty map has nothing");
    char key[32];
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(key, sizeof key, "key%d", i);
        cr_assert_eq(strmap_add(&m, key, (size_t)n, i), i);
    }
    cr_expect_eq(m.n, 5000);
    cr_expect_leq(2 * m.n, m.cap, "kept under half full");
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(key, sizeof key, "key%d", i);
        cr_expect_eq(strmap_get(&m, key, (size_t)n), i);
        cr_expect_eq(strmap_add(&m, key, (size_t)n, -7), i, "a present key keeps its value");
    }
    cr_expect_eq(m.n, 5000);
    cr_expect_eq(strmap_get(&m, "key5000", 7), -1);
    strmap_free(&m);
    cr_expect_eq(m.cap, 0);
}

/* Keys are byte strings: a NUL inside one, a prefix and the empty key are all distinct. */
Test(hash, strmap_keys_are_bytes)
{
    StrMap m = {0};
    cr_expect_eq(strmap_add(&m, "ab\0c", 4, 1), 1);
    cr_expect_eq(strmap_add(&m, "ab", 2, 2), 2);
    cr_expect_eq(strmap_add(&m, "", 0, 3), 3);
    cr_expect_eq(strmap_get(&m, "ab\0c", 4), 1);
    cr_expect_eq(strmap_get(&m, "ab\0d", 4), -1);
    cr_expect_eq(strmap_get(&m, "ab", 2), 2);
    cr_expect_eq(strmap_get(&m, "", 0), 3);
    strmap_free(&m);
}
