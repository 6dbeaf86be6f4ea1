#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"
#include "tokenizer/unicode_tables.h"

bool uni_whitespace(uint32_t c)
{
    if (c <= 0x20) return c == 0x20 || (c >= 0x09 && c <= 0x0D);
    switch (c) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029:
    case 0x202F: case 0x205F: case 0x3000:
        return true;
    default:
        return c >= 0x2000 && c <= 0x200A;
    }
}

static bool in_table(uint32_t c, const UniRange *t, size_t n)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c > t[mid].hi) lo = mid + 1;
        else if (c < t[mid].lo) hi = mid;
        else return true;
    }
    return false;
}

#define IN(c, table) in_table(c, table, sizeof table / sizeof table[0])

bool uni_dropped(uint32_t c) { return IN(c, uni_dropped_table); }

bool uni_nonspacing_mark(uint32_t c) { return c >= 0x300 && IN(c, uni_mark_table); }

bool uni_punct(uint32_t c) { return IN(c, uni_punct_table); }

int uni_decompose(uint32_t c, uint32_t out[4])
{
    if (c >= 0xAC00 && c <= 0xD7A3) { /* Hangul syllables, by the algorithm */
        uint32_t s = c - 0xAC00;
        out[0] = 0x1100 + s / 588;
        out[1] = 0x1161 + s % 588 / 28;
        out[2] = 0x11A7 + s % 28;
        return s % 28 ? 3 : 2;
    }
    size_t lo = 0, hi = sizeof uni_decomp_table / sizeof uni_decomp_table[0];
    while (c >= 0xC0 && lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (uni_decomp_table[mid].cp < c) lo = mid + 1;
        else if (uni_decomp_table[mid].cp > c) hi = mid;
        else {
            int n = 0;
            while (n < 4 && uni_decomp_table[mid].d[n]) out[n] = uni_decomp_table[mid].d[n], n++;
            return n;
        }
    }
    out[0] = c;
    return 1;
}

uint32_t uni_lower(uint32_t c)
{
    size_t lo = 0, hi = sizeof uni_lower_table / sizeof uni_lower_table[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (uni_lower_table[mid].cp < c) lo = mid + 1;
        else if (uni_lower_table[mid].cp > c) hi = mid;
        else return uni_lower_table[mid].lower;
    }
    return c;
}

bool uni_chinese(uint32_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}
