#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "src/core/atomic.h"
#include "src/core/err.h"
#include "src/core/failpoint.h"

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

/* Directories being filled (atomic_dir_begin), so an abort removes them too;
 * a fixed table, which a signal handler can read without allocating. */
#define MAX_OPEN_DIRS 16
static char *open_dirs[MAX_OPEN_DIRS];

static void track_dir(char *tmp, bool on)
{
    for (int i = 0; i < MAX_OPEN_DIRS; i++)
        if (on ? !open_dirs[i] : open_dirs[i] == tmp) {
            open_dirs[i] = on ? tmp : NULL;
            return;
        }
}

void atomic_abort_all(void)
{
    while (open_files) atomic_abort(open_files);
    for (int i = 0; i < MAX_OPEN_DIRS; i++)
        if (open_dirs[i]) {
            remove_tree(open_dirs[i]);
            open_dirs[i] = NULL;
        }
}

/* rm -rf of dirfd/name with system calls alone: no allocation, no stdio,
 * so a signal handler may run it. Entries are removed until the directory
 * reads empty (removing while reading may skip some). */
static void remove_raw(int dirfd, const char *name, int depth)
{
    int fd = depth < 16 ? openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW) : -1;
    if (fd < 0) {
        unlinkat(dirfd, name, 0);
        return;
    }
    char buf[4096];
    for (long n; lseek(fd, 0, SEEK_SET) == 0 && (n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0;) {
        int removed = 0;
        for (long off = 0; off < n;) {
            struct { uint64_t ino; int64_t next; unsigned short len; unsigned char type; char name[]; } *d =
                (void *)(buf + off);
            off += d->len;
            if (!strcmp(d->name, ".") || !strcmp(d->name, "..")) continue;
            remove_raw(fd, d->name, depth + 1);
            removed++;
        }
        if (!removed) break;
    }
    close(fd);
    unlinkat(dirfd, name, AT_REMOVEDIR);
}

void atomic_abort_all_async(void)
{
    for (AtomicFile *af = open_files; af; af = af->next) unlink(af->tmp);
    for (int i = 0; i < MAX_OPEN_DIRS; i++)
        if (open_dirs[i]) remove_raw(AT_FDCWD, open_dirs[i], 0);
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

int atomic_copy_file(const char *from, const char *to)
{
    FILE *f = fopen(from, "rb");
    if (!f) return err_set("%s: cannot open: %s", from, strerror(errno));
    AtomicFile *af = atomic_open(to);
    if (!af) {
        fclose(f);
        return -1;
    }
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, af->f);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        atomic_abort(af);
        return err_set("%s: read error", from);
    }
    return atomic_commit(af);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)ftw;
    int rc = flag == FTW_DP ? rmdir(path) : unlink(path);
    if (rc != 0) err_set("%s: cannot remove: %s", path, strerror(errno));
    return rc;
}

int remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : err_set("%s: %s", path, strerror(errno));
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

/* fsync of a directory, so a rename inside it survives a crash. */
static int sync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return err_set("%s: cannot open directory: %s", path, strerror(errno));
    int rc = fsync(fd);
    close(fd);
    return rc == 0 ? 0 : err_set("%s: fsync failed: %s", path, strerror(errno));
}

char *atomic_dir_begin(const char *dir)
{
    size_t n = strlen(dir) + 32;
    char *pattern = xmalloc(n), *tmp = xmalloc(n);
    snprintf(pattern, n, "%s.tmp.*", dir);
    glob_t g;
    int stale = glob(pattern, GLOB_NOSORT, NULL, &g) == 0;
    free(pattern);
    for (size_t i = 0; stale && i < g.gl_pathc; i++)
        if (remove_tree(g.gl_pathv[i]) != 0) {
            globfree(&g);
            free(tmp);
            return NULL;
        }
    if (stale) globfree(&g);
    snprintf(tmp, n, "%s.tmp.%ld", dir, (long)getpid());
    if (make_dirs(tmp) != 0) {
        free(tmp);
        return NULL;
    }
    track_dir(tmp, true);
    return tmp;
}

void atomic_dir_abort(char *tmp)
{
    remove_tree(tmp);
    track_dir(tmp, false);
    free(tmp);
}

int atomic_dir_commit(char *tmp, const char *dir)
{
    int rc = failpoint("atomic_dir_commit") ? -1 : sync_dir(tmp);
    struct stat st;
    int exists = rc == 0 && stat(dir, &st) == 0;
    if (rc == 0 && exists) {
        /* After the exchange tmp names the old directory, which goes. */
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_EXCHANGE) != 0)
            rc = err_set("%s: cannot swap in the new directory: %s", dir, strerror(errno));
        else
            rc = remove_tree(tmp);
    } else if (rc == 0 && rename(tmp, dir) != 0) {
        rc = err_set("%s: cannot rename into place: %s", dir, strerror(errno));
    }
    if (rc == 0) {
        char *parent = xstrdup(dir), *slash = strrchr(parent, '/');
        if (slash) *(slash == parent ? slash + 1 : slash) = '\0';
        rc = sync_dir(slash ? parent : ".");
        free(parent);
    } else {
        remove_tree(tmp);
    }
    track_dir(tmp, false);
    free(tmp);
    return rc;
}
