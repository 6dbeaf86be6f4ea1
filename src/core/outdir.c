#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/core/atomic.h"
#include "src/core/err.h"
#include "src/core/outdir.h"

#define MARKER ".genre"

static bool is_empty_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return false;
    struct dirent *e;
    bool empty = true;
    while (empty && (e = readdir(d)))
        empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
    closedir(d);
    return empty;
}

void outdir_kind(const char *dir, char *kind, size_t size)
{
    struct stat st;
    snprintf(kind, size, "?");
    if (stat(dir, &st) != 0) {
        if (errno == ENOENT) snprintf(kind, size, "%s", "");
        return;
    }
    if (!S_ISDIR(st.st_mode)) return;
    if (is_empty_dir(dir)) {
        snprintf(kind, size, "%s", "");
        return;
    }
    char path[4200], text[64] = "";
    snprintf(path, sizeof path, "%s/" MARKER, dir);
    FILE *f = fopen(path, "r");
    if (!f) return;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    text[strcspn(text, "\n")] = '\0';
    if (text[0]) snprintf(kind, size, "%s", text);
}

int outdir_claim(const char *dir, const char *kind, bool replace_own, bool force, const char *hint,
                 bool *replace)
{
    char have[64];
    outdir_kind(dir, have, sizeof have);
    *replace = have[0] != '\0';
    if (!have[0] || force || (replace_own && !strcmp(have, kind))) return 0;
    if (!strcmp(have, "?"))
        return err_set("%s: is not empty and was not made by this command; %s%spass --force to replace it", dir,
                       hint ? hint : "", hint ? ", or " : "");
    return err_set("%s: already holds a genre %s output; %s%spass --force to replace it", dir, have,
                   hint ? hint : "", hint ? ", or " : "");
}

int outdir_mark(const char *dir, const char *kind)
{
    char path[4200], text[80];
    snprintf(path, sizeof path, "%s/" MARKER, dir);
    int n = snprintf(text, sizeof text, "%s\n", kind);
    return atomic_write_file(path, text, (size_t)n);
}

char *outdir_begin(const char *dir, const char *kind, bool replace_own, bool force, const char *hint)
{
    bool replace;
    if (outdir_claim(dir, kind, replace_own, force, hint, &replace) != 0) return NULL;
    if (make_dirs(dir) != 0 || outdir_lock(dir) != 0) return NULL;
    return atomic_dir_begin(dir);
}

int outdir_commit(char *tmp, const char *dir, const char *kind)
{
    if (outdir_mark(tmp, kind) != 0) {
        atomic_dir_abort(tmp);
        return -1;
    }
    return atomic_dir_commit(tmp, dir);
}

void outdir_abort(char *tmp) { atomic_dir_abort(tmp); }

int outdir_lock(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return err_set("%s: cannot open: %s", dir, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        return err_set("%s: %s", dir, e == EWOULDBLOCK ? "another genre process is writing it" : strerror(e));
    }
    return 0; /* fd stays open: the lock lasts as long as the process */
}
