/* TensorBoard event files: a run's scalars as `tensorboard --logdir` reads
 * them, written without TensorFlow or protobuf.
 *
 * A file is a sequence of TFRecords (uint64 length, masked CRC32C of the
 * length, the data, masked CRC32C of the data; little-endian), each holding
 * one serialized tensorflow.Event: first {wall_time, file_version
 * "brain.Event:2"}, then one {wall_time, step, summary {value {tag,
 * simple_value}}} per scalar. The CRC32C is ISA-L's (crc32_iscsi).
 *
 * Files are named events.out.tfevents.<10-digit unix time>.<host>.<first
 * step - 1, 10 digits>: TensorBoard reads a directory's event files in name
 * order, so a file written later must sort later (tb_name gives one that
 * sorts after a given file). */
#ifndef GENRE_TBEVENTS_H
#define GENRE_TBEVENTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* CRC32C (Castagnoli, as iSCSI) of n bytes. */
uint32_t tb_crc32c(const void *data, size_t n);
/* The TFRecord checksum of a CRC: rotated right by 15 bits plus 0xa282ead8. */
uint32_t tb_masked_crc(uint32_t crc);

/* The record framing data[0..n): n + 16 bytes into out. Returns n + 16. */
size_t tb_frame(uint8_t *out, const uint8_t *data, size_t n);

/* A serialized Event into buf (cap bytes): the file_version event, or a
 * scalar's. Returns its length, 0 when it does not fit. */
size_t tb_encode_version(uint8_t *buf, size_t cap, double wall_time);
size_t tb_encode_scalar(uint8_t *buf, size_t cap, double wall_time, long step, const char *tag, float value);

/* The name of a new events file for a run whose next step is first_step
 * + 1, into buf: the time now, or when `after` (an events file name, or
 * NULL) would not sort before it, a later second than after's. */
void tb_name(char *buf, size_t size, long first_step, const char *after);
/* Whether name is a plain file name of the form tb_name gives. */
int tb_name_ok(const char *name);

typedef struct {
    FILE *f;
    char path[4400];
    char name[256];
} TbWriter;

/* Creates dir (if missing) and dir/name, and writes the file_version
 * event. 0, or -1 with err_set naming the file. */
int tb_open(TbWriter *w, const char *dir, const char *name);
/* Appends a scalar event (buffered). 0, or -1 with err_set. */
int tb_scalar(TbWriter *w, long step, const char *tag, double value);
/* Flushes to disk; *bytes gets the file's length. 0, or -1 with err_set. */
int tb_sync(TbWriter *w, long *bytes);
/* Closes (flushing); 0, or -1 with err_set. A closed or never opened
 * writer is a no-op. */
int tb_close(TbWriter *w);

/* Back to a checkpoint: dir/name cut to `bytes` and every events file of
 * dir that sorts after name (written after the checkpoint) removed, so a
 * resumed run neither repeats nor loses a step. 0, or -1 with err_set;
 * dir/name shorter than bytes is an error (the file was cut or replaced). */
int tb_rewind(const char *dir, const char *name, long bytes);

#endif
