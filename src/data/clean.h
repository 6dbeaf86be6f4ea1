/* Cleaning of scraped movie descriptions: removes the listing site's
 * artifacts, which carry no information about the plot:
 *   - "...<more>" and "…...<more>" read-more links at the end,
 *   - a "Tags : a | b" keyword tail and the "…" cut mark before it,
 *   - a trailing "Written by NAME" credit (at most 80 bytes long),
 *   - the placeholder "n/A",
 * and collapses every run of whitespace (CR, LF, tab, no-break space) into
 * one space, trimming both ends. Input must be valid UTF-8. */
#ifndef GENRE_CLEAN_H
#define GENRE_CLEAN_H

/* Collapses whitespace runs into one space and trims, in place. */
void clean_whitespace(char *s);

/* Returns the cleaned text (caller frees); "" when nothing is left. */
char *clean_description(const char *s);

#endif
