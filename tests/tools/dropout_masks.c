/* dropout-masks: genre's dropout keep-masks for one forward pass, exported
 * for tests/reference/make_dropout_fixture.py, which applies them in
 * HuggingFace's DistilBERT in place of PyTorch's dropout:
 *
 *   build/tests/dropout-masks MODEL_DIR B T SEED KEY P_DROPOUT P_ATTENTION P_CLASSIF OUT
 *
 * writes OUT.safetensors with one U8 tensor "mask.<site>" (1 kept, 0
 * dropped) per dropout site of the model in MODEL_DIR (its dims, these
 * probabilities) for a batch of B x T, dropout seed SEED and key KEY
 * (ForwardArgs, models/distilbert_spec.h); the
 * sites, their order (metadata "sites") and their streams are those of
 * tests/model/dropout_sites.h, the masks those src/ops/dropout.c draws. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/checkpoint.h"
#include "src/core/err.h"
#include "src/io/safetensors.h"
#include "tests/model/dropout_sites.h"

int main(int argc, char **argv)
{
    if (argc != 10) {
        fprintf(stderr, "usage: %s MODEL_DIR B T SEED KEY P_DROPOUT P_ATTENTION P_CLASSIF OUT\n", argv[0]);
        return 2;
    }
    ModelWeights m;
    if (checkpoint_load(&m, argv[1], 0, 0) != 0) die_err();
    DistilBertConfig cfg = m.lay.cfg;
    weights_free(&m);
    int B = atoi(argv[2]), T = atoi(argv[3]);
    uint64_t seed = strtoull(argv[4], NULL, 10), key = strtoull(argv[5], NULL, 10);
    cfg.dropout = strtof(argv[6], NULL);
    cfg.attention_dropout = strtof(argv[7], NULL);
    cfg.seq_classif_dropout = strtof(argv[8], NULL);
    if (B <= 0 || T <= 0) die("B and T must be positive");
    DropoutSite sites[DROPOUT_SITES_MAX];
    int n = dropout_sites(sites, &cfg, B, T, key);
    if (n < 0) die("%s: too many layers", argv[1]);
    StWriter *w = st_writer_new();
    uint8_t *keep[DROPOUT_SITES_MAX];
    char names[DROPOUT_SITES_MAX][40], order[DROPOUT_SITES_MAX * 40] = "";
    for (int i = 0; i < n; i++) {
        keep[i] = dropout_site_keep(&sites[i], seed);
        snprintf(names[i], sizeof names[i], "mask.%.31s", sites[i].name);
        st_writer_add(w, names[i], ST_U8, sites[i].ndim, sites[i].shape, keep[i]);
        size_t len = strlen(order);
        snprintf(order + len, sizeof order - len, "%s%.31s", i ? "," : "", sites[i].name);
    }
    char buf[64];
    st_writer_meta(w, "sites", order);
    snprintf(buf, sizeof buf, "%" PRIu64, seed);
    st_writer_meta(w, "seed", buf);
    snprintf(buf, sizeof buf, "%" PRIu64, key);
    st_writer_meta(w, "key", buf);
    if (st_writer_save(w, argv[9]) != 0) die_err();
    st_writer_free(w);
    for (int i = 0; i < n; i++) free(keep[i]);
    return 0;
}
