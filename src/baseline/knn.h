/* Cosine k-nearest-neighbour multi-label scores over sparse rows, as
 * scikit-learn's KNeighborsClassifier(metric="cosine") on a multi-label Y:
 * score[i, c] = the fraction of the k training rows most similar to query
 * i that have label c (uniform), or with distance weights 1 / (1 - cos)
 * normalised to sum 1 (a neighbour at distance 0 then takes all weight,
 * shared with any others at 0). Equal similarities go to the lower
 * training index. A row of zeros has cosine 0 with everything. */
#ifndef GENRE_KNN_H
#define GENRE_KNN_H

#include <stdbool.h>
#include <stdint.h>

#include "src/baseline/vectorizer.h"

/* scores is query->rows x n_labels. Queries run in parallel (OpenMP). */
void knn_scores(const Csr *train, const uint8_t *Y, int n_labels, const Csr *query, int k, bool distance_weighted,
                float *scores);

#endif
