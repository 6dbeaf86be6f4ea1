/* Model checkpoints on disk: a directory with config.json and
 * model.safetensors, as HuggingFace writes them.
 *
 * Loading reads the architecture from config.json:
 *  - model_type "distilbert": DistilBERT names (distilbert_params' hf_name,
 *    with or without the "distilbert." prefix);
 *  - model_type "bert" (e.g. all-MiniLM-L6-v2): BERT names (with or without
 *    "bert."), token_type_embeddings[0] folded into the position embeddings
 *    (DistilBERT has no token types; BERT adds type 0 to every token), the
 *    pooler ignored; hidden_act must be "gelu".
 * A checkpoint without a classification head (or with one of another label
 * count when num_labels is given) gets a fresh head, as HuggingFace
 * initialises one. Every value must be finite, the config's sizes positive,
 * its LayerNorm eps positive and its dropout probabilities in [0, 1).
 * Errors name the file and the tensor.
 *
 * Saving writes HuggingFace DistilBERT names and a DistilBERT config.json
 * (problem_type multi_label_classification, id2label/label2id when labels
 * are given) that transformers' from_pretrained loads. */
#ifndef GENRE_CHECKPOINT_H
#define GENRE_CHECKPOINT_H

#include <stdint.h>

#include "models/distilbert_spec.h"
#include "src/optim/adamw.h"

/* Reads the checkpoint directory dir into new host weights w. num_labels > 0
 * asks for that many outputs; 0 takes the checkpoint's (or 1 without a
 * head). The head's seed is used only when the head is initialised. 0, or
 * -1 with err_set (w left empty). */
int checkpoint_load(ModelWeights *w, const char *dir, int num_labels, uint64_t head_seed);

/* checkpoint_load of a fine-tuned model: its file must hold a head of
 * exactly num_labels outputs (a mismatch would predict from a random head). */
int checkpoint_load_head(ModelWeights *w, const char *dir, int num_labels);

/* Label names from config.json's id2label (*n set to the count), or NULL
 * with err_set: config.json unreadable, or without an id2label of names
 * ("not a fine-tuned genre classifier"). The caller frees each name and
 * the array. */
char **checkpoint_labels(const char *dir, int *n);

/* Writes dir/model.safetensors and dir/config.json (creating dir), each
 * atomically. labels may be NULL. A model whose LayerNorm eps is not 1e-12
 * (possible from a BERT checkpoint) is refused: DistilBERT's config cannot
 * say otherwise. 0 or -1. */
int checkpoint_save(const ModelWeights *w, const char *dir, const char *const *labels);

/* The AdamW state beside a model of layout lay, for resuming:
 * dir/optimizer.safetensors holds exp_avg.<name> and exp_avg_sq.<name>
 * (PyTorch's names for the moments; <name> as in model.safetensors) and the
 * step count t in its metadata. Saving needs at least one step taken. 0 or
 * -1 with err_set. */
int checkpoint_save_optimizer(const ModelLayout *lay, const AdamWState *opt, const char *dir);
/* Loads it into opt (opt->n = lay->n_params), the saved shapes lay's. */
int checkpoint_load_optimizer(const ModelLayout *lay, AdamWState *opt, const char *dir);

#endif
