#include <string.h>
#include <strings.h>

#include "clean.h"
#include "err.h"

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

char *clean_description(const char *s)
{
    size_t len = strlen(s), n = 0;
    char *out = xmalloc(len + 1);
    /* Whitespace runs (ASCII and no-break space) become one space. */
    int space = 1; /* drops leading whitespace */
    for (size_t i = 0; i < len;) {
        int ws = 0;
        if (strchr(" \t\r\n\v\f", s[i])) ws = 1;
        else if (memcmp(s + i, NBSP, 2) == 0) ws = 2;
        if (ws) {
            if (!space) out[n++] = ' ';
            space = 1;
            i += (size_t)ws;
        } else {
            out[n++] = s[i++];
            space = 0;
        }
    }
    n = trim_end(out, n);
    for (size_t m; (m = strip_tail(out, n)) != n;) n = m;
    out[n] = '\0';
    if (strcasecmp(out, "n/a") == 0) out[0] = '\0';
    return out;
}
