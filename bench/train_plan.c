/* Prints the training order `genre train` uses, so bench/train_parity.py can
 * feed PyTorch exactly the same batches:
 *   build/bench/train_plan DATA_DIR VOCAB_DIR LIMIT_TRAIN MAX_LEN BATCH SEED WINDOW EPOCHS
 * One JSON line per epoch: {"epoch": e, "batches": [[movie index, ...], ...]}
 * (indices into train.jsonl, 0-based), then {"lengths": [...]}: each movie's
 * token count with [CLS] and [SEP], to check the peer's tokenizer. Oversampling
 * is not covered (the parity runs do not use it). */
#include <stdio.h>
#include <stdlib.h>

#include "src/data/batcher.h"
#include "src/core/blas_arch.h"
#include "src/data/dataset.h"
#include "src/core/err.h"
#include "tokenizer/tokenizer.h"

int main(int argc, char **argv)
{
    blas_arch_fix(argv);
    if (argc != 9)
        die("usage: train_plan DATA_DIR VOCAB_DIR LIMIT_TRAIN MAX_LEN BATCH SEED WINDOW EPOCHS");
    int limit = atoi(argv[3]), max_len = atoi(argv[4]), batch = atoi(argv[5]);
    int window = atoi(argv[7]), epochs = atoi(argv[8]);
    uint64_t seed = strtoull(argv[6], NULL, 10);
    if (limit < 0 || batch < 1 || epochs < 1) die("train_plan: bad LIMIT_TRAIN, BATCH or EPOCHS");
    Tokenizer *tok = tokenizer_load(argv[2]);
    if (!tok) die_err();
    Dataset d;
    LabelSet ls;
    if (dataset_load_part(&d, &ls, argv[1], "train") != 0) die_err();
    if (limit > 0 && limit < d.n) dataset_truncate(&d, limit);
    Encoded e;
    if (encoded_build(&e, tok, &d, max_len) != 0) die_err();
    for (int ep = 0; ep < epochs; ep++) {
        EpochPlan p;
        epoch_plan_train(&p, &e, batch, seed, ep, window, NULL);
        printf("{\"epoch\": %d, \"batches\": [", ep);
        for (int k = 0; k < p.n_batches; k++) {
            printf(k ? ", [" : "[");
            for (int j = p.batch_start[k]; j < p.batch_start[k + 1]; j++)
                printf(j > p.batch_start[k] ? ", %d" : "%d", p.items[j]);
            printf("]");
        }
        printf("]}\n");
        epoch_plan_free(&p);
    }
    printf("{\"lengths\": [");
    for (int i = 0; i < e.n; i++) printf(i ? ", %d" : "%d", e.lengths[i]);
    printf("]}\n");
    encoded_free(&e);
    dataset_free(&d);
    labels_free(&ls);
    tokenizer_free(tok);
    return 0;
}
