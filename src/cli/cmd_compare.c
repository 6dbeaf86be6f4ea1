/* genre compare: the seed-style comparison tables of several runs, read
 * from their run directories (each with the metrics.json of a report). */
#include <stdio.h>

#include "src/cli/args.h"
#include "src/cli/commands.h"
#include "src/core/err.h"
#include "src/eval/report.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: genre compare [--out FILE] RUN_DIR...\n\n"
               "Markdown tables (quantitative results, combined metrics, micro/macro/\n"
               "weighted/samples averages) of the test metrics of each RUN_DIR/metrics.json,\n"
               "one column per run, on stdout or in FILE.\n");
}

int cmd_compare(int argc, char **argv)
{
    const char *out = NULL;
    const ArgOpt opts[] = {ARG_OUT(&out, false), {NULL}};
    Args a = args_parse(&(ArgSpec){.cmd = "compare", .opts = opts, .usage = usage, .positional = true}, argc, argv);
    if (a.n_positional == 0) args_error("compare", "no run directories");
    if (report_compare_dirs(out, a.n_positional, (const char *const *)a.positional) != 0) die_err();
    args_free(&a);
    return 0;
}
