#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/err.h"
#include "src/baseline/knn.h"

typedef struct {
    double sim;
    int idx;
} Neighbour;

/* True if a ranks after b: lower similarity, or equal and a later index. */
static bool worse(Neighbour a, Neighbour b) { return a.sim < b.sim || (a.sim == b.sim && a.idx > b.idx); }

/* Min-heap on rank: heap[0] is the worst of the kept neighbours. */
static void sift_down(Neighbour *h, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && worse(h[l], h[m])) m = l;
        if (r < n && worse(h[r], h[m])) m = r;
        if (m == i) return;
        Neighbour t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static double *row_norms(const Csr *m)
{
    double *n = xmalloc((size_t)(m->rows ? m->rows : 1) * sizeof *n);
    for (int i = 0; i < m->rows; i++) {
        double s = 0;
        for (int64_t k = m->indptr[i]; k < m->indptr[i + 1]; k++) s += m->data[k] * m->data[k];
        n[i] = sqrt(s);
    }
    return n;
}

void knn_scores(const Csr *train, const uint8_t *Y, int n_labels, const Csr *query, int k, bool distance_weighted,
                float *scores)
{
    int n = train->rows, d = train->cols;
    if (k > n) k = n;
    /* Inverted index (columns of train) so a query touches only rows sharing a term. */
    int64_t *cptr = xcalloc((size_t)d + 1, sizeof *cptr);
    int64_t nnz = train->indptr[n];
    int32_t *crow = xmalloc((size_t)(nnz ? nnz : 1) * sizeof *crow);
    double *cval = xmalloc((size_t)(nnz ? nnz : 1) * sizeof *cval);
    for (int64_t q = 0; q < nnz; q++) cptr[train->indices[q] + 1]++;
    for (int j = 0; j < d; j++) cptr[j + 1] += cptr[j];
    int64_t *fill = xmalloc((size_t)(d ? d : 1) * sizeof *fill);
    memcpy(fill, cptr, (size_t)d * sizeof *fill);
    for (int i = 0; i < n; i++)
        for (int64_t q = train->indptr[i]; q < train->indptr[i + 1]; q++) {
            int64_t at = fill[train->indices[q]]++;
            crow[at] = i;
            cval[at] = train->data[q];
        }
    free(fill);
    double *tn = row_norms(train), *qn = row_norms(query);
#pragma omp parallel
    {
        double *dotv = xcalloc((size_t)n, sizeof *dotv);
        Neighbour *heap = xmalloc((size_t)(k ? k : 1) * sizeof *heap);
        double *acc = xmalloc((size_t)n_labels * sizeof *acc);
#pragma omp for schedule(dynamic, 16)
        for (int i = 0; i < query->rows; i++) {
            for (int64_t q = query->indptr[i]; q < query->indptr[i + 1]; q++) {
                int j = query->indices[q];
                if (j >= d) continue;
                for (int64_t t = cptr[j]; t < cptr[j + 1]; t++) dotv[crow[t]] += query->data[q] * cval[t];
            }
            int h = 0;
            for (int r = 0; r < n; r++) {
                double denom = tn[r] * qn[i];
                Neighbour nb = {denom > 0 ? dotv[r] / denom : 0, r};
                dotv[r] = 0;
                if (h < k) {
                    heap[h++] = nb;
                    if (h == k)
                        for (int s = k / 2 - 1; s >= 0; s--) sift_down(heap, k, s);
                } else if (worse(heap[0], nb)) {
                    heap[0] = nb;
                    sift_down(heap, k, 0);
                }
            }
            memset(acc, 0, (size_t)n_labels * sizeof *acc);
            double total = 0;
            int exact = 0;
            for (int s = 0; s < h; s++) exact += 1 - heap[s].sim <= 0;
            for (int s = 0; s < h; s++) {
                double dist = 1 - heap[s].sim, w = 1;
                if (distance_weighted) w = exact ? (dist <= 0) : 1 / dist;
                total += w;
                for (int c = 0; c < n_labels; c++) acc[c] += w * Y[(size_t)heap[s].idx * n_labels + c];
            }
            for (int c = 0; c < n_labels; c++) scores[(size_t)i * n_labels + c] = (float)(total > 0 ? acc[c] / total : 0);
        }
        free(dotv), free(heap), free(acc);
    }
    free(cptr), free(crow), free(cval), free(tn), free(qn);
}
