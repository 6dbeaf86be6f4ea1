/* TensorBoard event files (src/eval/tbevents.h) on bytes: CRC32C against
 * its published test vectors, and events and records against the bytes
 * TensorBoard's own protobuf classes and RecordWriter give for the same
 * values (tensorboard 2.21.0:
 *   Event(wall_time=1700000000.25, file_version="brain.Event:2"),
 *   Event(wall_time=1700000001.5, step=300, summary=Summary(value=[
 *         Summary.Value(tag="train/loss", simple_value=0.125)])),
 *   RecordWriter(f).write(<the second>)), then files written and rewound. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "src/core/err.h"
#include "src/eval/tbevents.h"
#include "tests/tbread.h"
#include "tests/testutil.h"

static void hex(char *out, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", b[i]);
    out[2 * n] = '\0';
}

Test(tbevents, crc32c_test_vectors)
{
    /* "123456789": the check value of CRC-32C; the rest from RFC 3720, B.4. */
    cr_expect_eq(tb_crc32c("123456789", 9), 0xe3069283u, "%08x", tb_crc32c("123456789", 9));
    uint8_t zeros[32] = {0}, ones[32], up[32];
    memset(ones, 0xff, sizeof ones);
    for (int i = 0; i < 32; i++) up[i] = (uint8_t)i;
    cr_expect_eq(tb_crc32c(zeros, 32), 0x8a9136aau, "%08x", tb_crc32c(zeros, 32));
    cr_expect_eq(tb_crc32c(ones, 32), 0x62a8ab43u, "%08x", tb_crc32c(ones, 32));
    cr_expect_eq(tb_crc32c(up, 32), 0x46dd794eu, "%08x", tb_crc32c(up, 32));
    cr_expect_eq(tb_crc32c("", 0), 0u);
    /* TFRecord's mask: rotate right 15, add 0xa282ead8 (mod 2^32). */
    cr_expect_eq(tb_masked_crc(0xe3069283u), ((0xe3069283u >> 15) | (0xe3069283u << 17)) + 0xa282ead8u);
    cr_expect_eq(tb_masked_crc(0), 0xa282ead8u);
}

Test(tbevents, events_and_records_are_tensorboards_bytes)
{
    uint8_t ev[128], rec[160];
    char got[400];
    size_t n = tb_encode_version(ev, sizeof ev, 1700000000.25);
    hex(got, ev, n);
    cr_expect_str_eq(got, "0900001040fc54d9411a0d627261696e2e4576656e743a32");
    n = tb_encode_scalar(ev, sizeof ev, 1700000001.5, 300, "train/loss", 0.125f);
    hex(got, ev, n);
    cr_expect_str_eq(got, "0900006040fc54d94110ac022a130a110a0a747261696e2f6c6f7373150000003e");
    size_t m = tb_frame(rec, ev, n);
    cr_expect_eq(m, n + 16);
    hex(got, rec, m);
    cr_expect_str_eq(got, "2100000000000000017becf6"
                          "0900006040fc54d94110ac022a130a110a0a747261696e2f6c6f7373150000003e"
                          "81a338e3");
    /* A buffer too small is refused, not overrun. */
    cr_expect_eq(tb_encode_scalar(ev, 20, 1.0, 1, "train/loss", 1.0f), 0);
    cr_expect_eq(tb_encode_version(ev, 10, 1.0), 0);
}

static char dir[128];

static void setup(void)
{
    fresh_tmp_dir(dir, sizeof dir, "tb");
}

static void cleanup(void)
{
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

/* A file written, synced and read back by the test's own reader. */
static long write_steps(const char *sub, const char *name, long from, long to)
{
    TbWriter w;
    cr_assert_eq(tb_open(&w, path_in(dir, sub), name), 0, "%s", err_msg());
    long bytes = 0;
    for (long s = from; s <= to; s++) {
        cr_assert_eq(tb_scalar(&w, s, "train/loss", 1.0 / (double)s), 0, "%s", err_msg());
        cr_assert_eq(tb_scalar(&w, s, "val/jaccard", 0.5), 0, "%s", err_msg());
        if (s == (from + to) / 2) cr_assert_eq(tb_sync(&w, &bytes), 0, "%s", err_msg());
    }
    cr_assert_eq(tb_close(&w), 0, "%s", err_msg());
    return bytes;
}

Test(tbevents, written_files_read_back, .init = setup, .fini = cleanup)
{
    char name[256];
    tb_name(name, sizeof name, 0, NULL);
    cr_expect(tb_name_ok(name), "%s", name);
    write_steps("tb", name, 1, 10);
    TbRead r;
    cr_assert_eq(tb_read_dir(&r, path_in(dir, "tb")), 0, "%s", r.error);
    cr_expect_eq(r.files, 1);
    cr_expect_eq(r.versions, 1);
    cr_expect(r.version_first);
    cr_expect_eq(r.n, 20);
    float v;
    cr_expect_eq(tb_find(&r, "train/loss", 4, &v), 1);
    cr_expect_float_eq(v, 0.25f, 0);
    cr_expect_eq(tb_find(&r, "val/jaccard", 10, &v), 1);
    tb_read_free(&r);
    /* A name already there is never overwritten. */
    TbWriter w;
    cr_expect_eq(tb_open(&w, path_in(dir, "tb"), name), -1);
    cr_expect(strstr(err_msg(), "cannot create: File exists") != NULL, "%s", err_msg());
}

/* A file that sorts first would be read first: a new file always sorts
 * after the one it continues, even when the clock says otherwise. */
Test(tbevents, a_new_file_sorts_after_the_one_it_continues)
{
    char now[256], later[256], next[256];
    tb_name(now, sizeof now, 0, NULL);
    tb_name(next, sizeof next, 5, now);
    cr_expect_gt(strcmp(next, now), 0, "%s <= %s", next, now);
    /* A file from the future (a clock set back since). */
    snprintf(later, sizeof later, "events.out.tfevents.%010ld.other-host.0000000000", (long)time(NULL) + 1000);
    cr_assert(tb_name_ok(later));
    tb_name(next, sizeof next, 5, later);
    cr_expect_gt(strcmp(next, later), 0, "%s <= %s", next, later);
    cr_expect(tb_name_ok(next), "%s", next);
    const char *bad[] = {"events.out.tfevents.123.host.0", "../events.out.tfevents.1700000000.h.0",
                         "events.out.tfevents.1700000000.", "events.out.tfevents.1700000000.a/b", "log.jsonl"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) cr_expect(!tb_name_ok(bad[k]), "%s", bad[k]);
}

/* Rewinding to a checkpoint: its file cut to the checkpoint's length and
 * every file written after it removed; a file shorter than the checkpoint
 * says is refused. */
Test(tbevents, rewind_cuts_back_to_the_checkpoint, .init = setup, .fini = cleanup)
{
    const char *a = "events.out.tfevents.1700000000.h.0000000000";
    const char *b = "events.out.tfevents.1700000100.h.0000000005";
    long bytes = write_steps("tb", a, 1, 10); /* synced after step 5 */
    write_steps("tb", b, 6, 8);
    cr_assert_eq(tb_rewind(path_in(dir, "tb"), a, bytes), 0, "%s", err_msg());
    TbRead r;
    cr_assert_eq(tb_read_dir(&r, path_in(dir, "tb")), 0, "%s", r.error);
    cr_expect_eq(r.files, 1, "the later file is still there");
    cr_expect_eq(r.n, 10, "%d scalars, not steps 1..5", r.n);
    float v;
    cr_expect_eq(tb_find(&r, "train/loss", 5, &v), 1);
    cr_expect_eq(tb_find(&r, "train/loss", 6, &v), 0);
    tb_read_free(&r);
    cr_expect_eq(tb_rewind(path_in(dir, "tb"), a, bytes + 1), -1);
    cr_expect(strstr(err_msg(), "is shorter than the checkpoint's") != NULL, "%s", err_msg());
}

/* The reader itself: a flipped byte and a cut record are caught. */
Test(tbevents, damaged_records_are_caught, .init = setup, .fini = cleanup)
{
    const char *a = "events.out.tfevents.1700000000.h.0000000000";
    write_steps("tb", a, 1, 2);
    char path[300];
    snprintf(path, sizeof path, "%s/tb/%s", dir, a);
    FILE *f = fopen(path, "r+b");
    fseek(f, 40, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 40, SEEK_SET);
    fputc(c ^ 1, f);
    fclose(f);
    TbRead r;
    cr_expect_eq(tb_read_dir(&r, path_in(dir, "tb")), -1);
    cr_expect(strstr(r.error, "bad") != NULL, "%s", r.error);
    tb_read_free(&r);
    struct stat st;
    stat(path, &st);
    cr_assert_eq(truncate(path, st.st_size - 3), 0);
    cr_expect_eq(tb_read_dir(&r, path_in(dir, "tb")), -1);
    tb_read_free(&r);
}
