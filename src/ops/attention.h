/* Multi-head scaled dot-product attention over projected q, k, v, as
 * HuggingFace DistilBERT computes it:
 *   att  = softmax(scale * q_h k_h^T + mask)   (softmax.h; scale = 1/sqrt(hs))
 *   attd = dropout(att)                          (dropout.h; p = 0: att itself)
 *   out_h = attd v_h
 * Layout: q, k, v, out B x T x C with C = H * hs, head h in columns
 * [h*hs, (h+1)*hs); preatt, att, attd B x H x T x T; mask additive B x T
 * (0 or SOFTMAX_MASKED), shared by all heads and query rows. GEMMs per
 * (batch, head) through OpenBLAS.
 * The forward keeps preatt (raw scores, scratch), att and attd for the
 * backward; attd is unused (may be NULL) when p = 0. The backward takes the
 * forward's att and attd (the dropout mask is read off attd, so it needs no
 * generator), accumulates into dq, dk, dv and uses dscratch1, dscratch2
 * (B x H x T x T). */
#ifndef GENRE_OPS_ATTENTION_H
#define GENRE_OPS_ATTENTION_H

#include <stdint.h>

void attention_forward(float *out, float *preatt, float *att, float *attd, const float *q,
                       const float *k, const float *v, const float *mask, int B, int T, int H,
                       int hs, float p, uint64_t seed, uint64_t stream);

void attention_backward(float *dq, float *dk, float *dv, float *dscratch1, float *dscratch2,
                        const float *dout, const float *q, const float *k, const float *v,
                        const float *att, const float *attd, int B, int T, int H, int hs, float p);

/* The same for the first query of each sequence alone (all a classifier
 * reading [CLS] needs of the last block): q, out, dq B x C (one row per
 * sequence); k, v, dk, dv B x T x C as above; preatt, att, attd and the
 * scratch B x H x T: row 0 of each (batch, head) of the full op's, with the
 * same dropout masks, so out equals the full op's first rows. */
void attention_first_forward(float *out, float *preatt, float *att, float *attd, const float *q,
                             const float *k, const float *v, const float *mask, int B, int T,
                             int H, int hs, float p, uint64_t seed, uint64_t stream);

void attention_first_backward(float *dq, float *dk, float *dv, float *dscratch1, float *dscratch2,
                              const float *dout, const float *q, const float *k, const float *v,
                              const float *att, const float *attd, int B, int T, int H, int hs,
                              float p);

#endif
