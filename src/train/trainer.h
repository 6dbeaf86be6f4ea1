/* The trainer: fine-tunes a pretrained encoder on a prepared dataset, on
 * any backend (models/backend.h).
 *
 * Per step: for each of grad_accum micro-batches, logits = model(batch) and
 * the loss's gradient, scaled by 1 / micro-batches, accumulate; the global
 * gradient norm is clipped to max_grad_norm; AdamW steps at lr x
 * schedule(step). Validation after every epoch (or every eval_every steps)
 * keeps the best model by the chosen metric in best/; the best is then
 * scored on val and test (metrics.json, report/), with tune_threshold at
 * the threshold val chose (metrics_tune_probability), and with
 * tune_threshold_per_genre at the per-genre thresholds tuned on val from it
 * (metrics_tune_probability_per_label), both then kept in best/config.json
 * (classifier_set_thresholds) and metrics.json. last/ holds the newest
 * checkpoint (model, AdamW moments, position in the data order), replaced as
 * a whole every checkpoint_every steps and at each epoch's end; a resumed
 * run continues from it and ends bit-identical to an uninterrupted one.
 *
 * Data parallel (s->comm, src/dist/comm.h): batch_size is one rank's
 * micro-batch, and a step takes grad_accum x world micro-batches of the
 * same epoch plan, numbered globally; rank r computes a contiguous share of
 * them, and the gradients (each micro-batch's computed alone, backend.h)
 * are summed over ranks once per step. So the same step holds the same
 * movies, the same dropout masks (keyed by the global micro-batch index,
 * dropout_key in models/distilbert_spec.h) and the same learning rate
 * whatever the world size; with two ranks the gradients equal one rank
 * accumulating two bit for bit. The micro-batches per step are fixed when
 * the run starts (state.json): a run resumed on another number of ranks
 * keeps its global batch, each rank taking its share. Every rank reads the
 * data and keeps the model; rank 0 alone writes the run directory (which
 * must be on a filesystem all ranks see); validation is split over ranks
 * and summed. A NaN on any rank reaches every rank through the sums and
 * stops them all at the same step. With shard_optimizer each rank keeps the
 * AdamW moments of its shard of the parameters alone (ZeRO-1); the
 * checkpoint still holds them all. A world of one skips the sums, unless
 * dist_alone makes it take the same path (the backend's communicator, the
 * bucketed or sharded sums over one rank): a check that the path changes
 * no bit.
 *
 * The scalars of log.jsonl (per step: loss, learning rate, gradient norm,
 * samples/s; per validation: jaccard, f1, micro/macro f1, hamming,
 * accuracy) also go to TensorBoard event files in tb/ (src/eval/tbevents.h),
 * flushed at each checkpoint. A resumed run cuts its checkpoint's file
 * back to what the checkpoint covers, removes any written after it, and
 * writes the steps after the checkpoint into a new file: each step once.
 *
 * The data ablations apply before limit_train and limit_eval, in this
 * order: drop_labels (all parts), then min_words, max_words and
 * max_nonword_share (train only: val and test stay whole, so that the runs
 * of a sweep are scored on the same movies and differ only in what they
 * learnt from), then strip_common_words (its words chosen on train, taken
 * out of every part's texts: the model must see at test time what it was
 * trained on). What each removed is in data.json and said at the start.
 *
 * A NaN or Inf loss or gradient norm, or any error below (a backend call, a
 * write), stops the run: trainer_run returns -1 with err_set naming it, and
 * the last good checkpoint in last/ is left as it was. */
#ifndef GENRE_TRAIN_TRAINER_H
#define GENRE_TRAIN_TRAINER_H

#include <stdbool.h>
#include <stdint.h>

#include "src/core/config.h"
#include "src/dist/comm.h"
#include "src/ops/loss.h"

/* Every setting of a run, checked by the caller (genre train validates them
 * against its schema before any work). */
typedef struct {
    const char *data;          /* prepared data directory */
    const char *init;          /* pretrained HF-format model directory */
    const char *device;        /* backend_open's device */
    LossKind loss;
    float alpha, gamma;        /* focal */
    bool logw_as_pos_weight;   /* bce_logw */
    float gamma_pos, gamma_neg, clip; /* asl */
    bool class_balanced;       /* class weights by effective number (not with bce_logw)... */
    double cb_beta;            /* ...with this beta */
    int batch_size, grad_accum, epochs, max_len;
    long max_steps;            /* 0: no limit */
    float lr, weight_decay, max_grad_norm;
    double warmup_ratio;
    uint64_t seed;
    long eval_every, checkpoint_every; /* 0: at epoch ends */
    const char *best_metric;   /* jaccard|f1|micro_f1|macro_f1|accuracy|hamming */
    long limit_train, limit_eval;      /* 0: all */
    double oversample;         /* 0: off */
    int length_window;
    float threshold;
    bool tune_threshold;       /* at the end: the threshold that maximises val Jaccard */
    bool tune_threshold_per_genre; /* then one per genre from it (needs tune_threshold) */
    bool shard_optimizer;      /* ZeRO-1 over the ranks (backend_set_comm) */
    const char *precision;     /* auto|bf16|fp32 (auto: backend_default_precision) */
    bool tf32;                 /* with fp32: TF32 GEMMs (device cuda) */
    bool cuda_graphs;          /* device cuda: replay steps as CUDA graphs (backend_set_graphs) */
    bool dist_alone;           /* a world of one takes the data-parallel path all the same */
    Comm *comm;                /* the job's ranks; one rank is a world of one */
    bool tensorboard;          /* also write the scalars as TensorBoard events in tb/ */
    /* Data ablations (src/data/filter.h), applied as the data loads: */
    const char *const *drop_labels; /* genres removed from every part's labels... */
    int n_drop_labels;              /* ...and movies left without one dropped */
    int min_words, max_words;  /* training movies outside are dropped; 0: no bound */
    double max_nonword_share;  /* training movies above are dropped; 1: off */
    int strip_common_words;    /* the N words most common to every genre (train) leave every text; 0: off */
} TrainSettings;

/* Trains into the run directory out. A fresh run writes cfg (the resolved
 * configuration) as out/config.json and starts from s->init; resume
 * continues from out/last. A fresh run wants out missing or empty; with
 * force it replaces whatever is there, but only once it has finished (until
 * then it is built beside out, and out is left as it was if it fails). The
 * directory is marked as a training run (src/core/outdir.h) and locked
 * while the run writes it. Ctrl-C or SIGTERM stops the run at the next step
 * boundary with a checkpoint in last/. 0, or -1 with err_set. */
int trainer_run(const TrainSettings *s, const Config *cfg, const char *out, bool resume, bool force);

#endif
