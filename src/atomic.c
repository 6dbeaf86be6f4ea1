#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic.h"
#include "err.h"

struct AtomicFile {
    FILE *f;
    char *path, *tmp;
    AtomicFile *next;
};

/* Open files, so die() can remove them; single-threaded use only. */
static AtomicFile *open_files;

static void unlink_from_list(AtomicFile *af)
{
    for (AtomicFile **p = &open_files; *p; p = &(*p)->next)
        if (*p == af) { *p = af->next; return; }
}

static void free_af(AtomicFile *af)
{
    unlink_from_list(af);
    free(af->path);
    free(af->tmp);
    free(af);
}

AtomicFile *atomic_open(const char *path)
{
    AtomicFile *af = xcalloc(1, sizeof *af);
    size_t n = strlen(path) + 32;
    af->path = xstrdup(path);
    af->tmp = xmalloc(n);
    snprintf(af->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    af->f = fopen(af->tmp, "wb");
    if (!af->f) {
        err_set("%s: cannot create: %s", path, strerror(errno));
        free_af(af);
        return NULL;
    }
    af->next = open_files;
    open_files = af;
    return af;
}

FILE *atomic_stream(AtomicFile *af) { return af->f; }

int atomic_commit(AtomicFile *af)
{
    int bad = ferror(af->f) || fflush(af->f) != 0;
    int e = errno;
    if (!bad && fsync(fileno(af->f)) != 0) { bad = 1; e = errno; }
    if (fclose(af->f) != 0 && !bad) { bad = 1; e = errno; }
    af->f = NULL;
    if (bad) {
        err_set("%s: write failed: %s", af->path, strerror(e ? e : EIO));
        unlink(af->tmp);
        free_af(af);
        return -1;
    }
    if (rename(af->tmp, af->path) != 0) {
        err_set("%s: cannot rename into place: %s", af->path, strerror(errno));
        unlink(af->tmp);
        free_af(af);
        return -1;
    }
    free_af(af);
    return 0;
}

void atomic_abort(AtomicFile *af)
{
    if (af->f) fclose(af->f);
    unlink(af->tmp);
    free_af(af);
}

void atomic_abort_all(void)
{
    while (open_files) atomic_abort(open_files);
}

int atomic_write_file(const char *path, const void *data, size_t n)
{
    AtomicFile *af = atomic_open(path);
    if (!af) return -1;
    fwrite(data, 1, n, af->f);
    return atomic_commit(af);
}

int make_dirs(const char *path)
{
    char *p = xstrdup(path);
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            struct stat st;
            if (mkdir(p, 0777) != 0 &&
                (errno != EEXIST || stat(p, &st) != 0 || !S_ISDIR(st.st_mode))) {
                err_set("%s: cannot create directory: %s", p,
                        errno == EEXIST ? "a file of that name exists" : strerror(errno));
                free(p);
                return -1;
            }
            *s = c;
            if (!c) break;
        }
    }
    free(p);
    return 0;
}
