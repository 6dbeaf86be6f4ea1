/* Iterative stratification of a multi-label dataset into parts (Sechidis,
 * Tsoumakas and Vlahavas 2011, "On the stratification of multi-label
 * data"; the order-2 variant of Szymanski and Kajdanowicz 2017 that
 * skmultilearn's iterative_train_test_split runs), generalised to any
 * number of parts with given proportions. Over a set of "combinations"
 * (each label, and with order 2 each pair of labels seen together):
 *   repeatedly take the combination with the fewest unassigned examples;
 *   give each of its examples to the part that still wants the most of it
 *   (ties: the part that wants the most examples overall, then a seeded
 *   random choice), and update what every part wants of every combination
 *   the example carries. Examples without labels go to the part that wants
 *   the most examples. A part with proportion 0 gets nothing.
 * Unlike skmultilearn it always takes the rarest combination first and
 * breaks ties by the overall want, as the paper does.
 * Deterministic for a given seed (splitmix64, no global state). */
#ifndef GENRE_STRATIFY_H
#define GENRE_STRATIFY_H

#include <stdint.h>

/* y: n x n_labels (1 = has label); order 1 or 2 (see above); props: n_parts
 * proportions summing to > 0 (they are normalised). Writes part[i] in [0, n_parts). 0, or -1 with
 * err_set on bad arguments. */
int stratify(int n, int n_labels, const uint8_t *y, int order, int n_parts, const double *props,
             uint64_t seed, int *part);

#endif
