/* Iterative stratification of a multi-label dataset into parts (Sechidis,
 * Tsoumakas and Vlahavas 2011, "On the stratification of multi-label
 * data"), as skmultilearn's iterative_train_test_split does it with order
 * 1, generalised to any number of parts with given proportions:
 *   repeatedly take the label with the fewest unassigned examples; give each
 *   of its examples to the part that still wants the most of that label
 *   (ties: the part that wants the most examples overall, then a seeded
 *   random choice), and update what every part wants of every label the
 *   example carries. Examples without labels go to the part that wants the
 *   most examples. A part with proportion 0 gets nothing.
 * Deterministic for a given seed (splitmix64, no global state). */
#ifndef GENRE_STRATIFY_H
#define GENRE_STRATIFY_H

#include <stdint.h>

/* y: n x n_labels (1 = has label). props: n_parts proportions summing to
 * > 0 (they are normalised). Writes part[i] in [0, n_parts). 0, or -1 with
 * err_set on bad arguments. */
int stratify(int n, int n_labels, const uint8_t *y, int n_parts, const double *props,
             uint64_t seed, int *part);

#endif
