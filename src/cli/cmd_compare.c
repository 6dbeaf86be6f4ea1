/* genre compare: the seed-style comparison tables of several runs, read
 * from their run directories (each with the metrics.json of a report). */
#include <stdio.h>
#include <string.h>

#include "src/core/err.h"
#include "src/eval/report.h"

int cmd_compare(int argc, char **argv)
{
    const char *out = NULL;
    int first = 1;
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: genre compare [--out FILE] RUN_DIR...\n\n"
               "Markdown tables (quantitative results, combined metrics, micro/macro/\n"
               "weighted/samples averages) of the test metrics of each RUN_DIR/metrics.json,\n"
               "one column per run, on stdout or in FILE.\n");
        return 0;
    }
    if (argc > 2 && !strcmp(argv[1], "--out")) {
        out = argv[2];
        first = 3;
    }
    if (first >= argc) die("compare: no run directories (see 'genre compare --help')");
    if (report_compare_dirs(out, argc - first, (const char *const *)argv + first) != 0) die_err();
    return 0;
}
