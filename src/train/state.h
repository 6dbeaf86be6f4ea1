/* Where a training run stands, saved in its last/ checkpoint as state.json
 * beside the model and the optimizer state. The data order and dropout are
 * pure functions of (seed, epoch, step), so this position, the weights and
 * the AdamW moments are all a resumed run needs to continue bit for bit. */
#ifndef GENRE_TRAIN_STATE_H
#define GENRE_TRAIN_STATE_H

#include <stdint.h>

typedef struct {
    long step;        /* optimizer steps taken */
    int epoch, batch; /* the data order continues at this epoch's plan, this batch */
    double best;      /* best validation score so far; -1 before the first */
    long best_step;
    long log_bytes;   /* length of log.jsonl at this point */
    char tb_file[256]; /* the TensorBoard events file being written ("" with tensorboard off; tb_name) */
    long tb_bytes;    /* its length at this point */
    double elapsed;   /* training seconds spent so far */
    uint64_t config_fp, data_fp; /* FNV-1a of the run's config.json and of its data (trainer.c) */
    int per_step;     /* micro-batches per optimizer step over all ranks, fixed
                         when the run starts; 0 in checkpoints from before
                         data parallel (then grad_accum) */
} TrainState;

/* dir/state.json, written atomically. 0 or -1 with err_set. */
int train_state_save(const TrainState *s, const char *dir);
/* Reads dir/state.json; every field must be present and in range, but
 * tb_file and tb_bytes, which a checkpoint of a genre before TensorBoard
 * lacks ("" and 0 then). */
int train_state_load(TrainState *s, const char *dir);

#endif
