/* Word + position embeddings: out[b,t,:] = wte[ids[b,t],:] + wpe[t,:].
 * Layout: ids B x T, wte V x C, wpe P x C (T <= P), out B x T x C. Ids are
 * checked by the caller (the model). The backward accumulates into dwte and
 * dwpe in a fixed order (a repeated token adds up the same way every run). */
#ifndef GENRE_OPS_EMBEDDING_H
#define GENRE_OPS_EMBEDDING_H

#include <stdint.h>

void embedding_forward(float *out, const int32_t *ids, const float *wte, const float *wpe,
                       int B, int T, int C);
void embedding_backward(float *dwte, float *dwpe, const float *dout, const int32_t *ids,
                        int B, int T, int C);

#endif
