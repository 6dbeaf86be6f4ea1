#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <signal.h>
#include <sys/resource.h>

#include "src/core/atomic.h"
#include "src/core/err.h"

Test(atomic, commit_renames_and_abort_leaves_nothing)
{
    char dir[64], path[128], tmp[160];
    snprintf(dir, sizeof dir, "/tmp/genre-atomic-%d/a/b", (int)getpid());
    cr_assert_eq(make_dirs(dir), 0, "%s", err_msg());
    snprintf(path, sizeof path, "%s/out.txt", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());

    AtomicFile *af = atomic_open(path);
    cr_assert_not_null(af);
    fputs("hello", atomic_stream(af));
    struct stat st;
    cr_expect_neq(stat(path, &st), 0, "final file must not exist before commit");
    cr_assert_eq(atomic_commit(af), 0, "%s", err_msg());
    cr_expect_eq(stat(path, &st), 0);
    cr_expect_eq(st.st_size, 5);
    cr_expect_neq(stat(tmp, &st), 0, "no temporary left");

    af = atomic_open(path);
    fputs("half-written", atomic_stream(af));
    atomic_abort_all();
    cr_expect_neq(stat(tmp, &st), 0);
    FILE *f = fopen(path, "r");
    char buf[16] = {0};
    cr_expect_eq(fread(buf, 1, sizeof buf, f), 5);
    fclose(f);
    cr_expect_str_eq(buf, "hello", "an aborted write keeps the old file");
    unlink(path);
}

Test(atomic, write_error_is_reported_and_cleaned_up)
{
    /* A file-size limit makes writes fail with EFBIG, as a full disk would. */
    char path[64], tmp[96];
    snprintf(path, sizeof path, "/tmp/genre-big-%d.txt", (int)getpid());
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = {4096, 4096};
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    AtomicFile *af = atomic_open(path);
    cr_assert_not_null(af);
    char big[65536];
    memset(big, 'x', sizeof big);
    fwrite(big, 1, sizeof big, atomic_stream(af));
    cr_expect_eq(atomic_commit(af), -1);
    cr_expect(strstr(err_msg(), "write failed") != NULL, "%s", err_msg());
    struct stat st;
    cr_expect_neq(stat(path, &st), 0, "no output");
    cr_expect_neq(stat(tmp, &st), 0, "no temporary left");
}

Test(atomic, make_dirs_refuses_a_file_in_the_way)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/genre-notdir-%d", (int)getpid());
    FILE *f = fopen(path, "w");
    fclose(f);
    cr_expect_eq(make_dirs(path), -1);
    cr_expect(strstr(err_msg(), "a file of that name exists") != NULL, "%s", err_msg());
    unlink(path);
}
