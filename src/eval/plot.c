/* Hand-written SVG charts (see plot.h). Layout works in pixels: text widths
 * are estimated from per-character advances of DejaVu Sans (the font rsvg
 * falls back to), so margins fit the longest label without a font engine. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/atomic.h"
#include "src/core/err.h"
#include "src/eval/plot.h"
#include "src/core/utf8.h"

#define FONT "DejaVu Sans, Verdana, Helvetica, Arial, sans-serif"
#define FS 12.0         /* tick and category labels */
#define FS_TITLE 16.0
#define FS_SMALL 10.0   /* value annotations */
#define PAD 14.0

/* Okabe & Ito (2008): distinguishable under the common colour-vision deficiencies. */
static const char *const palette[] = {"#0072B2", "#E69F00", "#009E73", "#D55E00",
                                      "#CC79A7", "#56B4E9", "#F0E442", "#000000"};
#define N_PALETTE 8

/* ---- text ------------------------------------------------------------- */

/* Advance of one code point in em units (DejaVu Sans, rounded). */
static double char_em(uint32_t c)
{
    if (c == ' ' || c == '.' || c == ',' || c == ':' || c == ';' || c == '\'' || c == '|' || c == '!')
        return 0.32;
    if (c == 'i' || c == 'l' || c == 'j' || c == 'I') return 0.28;
    if (c == 'f' || c == 't' || c == 'r' || c == '(' || c == ')' || c == '-') return 0.40;
    if (c == 'm' || c == 'w') return 0.95;
    if (c == 'M' || c == 'W') return 0.95;
    if (c >= 'A' && c <= 'Z') return 0.72;
    if (c >= '0' && c <= '9') return 0.64;
    if (c < 0x80) return 0.60;
    if (c >= 0x2E80) return 1.0; /* CJK and other wide scripts */
    return 0.65;
}

static double text_width(const char *s, double size)
{
    double w = 0;
    uint32_t cp;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        int len = utf8_decode((const unsigned char *)s + i, n - i, &cp);
        if (!len) { len = 1; cp = '?'; }
        w += char_em(cp);
        i += (size_t)len;
    }
    return w * size;
}

/* Labels must be valid UTF-8 for the file to be valid XML. */
static int check_text(const char *s, const char *what)
{
    if (!s) return err_set("plot: %s is missing", what);
    size_t n = strlen(s);
    if (utf8_check(s, n) < n) return err_set("plot: %s is not valid UTF-8", what);
    return 0;
}

static int check_texts(int n, const char *const *s, const char *what)
{
    if (!s) return err_set("plot: %s are missing", what);
    for (int i = 0; i < n; i++)
        if (check_text(s[i], what) != 0) return -1;
    return 0;
}

static int check_finite(int n, const double *v, const char *what)
{
    if (!v) return err_set("plot: %s are missing", what);
    for (int i = 0; i < n; i++)
        if (!isfinite(v[i])) return err_set("plot: %s[%d] is not a finite number", what, i);
    return 0;
}

/* Writes s with XML's special characters escaped; control characters,
 * which XML 1.0 forbids, become spaces. */
static void put_escaped(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default: fputc(*p < 0x20 ? ' ' : *p, f);
        }
    }
}

/* ---- drawing primitives ------------------------------------------------- */

typedef struct {
    FILE *f;
    double w, h;
} Svg;

static void svg_begin(Svg *s, FILE *f, double w, double h, const char *title)
{
    s->f = f;
    /* A long title widens the canvas rather than running off it. */
    s->w = ceil(fmax(w, text_width(title, FS_TITLE) * 1.1 + 2 * PAD));
    s->h = ceil(h);
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "viewBox=\"0 0 %.0f %.0f\" font-family=\"%s\" font-size=\"%.0f\">\n",
            s->w, s->h, s->w, s->h, FONT, FS);
    fputs("<title>", f);
    put_escaped(f, title);
    fputs("</title>\n", f);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n");
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"%.0f\" "
               "font-weight=\"bold\">", s->w / 2, PAD + FS_TITLE, FS_TITLE);
    put_escaped(f, title);
    fputs("</text>\n", f);
}

static void svg_end(Svg *s) { fputs("</svg>\n", s->f); }

/* anchor: "start", "middle" or "end"; rot: degrees about (x, y). */
static void svg_text(Svg *s, double x, double y, const char *anchor, double size, double rot,
                     const char *fill, const char *str)
{
    fprintf(s->f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"", x, y, anchor);
    if (size != FS) fprintf(s->f, " font-size=\"%.0f\"", size);
    if (fill) fprintf(s->f, " fill=\"%s\"", fill);
    if (rot != 0) fprintf(s->f, " transform=\"rotate(%.0f %.1f %.1f)\"", rot, x, y);
    fputc('>', s->f);
    put_escaped(s->f, str);
    fputs("</text>\n", s->f);
}

static void svg_rect(Svg *s, double x, double y, double w, double h, const char *fill)
{
    fprintf(s->f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n",
            x, y, w, h, fill);
}

static void svg_line(Svg *s, double x1, double y1, double x2, double y2, const char *stroke,
                     double width)
{
    fprintf(s->f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                  "stroke-width=\"%.1f\"/>\n", x1, y1, x2, y2, stroke, width);
}

/* ---- scales --------------------------------------------------------------- */

/* A linear axis from lo to hi with ticks at multiples of step (1, 2 or 5
 * times a power of ten), so tick labels are round numbers. */
typedef struct {
    double lo, hi, step;
    int log;            /* log10 axis: lo and hi are exponents */
    double p0, p1;      /* pixel positions of lo and hi */
} Scale;

static double nice_step(double range, int target)
{
    double raw = range / target;
    double mag = pow(10, floor(log10(raw)));
    double r = raw / mag;
    return mag * (r <= 1 ? 1 : r <= 2 ? 2 : r <= 5 ? 5 : 10);
}

static Scale scale_linear(double lo, double hi, int target)
{
    if (hi <= lo) {
        double d = lo == 0 ? 1 : fabs(lo) * 0.5;
        lo -= d;
        hi += d;
    }
    Scale sc = {0};
    sc.step = nice_step(hi - lo, target);
    sc.lo = floor(lo / sc.step + 1e-9) * sc.step;
    sc.hi = ceil(hi / sc.step - 1e-9) * sc.step;
    return sc;
}

/* Decades covering [lo, hi] (both > 0). */
static Scale scale_log(double lo, double hi)
{
    Scale sc = {0};
    sc.log = 1;
    sc.lo = floor(log10(lo));
    sc.hi = ceil(log10(hi));
    if (sc.hi <= sc.lo) sc.hi = sc.lo + 1;
    sc.step = 1;
    return sc;
}

static double scale_px(const Scale *sc, double v)
{
    double t = sc->log ? log10(v) : v;
    return sc->p0 + (t - sc->lo) / (sc->hi - sc->lo) * (sc->p1 - sc->p0);
}

static int n_ticks(const Scale *sc) { return (int)floor((sc->hi - sc->lo) / sc->step + 0.5) + 1; }

static double tick_value(const Scale *sc, int i)
{
    double t = sc->lo + i * sc->step;
    if (fabs(t) < sc->step * 1e-9) t = 0; /* no "-0" */
    return sc->log ? pow(10, t) : t;
}

/* Tick labels: as many decimals as the step needs, thousands kept whole. */
static void fmt_tick(char *buf, size_t n, const Scale *sc, double v)
{
    if (sc->log || fabs(v) >= 1e7) {
        snprintf(buf, n, "%g", v);
        return;
    }
    int dec = sc->step >= 1 ? 0 : (int)ceil(-log10(sc->step) - 1e-9);
    snprintf(buf, n, "%.*f", dec, v);
}

/* Value annotations: integers as integers, everything else to 3 digits. */
static void fmt_value(char *buf, size_t n, double v)
{
    if (v == floor(v) && fabs(v) < 1e9) snprintf(buf, n, "%.0f", v);
    else snprintf(buf, n, "%.3g", v);
}

static double widest_tick(const Scale *sc)
{
    double w = 0;
    char buf[64];
    for (int i = 0; i < n_ticks(sc); i++) {
        fmt_tick(buf, sizeof buf, sc, tick_value(sc, i));
        double tw = text_width(buf, FS);
        if (tw > w) w = tw;
    }
    return w;
}

static double widest(int n, const char *const *s, double size)
{
    double w = 0;
    for (int i = 0; i < n; i++) {
        double tw = text_width(s[i], size);
        if (tw > w) w = tw;
    }
    return w;
}

/* Vertical value axis at x = left with grid lines across to right. */
static void draw_yaxis(Svg *s, const Scale *sc, double left, double right, const char *label)
{
    char buf[64];
    for (int i = 0; i < n_ticks(sc); i++) {
        double v = tick_value(sc, i), y = scale_px(sc, v);
        svg_line(s, left, y, right, y, "#e0e0e0", 1);
        fmt_tick(buf, sizeof buf, sc, v);
        svg_text(s, left - 6, y + FS * 0.35, "end", FS, 0, NULL, buf);
    }
    svg_line(s, left, sc->p0, left, sc->p1, "#444444", 1);
    if (label && *label) {
        double x = left - widest_tick(sc) - 10 - FS * 0.3;
        svg_text(s, x, (sc->p0 + sc->p1) / 2, "middle", FS, -90, NULL, label);
    }
}

/* Horizontal value axis at y = bottom with grid lines up to top. */
static void draw_xaxis(Svg *s, const Scale *sc, double bottom, double top, const char *label)
{
    char buf[64];
    for (int i = 0; i < n_ticks(sc); i++) {
        double v = tick_value(sc, i), x = scale_px(sc, v);
        svg_line(s, x, top, x, bottom, "#e0e0e0", 1);
        fmt_tick(buf, sizeof buf, sc, v);
        svg_text(s, x, bottom + FS + 4, "middle", FS, 0, NULL, buf);
    }
    svg_line(s, sc->p0, bottom, sc->p1, bottom, "#444444", 1);
    if (label && *label)
        svg_text(s, (sc->p0 + sc->p1) / 2, bottom + 2 * FS + 12, "middle", FS, 0, NULL, label);
}

/* Category labels under slots centred at xs[i]: horizontal when they fit
 * the slot, otherwise rotated 45 degrees. Returns the height they take. */
static double category_labels_height(int n, const char *const *names, double slot)
{
    double w = widest(n, names, FS);
    return w + 6 <= slot ? FS + 6 : w * sqrt(0.5) + FS + 6;
}

static void draw_category_labels(Svg *s, int n, const char *const *names, const double *xs,
                                 double slot, double y)
{
    int rotate = widest(n, names, FS) + 6 > slot;
    for (int i = 0; i < n; i++) {
        if (rotate) svg_text(s, xs[i] + FS * 0.3, y + 8, "end", FS, -45, NULL, names[i]);
        else svg_text(s, xs[i], y + FS + 4, "middle", FS, 0, NULL, names[i]);
    }
}

/* Legend entries in a row under the title: a box of palette colour i per
 * name, or with curves a short line in each curve's colour and style. */
static void draw_legend(Svg *s, int n, const char *const *names, const PlotCurve *curves, double y)
{
    double total = 0;
    for (int i = 0; i < n; i++) total += 18 + text_width(names[i], FS) + 16;
    double x = (s->w - total) / 2;
    if (x < PAD) x = PAD;
    for (int i = 0; i < n; i++) {
        if (!curves) svg_rect(s, x, y - 10, 12, 12, palette[i % N_PALETTE]);
        else if (curves[i].faint)
            fprintf(s->f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                          "stroke-width=\"1.5\" stroke-opacity=\"0.45\"/>\n",
                    x, y - 4, x + 12, y - 4, palette[curves[i].colour % N_PALETTE]);
        else svg_line(s, x, y - 4, x + 12, y - 4, palette[curves[i].colour % N_PALETTE], 3);
        svg_text(s, x + 18, y, "start", FS, 0, NULL, names[i]);
        x += 18 + text_width(names[i], FS) + 16;
    }
}

static double legend_width(int n, const char *const *series)
{
    double total = 0;
    for (int i = 0; i < n; i++) total += 18 + text_width(series[i], FS) + 16;
    return total + 2 * PAD;
}

/* ---- files ------------------------------------------------------------- */

static FILE *begin_file(AtomicFile **af, const char *path)
{
    *af = atomic_open(path);
    return *af ? atomic_stream(*af) : NULL;
}

#define TITLE_H (PAD + FS_TITLE + 16)

static double min_of(int n, const double *v)
{
    double m = v[0];
    for (int i = 1; i < n; i++) if (v[i] < m) m = v[i];
    return m;
}

static double max_of(int n, const double *v)
{
    double m = v[0];
    for (int i = 1; i < n; i++) if (v[i] > m) m = v[i];
    return m;
}

static int check_common(const char *path, const char *title, int n, const char *what)
{
    if (!path) return err_set("plot: no output path");
    if (check_text(title ? title : "", "title") != 0) return -1;
    if (n <= 0) return err_set("%s: nothing to plot (%d %s)", path, n, what);
    return 0;
}

/* ---- charts ------------------------------------------------------------ */

/* Bars for n categories x k series (k = 1 for plain bars). */
static int bars_k(const char *path, const char *title, const char *ylabel, int n,
                  const char *const *names, int k, const char *const *series, const double *values)
{
    if (check_common(path, title, n, "categories") != 0 || check_texts(n, names, "names") != 0 ||
        check_finite(n * k, values, "values") != 0 || check_text(ylabel ? ylabel : "", "label") != 0)
        return -1;
    if (k > 1 && check_texts(k, series, "series names") != 0) return -1;
    double lo = fmin(0, min_of(n * k, values)), hi = fmax(0, max_of(n * k, values));
    Scale sc = scale_linear(lo, hi, 6);
    double bar = k == 1 ? 26 : fmax(8, 40.0 / k), slot = bar * k + (k == 1 ? 12 : 14);
    double names_w = widest(n, names, FS);
    /* A few bars: slots wide enough for their labels to stay level. */
    if (k == 1 && names_w + 12 > slot && (names_w + 12) * n <= 720) {
        slot = names_w + 12;
        bar = fmin(60, slot - 24);
    }
    double top = TITLE_H + (k > 1 ? FS + 14 : 0) + (k == 1 ? FS_SMALL + 4 : 0);
    double left = PAD + (ylabel && *ylabel ? FS + 10 : 0) + widest_tick(&sc) + 10;
    double plot_w = slot * n, plot_h = 320;
    double bottom = top + plot_h;
    /* Rotated labels reach left of their slot; keep the first one inside. */
    if (names_w + 6 > slot) left = fmax(left, PAD + names_w * sqrt(0.5) - slot / 2);
    double w = fmax(left + plot_w + PAD + 10, 360), h = bottom + category_labels_height(n, names, slot) + PAD;
    if (k > 1) w = fmax(w, legend_width(k, series));
    AtomicFile *af;
    FILE *f = begin_file(&af, path);
    if (!f) return -1;
    Svg s;
    svg_begin(&s, f, w, h, title ? title : "");
    sc.p0 = bottom;
    sc.p1 = top;
    double right = left + plot_w;
    draw_yaxis(&s, &sc, left, right, ylabel);
    if (k > 1) draw_legend(&s, k, series, NULL, TITLE_H + 4);
    double *xs = xmalloc((size_t)n * sizeof *xs);
    double y0 = scale_px(&sc, 0);
    char buf[64];
    for (int i = 0; i < n; i++) {
        double x = left + slot * i + (slot - bar * k) / 2;
        xs[i] = left + slot * (i + 0.5);
        for (int j = 0; j < k; j++) {
            double v = values[i * k + j], y = scale_px(&sc, v);
            svg_rect(&s, x + j * bar, fmin(y, y0), bar - (k > 1 ? 1 : 0), fabs(y - y0),
                     palette[(k == 1 ? 0 : j) % N_PALETTE]);
            if (k == 1) {
                fmt_value(buf, sizeof buf, v);
                if (text_width(buf, FS_SMALL) <= slot)
                    svg_text(&s, xs[i], v >= 0 ? y - 3 : y + FS_SMALL + 2, "middle", FS_SMALL, 0,
                             "#333333", buf);
            }
        }
    }
    svg_line(&s, left, y0, right, y0, "#444444", 1);
    draw_category_labels(&s, n, names, xs, slot, bottom);
    free(xs);
    svg_end(&s);
    return atomic_commit(af);
}

int plot_bars(const char *path, const char *title, const char *ylabel,
              int n, const char *const *names, const double *values)
{
    return bars_k(path, title, ylabel, n, names, 1, NULL, values);
}

int plot_grouped_bars(const char *path, const char *title, const char *ylabel,
                      int n, const char *const *names,
                      int n_series, const char *const *series, const double *values)
{
    if (n_series <= 0) return err_set("%s: nothing to plot (%d series)", path ? path : "plot", n_series);
    return bars_k(path, title, ylabel, n, names, n_series, series, values);
}

int plot_hbars(const char *path, const char *title, const char *xlabel,
               int n, const char *const *names, const double *values)
{
    if (check_common(path, title, n, "categories") != 0 || check_texts(n, names, "names") != 0 ||
        check_finite(n, values, "values") != 0 || check_text(xlabel ? xlabel : "", "label") != 0)
        return -1;
    double lo = fmin(0, min_of(n, values)), hi = fmax(0, max_of(n, values));
    Scale sc = scale_linear(lo, hi, 6);
    double row = 22, names_w = widest(n, names, FS);
    char buf[64];
    double ann = 0;
    for (int i = 0; i < n; i++) {
        fmt_value(buf, sizeof buf, values[i]);
        ann = fmax(ann, text_width(buf, FS_SMALL) + 6);
    }
    /* Names sit left of the zero line when all values are positive, else at the far left. */
    double left = PAD + names_w + 10 + (lo < 0 ? ann : 0);
    double plot_w = 460, top = TITLE_H, bottom = top + row * n;
    double w = left + plot_w + ann + PAD;
    double h = bottom + FS + 8 + (xlabel && *xlabel ? FS + 12 : 0) + PAD;
    AtomicFile *af;
    FILE *f = begin_file(&af, path);
    if (!f) return -1;
    Svg s;
    svg_begin(&s, f, w, h, title ? title : "");
    sc.p0 = left;
    sc.p1 = left + plot_w;
    draw_xaxis(&s, &sc, bottom, top, xlabel);
    double x0 = scale_px(&sc, 0);
    for (int i = 0; i < n; i++) {
        double v = values[i], x = scale_px(&sc, v), y = top + row * i;
        svg_rect(&s, fmin(x, x0), y + 3, fabs(x - x0), row - 6, palette[v < 0 ? 3 : 0]);
        svg_text(&s, PAD + names_w, y + row / 2 + FS * 0.35, "end", FS, 0, NULL, names[i]);
        fmt_value(buf, sizeof buf, v);
        svg_text(&s, v < 0 ? x - 3 : x + 3, y + row / 2 + FS_SMALL * 0.35, v < 0 ? "end" : "start",
                 FS_SMALL, 0, "#333333", buf);
    }
    svg_line(&s, x0, top, x0, bottom, "#444444", 1);
    svg_end(&s);
    return atomic_commit(af);
}

/* Viridis (perceptually uniform, colour-blind safe) at t in [0, 1]. */
static void viridis(double t, char out[8], int *dark)
{
    static const double stops[][3] = {{68, 1, 84},    {59, 82, 139},  {33, 145, 140},
                                      {94, 201, 98},  {253, 231, 37}};
    t = fmin(1, fmax(0, t)) * 4;
    int i = (int)fmin(3, floor(t));
    double u = t - i;
    int rgb[3];
    for (int c = 0; c < 3; c++)
        rgb[c] = (int)lround(stops[i][c] + u * (stops[i + 1][c] - stops[i][c]));
    snprintf(out, 8, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
    *dark = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] < 140;
}

/* Accepts one floating-point conversion (flags, width, precision) and
 * literal text, so user formats cannot read stray arguments. */
static int check_fmt(const char *fmt)
{
    int conv = 0;
    for (const char *p = fmt; *p; p++) {
        if (*p != '%') continue;
        if (p[1] == '%') { p++; continue; }
        p++;
        while (*p && strchr("-+ #0", *p)) p++;
        while (*p >= '0' && *p <= '9') p++;
        if (*p == '.') { p++; while (*p >= '0' && *p <= '9') p++; }
        if (!*p || !strchr("fFeEgG", *p)) return -1;
        conv++;
    }
    return conv == 1 ? 0 : -1;
}

int plot_heatmap_grid(const char *path, const char *title, int n_rows, const char *const *rows, int n_cols,
                      const char *const *cols, const double *values, const char *fmt)
{
    if (check_common(path, title, n_rows, "rows") != 0 || check_texts(n_rows, rows, "row names") != 0 ||
        check_texts(n_cols, cols, "column names") != 0 || check_finite(n_rows * n_cols, values, "values") != 0)
        return -1;
    if (n_cols <= 0) return err_set("%s: nothing to plot (%d columns)", path, n_cols);
    if (!fmt || check_fmt(fmt) != 0)
        return err_set("%s: cell format '%s' must hold one %%f/%%e/%%g conversion", path,
                       fmt ? fmt : "(null)");
    int cells = n_rows * n_cols;
    double lo = min_of(cells, values), hi = max_of(cells, values);
    char buf[64];
    double cell = 30;
    for (int i = 0; i < cells; i++) {
        snprintf(buf, sizeof buf, fmt, values[i]);
        cell = fmax(cell, text_width(buf, FS_SMALL) + 8);
    }
    double rows_w = widest(n_rows, rows, FS), cols_w = widest(n_cols, cols, FS);
    /* Rotated column names reach left of their column: keep the first inside. */
    double left = fmax(PAD + rows_w + 8, PAD + cols_w * sqrt(0.5) - cell / 2), top = TITLE_H + 4;
    double grid_w = cell * n_cols, grid_h = cell * n_rows, bar_x = left + grid_w + 16, bar_w = 14;
    /* The colour bar spans exactly [lo, hi]; its ticks are the round values inside. */
    double span = hi > lo ? hi - lo : 1;
    Scale ticks = scale_linear(lo, lo + span, 5);
    double w = bar_x + bar_w + 8 + widest_tick(&ticks) + PAD;
    double h = top + grid_h + 8 + cols_w * sqrt(0.5) + FS + PAD;
    AtomicFile *af;
    FILE *f = begin_file(&af, path);
    if (!f) return -1;
    Svg s;
    svg_begin(&s, f, w, h, title ? title : "");
    char col[8];
    int dark;
    for (int i = 0; i < n_rows; i++) {
        for (int j = 0; j < n_cols; j++) {
            double v = values[i * n_cols + j];
            viridis(hi > lo ? (v - lo) / (hi - lo) : 0, col, &dark);
            svg_rect(&s, left + j * cell, top + i * cell, cell, cell, col);
            snprintf(buf, sizeof buf, fmt, v);
            svg_text(&s, left + (j + 0.5) * cell, top + (i + 0.5) * cell + FS_SMALL * 0.35, "middle",
                     FS_SMALL, 0, dark ? "#ffffff" : "#000000", buf);
        }
        svg_text(&s, left - 6, top + (i + 0.5) * cell + FS * 0.35, "end", FS, 0, NULL, rows[i]);
    }
    for (int j = 0; j < n_cols; j++) {
        double x = left + (j + 0.5) * cell;
        svg_text(&s, x + FS * 0.3, top + grid_h + 8, "end", FS, -45, NULL, cols[j]);
    }
    /* Colour bar: 32 bands from lo (bottom) to hi (top), ticks at round values. */
    for (int b = 0; b < 32; b++) {
        viridis((b + 0.5) / 32, col, &dark);
        svg_rect(&s, bar_x, top + grid_h - (b + 1) * grid_h / 32, bar_w, grid_h / 32 + 0.5, col);
    }
    for (int i = 0; i < n_ticks(&ticks); i++) {
        double v = tick_value(&ticks, i);
        if (v < lo - 1e-9 * span || v > lo + span * (1 + 1e-9)) continue;
        double y = top + grid_h - (v - lo) / span * grid_h;
        svg_line(&s, bar_x + bar_w, y, bar_x + bar_w + 4, y, "#444444", 1);
        fmt_tick(buf, sizeof buf, &ticks, v);
        svg_text(&s, bar_x + bar_w + 6, y + FS * 0.35, "start", FS, 0, NULL, buf);
    }
    svg_end(&s);
    return atomic_commit(af);
}

int plot_heatmap(const char *path, const char *title, int n, const char *const *names,
                 const double *values, const char *fmt)
{
    return plot_heatmap_grid(path, title, n, names, n, names, values, fmt);
}

/* Opens the file and draws the frame of an x-y chart: title, both axes and
 * their grids, the plot area at `top` and `right_extra` pixels to its right
 * (point labels); the scales get their pixel ranges. NULL with err_set. */
static FILE *xy_frame(Svg *s, AtomicFile **af, const char *path, const char *title, const char *xlabel,
                      const char *ylabel, Scale *sx, Scale *sy, double top, double right_extra,
                      double min_w)
{
    double left = PAD + (ylabel && *ylabel ? FS + 10 : 0) + widest_tick(sy) + 10;
    double plot_w = 540, plot_h = 360, bottom = top + plot_h;
    double w = fmax(left + plot_w + right_extra + PAD, min_w), h = bottom + 2 * FS + 14 + PAD;
    FILE *f = begin_file(af, path);
    if (!f) return NULL;
    svg_begin(s, f, w, h, title ? title : "");
    sx->p0 = left;
    sx->p1 = left + plot_w;
    sy->p0 = bottom;
    sy->p1 = top;
    draw_yaxis(s, sy, left, left + plot_w, ylabel);
    draw_xaxis(s, sx, bottom, top, xlabel);
    return f;
}

int plot_scatter(const char *path, const char *title, const char *xlabel, const char *ylabel,
                 int n, const double *x, const double *y, const char *const *labels, int log_x)
{
    if (check_common(path, title, n, "points") != 0 || check_finite(n, x, "x values") != 0 ||
        check_finite(n, y, "y values") != 0 || check_text(xlabel ? xlabel : "", "label") != 0 ||
        check_text(ylabel ? ylabel : "", "label") != 0)
        return -1;
    if (labels && check_texts(n, labels, "point labels") != 0) return -1;
    if (log_x)
        for (int i = 0; i < n; i++)
            if (x[i] <= 0) return err_set("%s: x[%d] = %g cannot go on a log axis", path, i, x[i]);
    Scale sx = log_x ? scale_log(min_of(n, x), max_of(n, x)) : scale_linear(min_of(n, x), max_of(n, x), 6);
    Scale sy = scale_linear(min_of(n, y), max_of(n, y), 6);
    double lab_w = labels ? widest(n, labels, FS_SMALL) + 8 : 0;
    AtomicFile *af;
    Svg s;
    FILE *f = xy_frame(&s, &af, path, title, xlabel, ylabel, &sx, &sy, TITLE_H, fmax(lab_w, 20), 0);
    if (!f) return -1;
    for (int i = 0; i < n; i++) {
        double px = scale_px(&sx, x[i]), py = scale_px(&sy, y[i]);
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\" fill-opacity=\"0.85\"/>\n",
                px, py, palette[0]);
        if (labels) svg_text(&s, px + 6, py + FS_SMALL * 0.35, "start", FS_SMALL, 0, "#333333", labels[i]);
    }
    svg_end(&s);
    return atomic_commit(af);
}

int plot_curves(const char *path, const char *title, const char *xlabel, const char *ylabel,
                int n, const PlotCurve *curves, const PlotCurveOptions *opt)
{
    if (check_common(path, title, n, "curves") != 0 || check_text(xlabel ? xlabel : "", "label") != 0 ||
        check_text(ylabel ? ylabel : "", "label") != 0)
        return -1;
    if (!curves) return err_set("%s: curves missing", path);
    PlotCurveOptions o = opt ? *opt : (PlotCurveOptions){0};
    if (o.x_range && check_finite(2, o.x_range, "x range") != 0) return -1;
    if (o.n_guides > 0 && (check_finite(o.n_guides, o.guide_x, "guides") != 0 ||
                           check_texts(o.n_guides, o.guide_labels, "guide labels") != 0))
        return -1;
    double xlo = o.x_range ? o.x_range[0] : INFINITY, xhi = o.x_range ? o.x_range[1] : -INFINITY;
    for (int g = 0; g < o.n_guides; g++) {
        xlo = fmin(xlo, o.guide_x[g]);
        xhi = fmax(xhi, o.guide_x[g]);
    }
    double ylo = INFINITY, yhi = -INFINITY;
    const char **names = xmalloc((size_t)n * sizeof *names);
    for (int k = 0; k < n; k++) {
        const PlotCurve *c = &curves[k];
        names[k] = c->name;
        if (check_text(c->name, "curve name") != 0) goto fail;
        if (c->n <= 0) {
            err_set("%s: curve '%s' has no points", path, c->name);
            goto fail;
        }
        if (check_finite(c->n, c->x, "x values") != 0 || check_finite(c->n, c->y, "y values") != 0) {
            err_set("%s: curve '%s': %s", path, c->name, err_msg());
            goto fail;
        }
        xlo = fmin(xlo, min_of(c->n, c->x));
        xhi = fmax(xhi, max_of(c->n, c->x));
        ylo = fmin(ylo, min_of(c->n, c->y));
        yhi = fmax(yhi, max_of(c->n, c->y));
    }
    Scale sx = scale_linear(xlo, xhi, 7), sy = scale_linear(ylo, yhi, 6);
    AtomicFile *af;
    Svg s;
    FILE *f = xy_frame(&s, &af, path, title, xlabel, ylabel, &sx, &sy, TITLE_H + FS + 14, 10,
                       legend_width(n, names));
    if (!f) goto fail;
    draw_legend(&s, n, names, curves, TITLE_H + 4);
    /* Guides under the curves, labelled just right of their line at the top. */
    for (int g = 0; g < o.n_guides; g++) {
        double x = scale_px(&sx, o.guide_x[g]);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888888\" "
                   "stroke-width=\"1\" stroke-dasharray=\"4 3\"/>\n", x, sy.p1, x, sy.p0);
        svg_text(&s, x + 3, sy.p1 + FS_SMALL + 2, "start", FS_SMALL, 0, "#555555", o.guide_labels[g]);
    }
    for (int k = 0; k < n; k++) {
        const PlotCurve *c = &curves[k];
        const char *col = palette[c->colour % N_PALETTE];
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%s\" stroke-linejoin=\"round\"%s points=\"",
                col, c->faint ? "1" : "2", c->faint ? " stroke-opacity=\"0.4\"" : "");
        for (int i = 0; i < c->n; i++)
            fprintf(f, "%s%.1f,%.1f", i ? " " : "", scale_px(&sx, c->x[i]), scale_px(&sy, c->y[i]));
        fputs("\"/>\n", f);
        if (c->markers || c->n == 1)
            for (int i = 0; i < c->n; i++)
                fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n",
                        scale_px(&sx, c->x[i]), scale_px(&sy, c->y[i]), col);
    }
    free(names);
    svg_end(&s);
    return atomic_commit(af);
fail:
    free(names);
    return -1;
}

int plot_lines(const char *path, const char *title, const char *xlabel, const char *ylabel,
               int n_series, const char *const *series, const int *counts,
               const double *const *xs, const double *const *ys)
{
    if (n_series > 0 && (!series || !counts || !xs || !ys))
        return err_set("%s: series data missing", path ? path : "plot");
    PlotCurve *c = xcalloc(n_series > 0 ? (size_t)n_series : 1, sizeof *c);
    for (int k = 0; k < n_series; k++)
        c[k] = (PlotCurve){series[k], counts[k], xs[k], ys[k], k, 0, counts[k] <= 40};
    int rc = plot_curves(path, title, xlabel, ylabel, n_series, c, NULL);
    free(c);
    return rc;
}
