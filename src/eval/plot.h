/* SVG charts for reports: self-contained files (no scripts, no external
 * fonts) that render the same in browsers and rsvg. Every function writes
 * atomically (atomic.h) and returns 0, or -1 with err_set. Labels are
 * escaped for XML. Colours come from one fixed, colour-blind-safe palette. */
#ifndef GENRE_PLOT_H
#define GENRE_PLOT_H

/* One vertical bar per category, sorted as given. */
int plot_bars(const char *path, const char *title, const char *ylabel,
              int n, const char *const *names, const double *values);

/* Horizontal bars (good for long names and signed values such as the
 * top positive/negative words of a class): negative values to the left. */
int plot_hbars(const char *path, const char *title, const char *xlabel,
               int n, const char *const *names, const double *values);

/* Grouped vertical bars: n categories x n_series values (row-major
 * values[i * n_series + s]), with a legend of series names. */
int plot_grouped_bars(const char *path, const char *title, const char *ylabel,
                      int n, const char *const *names,
                      int n_series, const char *const *series, const double *values);

/* A square heatmap n x n (row-major), labelled on both axes, each cell
 * annotated with its value printed with `fmt` (e.g. "%.0f"). */
int plot_heatmap(const char *path, const char *title, int n, const char *const *names,
                 const double *values, const char *fmt);

/* A heatmap of n_rows x n_cols (row-major): row names on the left, column
 * names under the grid, each cell annotated as plot_heatmap's. */
int plot_heatmap_grid(const char *path, const char *title, int n_rows, const char *const *rows, int n_cols,
                      const char *const *cols, const double *values, const char *fmt);

/* Scatter of points (x[i], y[i]) with a text label beside each; log_x for
 * quantities like support that span decades. */
int plot_scatter(const char *path, const char *title, const char *xlabel, const char *ylabel,
                 int n, const double *x, const double *y, const char *const *labels, int log_x);

/* Line chart of n_series curves; series s has counts[s] points xs[s][i], ys[s][i]. */
int plot_lines(const char *path, const char *title, const char *xlabel, const char *ylabel,
               int n_series, const char *const *series, const int *counts,
               const double *const *xs, const double *const *ys);

/* One curve of plot_curves: n points (x[i], y[i]) joined in order. */
typedef struct {
    const char *name;   /* legend entry */
    int n;
    const double *x, *y;
    int colour;         /* index into the palette */
    int faint;          /* thin and pale: raw data drawn under its smoothed curve */
    int markers;        /* a dot on every point (sparse measurements) */
} PlotCurve;

/* Options of plot_curves; a NULL pointer means all defaults. */
typedef struct {
    const double *x_range;    /* {lo, hi}: the x axis covers at least this span, so
                                 charts of one run share their step axis; NULL: fit the data */
    int n_guides;             /* dashed vertical lines (e.g. epoch boundaries) at */
    const double *guide_x;    /* guide_x[i], each labelled guide_labels[i] at the top */
    const char *const *guide_labels;
} PlotCurveOptions;

/* Line chart of n curves drawn in order (faint ones first belong under the
 * others). A curve of one point shows as a dot. */
int plot_curves(const char *path, const char *title, const char *xlabel, const char *ylabel,
                int n, const PlotCurve *curves, const PlotCurveOptions *opt);

#endif
