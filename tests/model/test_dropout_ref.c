/* DistilBERT with dropout on, against PyTorch (tests/model/dropout_ref.h):
 * the masks genre draws now must still be the fixture's, bit for bit; then
 * the CPU backend's logits, loss and every gradient of every layer must be
 * PyTorch's. tests/sim/test_dropout_ref.c checks the CUDA backend against
 * the same fixture. */
#include "tests/model/dropout_ref.h"

TestSuite(dropout_ref, .init = setup, .fini = teardown);

/* Every site's mask, drawn now by genre's dropout, is the one PyTorch used. */
Test(dropout_ref, masks_are_the_ones_pytorch_used)
{
    int B, T;
    free(ref_i32("ids", &B, &T));
    DropoutSite sites[DROPOUT_SITES_MAX];
    int n = dropout_sites(sites, &w.lay.cfg, B, T, key);
    cr_assert_eq(n, 2 + 2 * w.lay.cfg.n_layers);
    char order[1024] = "";
    for (int i = 0; i < n; i++) {
        size_t len = strlen(order);
        snprintf(order + len, sizeof order - len, "%s%.31s", i ? "," : "", sites[i].name);
        char name[48];
        snprintf(name, sizeof name, "mask.%.31s", sites[i].name);
        const StTensor *t = tensor(name);
        cr_assert(t->dtype == ST_U8 && t->numel == sites[i].n, "%s: dtype or size", name);
        uint8_t *keep = dropout_site_keep(&sites[i], seed);
        size_t kept = 0, differ = 0;
        for (size_t j = 0; j < sites[i].n; j++) {
            kept += keep[j];
            differ += keep[j] != ((const uint8_t *)t->data)[j];
        }
        cr_expect_eq(differ, 0, "%s: %zu of %zu mask entries differ from the fixture's", name, differ,
                     sites[i].n);
        /* Each mask drops some and keeps most. */
        cr_expect(kept > 0 && kept < sites[i].n, "%s keeps %zu of %zu", name, kept, sites[i].n);
        free(keep);
    }
    cr_expect_str_eq(order, st_meta(&ref, "sites"));
}

static void host_copy(float *dst, const float *src, size_t n) { memcpy(dst, src, n * sizeof *dst); }

Test(dropout_ref, cpu_logits_and_every_gradient_match_pytorch) { check_backend("cpu", host_copy); }
