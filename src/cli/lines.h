/* The texts of embed, predict and tokenize: stdin read one line at a time,
 * in large reads, each line handed out in place. A line ends in "\n" or
 * "\r\n"; the last one needs neither, and an empty line is a line.
 * lines_ready tells whether the next line is already there, so that a
 * command can answer what it has read before it waits for more. */
#ifndef GENRE_LINES_H
#define GENRE_LINES_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *cmd;  /* named in errors */
    bool utf8;        /* every line must be valid UTF-8 */
    long line;        /* lines returned so far: the number of the last one */
    char *buf;        /* buf[start..end): read, not returned yet */
    size_t cap, start, end, scanned; /* buf[start..scanned) holds no '\n' */
    bool eof;
} LineReader;

/* Starts reading stdin for command cmd; with utf8, a line that is not valid
 * UTF-8 ends the program: "genre: CMD: stdin:LINE: invalid UTF-8 at byte N"
 * (N from 0 at the start of the line). */
void lines_open(LineReader *r, const char *cmd, bool utf8);

/* The next line, without its line end and NUL-terminated in place (a NUL
 * inside it is kept: the length is what counts), in *line: valid until the
 * next call. Returns its length, or -1 after the last line. A read error
 * ends the program: "genre: CMD: reading stdin: ERROR". */
long lines_next(LineReader *r, char **line);

/* True when lines_next would return without waiting: a whole line has been
 * read, or the end of input; reads what stdin has now to know, so the line
 * last returned is no longer valid (copy it first). Always true for a
 * regular file, whose reads never wait. */
bool lines_ready(LineReader *r);

void lines_close(LineReader *r);

#endif
