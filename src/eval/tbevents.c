#include <dirent.h>
#include <errno.h>
#include <isa-l/crc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "src/core/atomic.h"
#include "src/core/err.h"
#include "src/eval/tbevents.h"

#define PREFIX "events.out.tfevents."

uint32_t tb_crc32c(const void *data, size_t n)
{
    /* ISA-L's crc32_iscsi neither inverts its input nor its output, and
     * takes an int length: standard CRC32C is ~crc32_iscsi(~0), in pieces. */
    uint32_t crc = 0xffffffffu;
    const unsigned char *p = data;
    while (n > 0) {
        int piece = n > (1u << 30) ? 1 << 30 : (int)n;
        crc = crc32_iscsi((unsigned char *)p, piece, crc);
        p += piece;
        n -= (size_t)piece;
    }
    return ~crc;
}

uint32_t tb_masked_crc(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

static void put_le(uint8_t *out, uint64_t x, int bytes)
{
    for (int i = 0; i < bytes; i++) out[i] = (uint8_t)(x >> (8 * i));
}

size_t tb_frame(uint8_t *out, const uint8_t *data, size_t n)
{
    put_le(out, n, 8);
    put_le(out + 8, tb_masked_crc(tb_crc32c(out, 8)), 4);
    memcpy(out + 12, data, n);
    put_le(out + 12 + n, tb_masked_crc(tb_crc32c(data, n)), 4);
    return n + 16;
}

/* Protocol buffers, the few wire forms an Event needs: a key is
 * (field number << 3 | wire type), wire type 0 a varint, 1 eight bytes, 2
 * a varint length and the bytes, 5 four bytes (little-endian). */
typedef struct {
    uint8_t *p;
    size_t n, cap;
} Buf;

static void put_byte(Buf *b, uint8_t x)
{
    if (b->n < b->cap) b->p[b->n] = x;
    b->n++;
}

static void put_varint(Buf *b, uint64_t x)
{
    for (; x >= 0x80; x >>= 7) put_byte(b, (uint8_t)(x | 0x80));
    put_byte(b, (uint8_t)x);
}

static void put_fixed(Buf *b, int field, uint64_t bits, int bytes)
{
    put_varint(b, (uint64_t)field << 3 | (bytes == 8 ? 1 : 5));
    for (int i = 0; i < bytes; i++) put_byte(b, (uint8_t)(bits >> (8 * i)));
}

static void put_bytes(Buf *b, int field, const void *data, size_t n)
{
    put_varint(b, (uint64_t)field << 3 | 2);
    put_varint(b, n);
    for (size_t i = 0; i < n; i++) put_byte(b, ((const uint8_t *)data)[i]);
}

static size_t varint_len(uint64_t x)
{
    size_t n = 1;
    for (; x >= 0x80; x >>= 7) n++;
    return n;
}

static uint64_t double_bits(double x)
{
    uint64_t u;
    memcpy(&u, &x, 8);
    return u;
}

static size_t done(const Buf *b) { return b->n <= b->cap ? b->n : 0; }

/* Field numbers from tensorflow/core/util/event.proto:
 *   message Event { double wall_time = 1; int64 step = 2;
 *                   oneof what { string file_version = 3; ... Summary summary = 5; ... } }
 * and tensorflow/core/framework/summary.proto:
 *   message Summary { repeated Value value = 1; }
 *   message Summary.Value { string tag = 1; oneof value { float simple_value = 2; ... } } */
size_t tb_encode_version(uint8_t *buf, size_t cap, double wall_time)
{
    Buf b = {buf, 0, cap};
    put_fixed(&b, 1, double_bits(wall_time), 8);
    put_bytes(&b, 3, "brain.Event:2", 13);
    return done(&b);
}

size_t tb_encode_scalar(uint8_t *buf, size_t cap, double wall_time, long step, const char *tag, float value)
{
    Buf b = {buf, 0, cap};
    size_t tag_n = strlen(tag);
    size_t value_n = 1 + varint_len(tag_n) + tag_n + 1 + 4; /* Summary.Value: tag, simple_value */
    size_t summary_n = 1 + varint_len(value_n) + value_n;  /* Summary: one value */
    uint32_t bits;
    memcpy(&bits, &value, 4);
    put_fixed(&b, 1, double_bits(wall_time), 8);
    put_varint(&b, 2 << 3 | 0);
    put_varint(&b, (uint64_t)step);
    put_varint(&b, 5 << 3 | 2);
    put_varint(&b, summary_n);
    put_varint(&b, 1 << 3 | 2);
    put_varint(&b, value_n);
    put_bytes(&b, 1, tag, tag_n);
    put_fixed(&b, 2, bits, 4);
    return done(&b);
}

/* This machine's name, reduced to characters safe in a file name. */
static void host_name(char *buf, size_t size)
{
    if (gethostname(buf, size) != 0 || !*buf) snprintf(buf, size, "localhost");
    buf[size - 1] = '\0';
    for (char *p = buf; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", *p)) *p = '-';
}

void tb_name(char *buf, size_t size, long first_step, const char *after)
{
    char host[65];
    host_name(host, sizeof host);
    long t = (long)time(NULL);
    snprintf(buf, size, PREFIX "%010ld.%s.%010ld", t, host, first_step);
    if (after && strcmp(buf, after) <= 0) {
        /* A clock set back, or another host in the same second: the second
         * after the earlier file's keeps the order. */
        long prev = strtol(after + strlen(PREFIX), NULL, 10);
        snprintf(buf, size, PREFIX "%010ld.%s.%010ld", prev + 1, host, first_step);
    }
}

int tb_name_ok(const char *name)
{
    size_t n = strlen(PREFIX);
    if (strncmp(name, PREFIX, n) != 0 || strspn(name + n, "0123456789") != 10 || name[n + 10] != '.') return 0;
    return strlen(name) < 200 && !strchr(name, '/') && strcmp(name + n + 11, "") != 0;
}

static int write_record(TbWriter *w, const uint8_t *data, size_t n)
{
    uint8_t out[1024];
    if (n + 16 > sizeof out) return err_set("%s: event of %zu bytes is too long", w->path, n);
    size_t len = tb_frame(out, data, n);
    if (fwrite(out, 1, len, w->f) != len) return err_set("%s: write failed: %s", w->path, strerror(errno));
    return 0;
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int tb_open(TbWriter *w, const char *dir, const char *name)
{
    memset(w, 0, sizeof *w);
    snprintf(w->name, sizeof w->name, "%s", name);
    snprintf(w->path, sizeof w->path, "%s/%s", dir, name);
    if (make_dirs(dir) != 0) return -1;
    /* "x": a name already there is another run's file, never overwritten. */
    if (!(w->f = fopen(w->path, "wbx"))) return err_set("%s: cannot create: %s", w->path, strerror(errno));
    uint8_t ev[64];
    return write_record(w, ev, tb_encode_version(ev, sizeof ev, wall_now()));
}

int tb_scalar(TbWriter *w, long step, const char *tag, double value)
{
    uint8_t ev[512];
    size_t n = tb_encode_scalar(ev, sizeof ev, wall_now(), step, tag, (float)value);
    if (!n) return err_set("%s: tag '%s' is too long", w->path, tag);
    return write_record(w, ev, n);
}

int tb_sync(TbWriter *w, long *bytes)
{
    if (fflush(w->f) != 0 || fsync(fileno(w->f)) != 0)
        return err_set("%s: write failed: %s", w->path, strerror(errno));
    *bytes = ftell(w->f);
    return 0;
}

int tb_close(TbWriter *w)
{
    if (!w->f) return 0;
    int rc = fclose(w->f);
    w->f = NULL;
    return rc != 0 ? err_set("%s: write failed: %s", w->path, strerror(errno)) : 0;
}

int tb_rewind(const char *dir, const char *name, long bytes)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    if (stat(path, &st) != 0 || st.st_size < bytes)
        return err_set("%s is shorter than the checkpoint's %ld bytes: the events file was cut or replaced", path,
                       bytes);
    if (truncate(path, (off_t)bytes) != 0)
        return err_set("%s: cannot cut back to the checkpoint's %ld bytes: %s", path, bytes, strerror(errno));
    DIR *d = opendir(dir);
    if (!d) return err_set("%s: cannot open: %s", dir, strerror(errno));
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        if (strncmp(e->d_name, PREFIX, strlen(PREFIX)) != 0 || strcmp(e->d_name, name) <= 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0) rc = err_set("%s: cannot remove: %s", path, strerror(errno));
    }
    closedir(d);
    return rc;
}
