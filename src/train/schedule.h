/* The learning-rate schedule of HuggingFace's Trainer: linear warmup, then
 * linear decay to 0 (get_linear_schedule_with_warmup). */
#ifndef GENRE_TRAIN_SCHEDULE_H
#define GENRE_TRAIN_SCHEDULE_H

/* The learning-rate multiplier before optimizer step `step` (from 0), as
 * transformers' get_linear_schedule_with_warmup: step / warmup during warmup,
 * then decaying linearly to 0 at total_steps. */
float lr_linear_schedule(long step, long warmup_steps, long total_steps);

/* Warmup steps for a warmup ratio, as transformers' Trainer counts them
 * (TrainingArguments.get_warmup_steps): ceil(ratio * total_steps). */
long lr_warmup_steps(double ratio, long total_steps);

#endif
