#include <string.h>
#include <strings.h>

#include "src/data/clean.h"
#include "src/core/err.h"

#define ELLIPSIS "\xE2\x80\xA6" /* U+2026 */
#define NBSP "\xC2\xA0"

/* The longest credit we take for a name rather than for plot text. */
#define MAX_CREDIT 80

static int ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

static size_t trim_end(const char *s, size_t n)
{
    while (n > 0 && s[n - 1] == ' ') n--;
    return n;
}

/* Last occurrence of needle in s[0..n), or NULL. */
static const char *find_last(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = n >= k ? n - k + 1 : 0; i-- > 0;)
        if (memcmp(s + i, needle, k) == 0) return s + i;
    return NULL;
}

/* One pass over the tail; returns the new length (n if nothing matched). */
static size_t strip_tail(const char *s, size_t n)
{
    if (ends_with(s, n, "<more>")) {
        n -= 6;
        for (;;) {
            if (ends_with(s, n, "...")) n -= 3;
            else if (ends_with(s, n, ELLIPSIS)) n -= 3;
            else break;
        }
        return trim_end(s, n);
    }
    const char *tags = find_last(s, n, "Tags :");
    if (tags) return trim_end(s, (size_t)(tags - s));
    if (ends_with(s, n, ELLIPSIS)) return trim_end(s, n - 3);
    const char *credit = find_last(s, n, "Written by");
    if (credit && (size_t)(s + n - credit) <= MAX_CREDIT && (credit + 10 == s + n || credit[10] == ' ') &&
        (credit == s || strchr(" .!?\")", credit[-1])))
        return trim_end(s, (size_t)(credit - s));
    return n;
}

void clean_whitespace(char *s)
{
    char *w = s;
    int space = 1; /* drops leading whitespace */
    for (char *r = s; *r;) {
        int ws = strchr(" \t\r\n\v\f", *r) ? 1 : memcmp(r, NBSP, 2) == 0 ? 2 : 0;
        if (ws) {
            if (!space) *w++ = ' ';
            space = 1;
            r += ws;
        } else {
            *w++ = *r++;
            space = 0;
        }
    }
    *w = '\0';
    size_t n = trim_end(s, (size_t)(w - s));
    s[n] = '\0';
}

char *clean_description(const char *s)
{
    char *out = xstrdup(s);
    clean_whitespace(out);
    size_t n = strlen(out);
    for (size_t m; (m = strip_tail(out, n)) != n;) n = m;
    out[n] = '\0';
    if (strcasecmp(out, "n/a") == 0) out[0] = '\0';
    return out;
}
