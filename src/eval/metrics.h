/* Multi-label classification metrics, equal to scikit-learn's definitions
 * (zero-division cases give 0, as sklearn's zero_division=0), plus the
 * seed's "at least one / at least two correct genres". Shared by the
 * baseline, training and evaluation. Inputs: y_true and y_pred are n x L
 * 0/1 matrices (row-major). */
#ifndef GENRE_METRICS_H
#define GENRE_METRICS_H

#include <jansson.h>
#include <stdint.h>

#include "src/data/dataset.h"

typedef struct {
    int n, n_labels;
    /* Sample-averaged. */
    double jaccard, hamming, accuracy, f1, precision, recall, at_least_one, at_least_two;
    double micro_precision, micro_recall, micro_f1;
    double macro_precision, macro_recall, macro_f1;
    double weighted_precision, weighted_recall, weighted_f1;
    /* Per label (n_labels each, owned). */
    double *label_precision, *label_recall, *label_f1, *label_jaccard;
    int *label_support;
} Metrics;

void metrics_compute(Metrics *m, const uint8_t *y_true, const uint8_t *y_pred, int n, int n_labels);
void metrics_free(Metrics *m);

/* Jaccard of one movie's label rows (|t & p| / |t | p|, 0 when both are
 * empty): the per-movie score the error analysis sorts by. */
double metrics_sample_jaccard(const uint8_t *t, const uint8_t *p, int n_labels);

/* The decision rule: label c is predicted when scores[i, c] >
 * thresholds[c] (n_labels of them); when none is, the label of the highest
 * raw score is (numpy's argmax: the first maximum, a NaN never wins), not
 * the one nearest its threshold: with equal thresholds it is the seed's
 * rule exactly, and a movie's fallback does not move with the thresholds. */
void predict_at_least_one_per_label(uint8_t *y_pred, const float *scores, int n, int n_labels,
                                    const float *thresholds);

/* The seed's rule: predict_at_least_one_per_label with every label's
 * threshold `threshold`. */
void predict_at_least_one(uint8_t *y_pred, const float *scores, int n, int n_labels, float threshold);

/* The threshold among `steps` evenly spaced values from lo to hi whose
 * predict_at_least_one predictions have the largest sample-averaged Jaccard
 * against y (n x n_labels); ties go to the value nearest `prefer`. Meant for
 * validation scores: the test set then uses what val chose. */
float metrics_tune_threshold(const float *scores, const uint8_t *y, int n, int n_labels, float lo, float hi,
                             int steps, float prefer);

/* metrics_tune_threshold over probabilities: 0.05, 0.06, ..., 0.95. */
float metrics_tune_probability(const float *scores, const uint8_t *y, int n, int n_labels, float prefer);

/* Per-label thresholds by coordinate ascent on the sample-averaged Jaccard
 * of predict_at_least_one_per_label against y. t (n_labels) holds the
 * starting thresholds (metrics_tune_probability's for every label) and
 * receives the tuned ones: label by label in order, t[c] becomes the value
 * of metrics_tune_probability's grid with the largest Jaccard, the other
 * labels held, ties going to the value nearest t[c] (t[c] itself first);
 * at most two passes, fewer when a pass changes nothing. Deterministic, and
 * never worse than the start on the data tuned on (val, never test). */
void metrics_tune_probability_per_label(float *t, const float *scores, const uint8_t *y, int n, int n_labels);

/* {"jaccard":..., ..., "micro": {...}, "macro": {...}, "weighted": {...},
 *  "per_label": {"Action": {"precision", "recall", "f1", "jaccard", "support"}, ...}} */
json_t *metrics_to_json(const Metrics *m, const LabelSet *labels);

/* The inverse of metrics_to_json (`what` names the source in errors);
 * labels, when not NULL, receives the per_label names in order.
 * 0, or -1 with err_set. */
int metrics_from_json(Metrics *m, LabelSet *labels, const json_t *o, const char *what);

#endif
