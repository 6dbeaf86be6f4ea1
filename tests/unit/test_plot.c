#include <criterion/criterion.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/core/err.h"
#include "src/eval/plot.h"
#include "tests/testutil.h"

/* A small well-formedness check: balanced tags, quoted attributes, only
 * the five predefined entities, no raw '<' or '&' in text, one root. */
static int well_formed(const char *s, char *why, size_t why_n)
{
    char stack[64][32];
    int depth = 0, roots = 0;
    const char *p = s;
    if (strncmp(p, "<?xml", 5) == 0) {
        p = strstr(p, "?>");
        if (!p) { snprintf(why, why_n, "unterminated declaration"); return 0; }
        p += 2;
    }
    while (*p) {
        if (*p == '&') {
            const char *ents[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
            int ok = 0;
            for (int i = 0; i < 5; i++)
                if (strncmp(p, ents[i], strlen(ents[i])) == 0) { ok = 1; p += strlen(ents[i]); }
            if (!ok) { snprintf(why, why_n, "bad entity at %.20s", p); return 0; }
            continue;
        }
        if (*p == '>') { snprintf(why, why_n, "stray '>' at %.20s", p); return 0; }
        if (*p != '<') { p++; continue; }
        int closing = p[1] == '/';
        p += closing ? 2 : 1;
        char name[32];
        int n = 0;
        while (*p && (isalnum((unsigned char)*p) || *p == '-' || *p == ':') && n < 31) name[n++] = *p++;
        name[n] = '\0';
        if (!n) { snprintf(why, why_n, "tag without a name"); return 0; }
        while (*p && *p != '>' && !(p[0] == '/' && p[1] == '>')) {
            if (*p == '<') { snprintf(why, why_n, "'<' inside tag %s", name); return 0; }
            if (*p == '=') {
                p++;
                if (*p != '"') { snprintf(why, why_n, "unquoted attribute in %s", name); return 0; }
                const char *q = strchr(p + 1, '"');
                if (!q) { snprintf(why, why_n, "unterminated attribute in %s", name); return 0; }
                for (const char *c = p + 1; c < q; c++)
                    if (*c == '<' || (*c == '&' && strncmp(c, "&amp;", 5) && strncmp(c, "&quot;", 6) &&
                                      strncmp(c, "&lt;", 4) && strncmp(c, "&gt;", 4) && strncmp(c, "&apos;", 6))) {
                        snprintf(why, why_n, "raw '%c' in attribute of %s", *c, name);
                        return 0;
                    }
                p = q + 1;
                continue;
            }
            p++;
        }
        if (!*p) { snprintf(why, why_n, "unterminated tag %s", name); return 0; }
        int self = *p == '/';
        p += self ? 2 : 1;
        if (closing) {
            if (depth == 0 || strcmp(stack[depth - 1], name)) {
                snprintf(why, why_n, "</%s> does not close <%s>", name, depth ? stack[depth - 1] : "");
                return 0;
            }
            depth--;
        } else if (!self) {
            if (depth == 0) roots++;
            if (depth == 64) { snprintf(why, why_n, "too deep"); return 0; }
            strcpy(stack[depth++], name);
        } else if (depth == 0) {
            roots++;
        }
    }
    if (depth) { snprintf(why, why_n, "<%s> never closed", stack[depth - 1]); return 0; }
    if (roots != 1) { snprintf(why, why_n, "%d root elements", roots); return 0; }
    return 1;
}

static char *out_path(const char *name)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "/tmp/genre-plot-%d-%s.svg", (int)getpid(), name);
    return buf;
}

static char *check_file(const char *path)
{
    char *s = slurp(path);
    cr_assert_not_null(s, "%s was not written", path);
    char why[200] = "";
    cr_expect(well_formed(s, why, sizeof why), "%s: %s", path, why);
    cr_expect(strstr(s, "<svg xmlns=\"http://www.w3.org/2000/svg\"") != NULL);
    return s;
}

static const char *const genres[] = {"Action", "Sci-Fi", "Film-Noir", "Documentary", "War"};

Test(plot, every_chart_is_well_formed)
{
    double v[] = {120, 45, 3, 880, 17};
    char *p = out_path("bars");
    cr_assert_eq(plot_bars(p, "Genres", "movies", 5, genres, v), 0, "%s", err_msg());
    free(check_file(p));
    unlink(p);

    double signed_v[] = {1.5, -0.25, 0.75, -2.0, 0.1};
    p = out_path("hbars");
    cr_assert_eq(plot_hbars(p, "Weights", "weight", 5, genres, signed_v), 0, "%s", err_msg());
    free(check_file(p));
    unlink(p);

    const char *series[] = {"train", "val", "test"};
    double g[15];
    for (int i = 0; i < 15; i++) g[i] = (i * 37) % 11;
    p = out_path("grouped");
    cr_assert_eq(plot_grouped_bars(p, "Split", "share", 5, genres, 3, series, g), 0, "%s", err_msg());
    free(check_file(p));
    unlink(p);

    double m[25];
    for (int i = 0; i < 25; i++) m[i] = i * 13 % 7;
    p = out_path("heat");
    cr_assert_eq(plot_heatmap(p, "Co-occurrence", 5, genres, m, "%.0f"), 0, "%s", err_msg());
    free(check_file(p));
    unlink(p);

    double x[] = {10, 300, 4000, 55, 20000}, y[] = {0.1, 0.5, 0.9, 0.3, 0.7};
    p = out_path("scatter");
    cr_assert_eq(plot_scatter(p, "F1 by support", "support", "F1", 5, x, y, genres, 1), 0, "%s", err_msg());
    free(check_file(p));
    unlink(p);

    double xa[] = {0, 1, 2, 3}, ya[] = {2.0, 1.2, 0.9, 0.8}, yb[] = {2.1, 1.5, 1.3, 1.35};
    const double *xs[] = {xa, xa}, *ys[] = {ya, yb};
    int counts[] = {4, 4};
    const char *names[] = {"train", "val"};
    p = out_path("lines");
    cr_assert_eq(plot_lines(p, "Loss", "epoch", "loss", 2, names, counts, xs, ys), 0, "%s", err_msg());
    free(check_file(p));
    unlink(p);
}

Test(plot, labels_are_escaped)
{
    const char *names[] = {"Tom & Jerry", "<script>", "\"quoted\" 'single'", "tab\there"};
    double v[] = {1, 2, 3, 4};
    char *p = out_path("escape");
    cr_assert_eq(plot_bars(p, "A < B & C > D", "y", 4, names, v), 0, "%s", err_msg());
    char *s = check_file(p);
    cr_expect(strstr(s, "Tom &amp; Jerry") != NULL);
    cr_expect(strstr(s, "&lt;script&gt;") != NULL);
    cr_expect(strstr(s, "&quot;quoted&quot; &apos;single&apos;") != NULL);
    cr_expect(strstr(s, "A &lt; B &amp; C &gt; D") != NULL);
    cr_expect(strstr(s, "<script>") == NULL);
    cr_expect(strstr(s, "\t") == NULL, "control characters are not valid XML text");
    free(s);
    unlink(p);
}

Test(plot, bad_input_is_an_error_and_writes_nothing)
{
    struct stat st;
    char *p = out_path("bad");
    double v[] = {1, NAN, 3, 4, 5};
    cr_expect_eq(plot_bars(p, "t", "y", 5, genres, v), -1);
    cr_expect(strstr(err_msg(), "finite") != NULL, "%s", err_msg());
    cr_expect_eq(plot_bars(p, "t", "y", 0, genres, v), -1);
    cr_expect(strstr(err_msg(), "nothing to plot") != NULL, "%s", err_msg());
    double inf[] = {1, 2, INFINITY, 4, 5};
    cr_expect_eq(plot_hbars(p, "t", "x", 5, genres, inf), -1);
    double m[25] = {0};
    cr_expect_eq(plot_heatmap(p, "t", 5, genres, m, "%s"), -1, "a %%s format would read a pointer");
    cr_expect_eq(plot_heatmap(p, "t", 5, genres, m, "%.0f %.0f"), -1);
    double x[] = {0, 1, 2, 3, 4}, y[] = {1, 2, 3, 4, 5};
    cr_expect_eq(plot_scatter(p, "t", "x", "y", 5, x, y, genres, 1), -1, "zero on a log axis");
    const char *bad_utf8[] = {"ok", "\xff\xfe"};
    cr_expect_eq(plot_bars(p, "t", "y", 2, bad_utf8, y), -1);
    cr_expect(strstr(err_msg(), "UTF-8") != NULL, "%s", err_msg());
    int counts[] = {0};
    const double *xs[] = {x}, *ys[] = {y};
    const char *names[] = {"s"};
    cr_expect_eq(plot_lines(p, "t", "x", "y", 1, names, counts, xs, ys), -1);
    cr_expect_neq(stat(p, &st), 0, "no file after a failed plot");
}

Test(plot, constant_and_negative_values_still_get_an_axis)
{
    double same[] = {7, 7, 7, 7, 7}, neg[] = {-3, -1, -8, -2, -5};
    char *p = out_path("flat");
    cr_assert_eq(plot_bars(p, "flat", "y", 5, genres, same), 0, "%s", err_msg());
    free(check_file(p));
    cr_assert_eq(plot_bars(p, "negative", "y", 5, genres, neg), 0, "%s", err_msg());
    char *s = check_file(p);
    cr_expect(strstr(s, ">-8<") != NULL, "the axis reaches the smallest value: %s", s);
    cr_expect(strstr(s, "nan") == NULL && strstr(s, "inf") == NULL);
    free(s);
    unlink(p);
}

Test(plot, curves_faint_under_smooth_on_a_shared_axis)
{
    double x[] = {1, 2, 3, 4}, raw[] = {0.9, 0.5, 0.6, 0.3}, smooth[] = {0.9, 0.67, 0.47, 0.3};
    PlotCurve c[] = {{"loss per step", 4, x, raw, 0, 1, 0}, {"moving mean", 4, x, smooth, 0, 0, 0},
                     {"val", 1, x + 3, smooth + 3, 1, 0, 1}};
    double range[] = {0, 10}, guide_x[] = {2, 3};
    const char *guide_labels[] = {"epoch 2", "epoch 3"};
    PlotCurveOptions opt = {range, 2, guide_x, guide_labels};
    char *p = out_path("curves");
    cr_assert_eq(plot_curves(p, "Loss", "step", "loss", 3, c, &opt), 0, "%s", err_msg());
    char *s = check_file(p);
    cr_expect(strstr(s, "stroke-opacity=\"0.4\""), "the raw curve is pale");
    cr_expect(strstr(s, ">10<"), "the x axis covers the range asked for");
    cr_expect(strstr(s, ">epoch 2<") && strstr(s, ">epoch 3<"), "guides are labelled");
    int circles = 0;
    for (const char *q = s; (q = strstr(q, "<circle")); q++) circles++;
    cr_expect_eq(circles, 1, "a one-point curve shows as a dot; the others have no markers");
    free(s);
    c[1].y = NULL;
    cr_expect_eq(plot_curves(p, "Loss", "step", "loss", 2, c, NULL), -1);
    cr_expect(strstr(err_msg(), "moving mean"), "the error names the curve: %s", err_msg());
    unlink(p);
}

/* A heatmap of rows against other columns (genre sweep: groups against
 * genres): every cell annotated once, the row names and column names each
 * drawn once, and a grid that is not square is no error. */
Test(plot, heatmap_grid_puts_rows_against_columns)
{
    const char *rows[] = {"loss.type=bce", "loss.type=focal"};
    double v[] = {0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 0.0625, 0.1875, 0.3125};
    char *p = out_path("grid");
    cr_assert_eq(plot_heatmap_grid(p, "Precision", 2, rows, 5, genres, v, "%.4f"), 0, "%s", err_msg());
    char *s = check_file(p);
    for (int i = 0; i < 10; i++) {
        char cell[32];
        snprintf(cell, sizeof cell, ">%.4f<", v[i]);
        char *at = strstr(s, cell);
        cr_expect(at && !strstr(at + 1, cell), "cell %s not drawn exactly once", cell);
    }
    for (int j = 0; j < 5; j++) {
        char name[64];
        snprintf(name, sizeof name, ">%s<", genres[j]);
        char *at = strstr(s, name);
        cr_expect(at && !strstr(at + 1, name), "column %s not drawn exactly once", genres[j]);
    }
    cr_expect(strstr(s, ">loss.type=focal<") != NULL);
    free(s);
    unlink(p);
    cr_expect_eq(plot_heatmap_grid(p, "t", 2, rows, 0, genres, v, "%.2f"), -1);
    cr_expect(strstr(err_msg(), "nothing to plot (0 columns)") != NULL, "%s", err_msg());
}
