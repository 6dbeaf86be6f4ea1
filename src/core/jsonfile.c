#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/atomic.h"
#include "src/core/err.h"
#include "src/core/jsonfile.h"

int json_write_file(const char *path, const json_t *o, size_t flags)
{
    char *text = json_dumps(o, flags);
    if (!text) return err_set("%s: cannot serialise the JSON document", path);
    size_t n = strlen(text);
    text = xrealloc(text, n + 2);
    text[n++] = '\n';
    int rc = atomic_write_file(path, text, n);
    free(text);
    return rc;
}

json_t *json_real_of_float(float x)
{
    char buf[32];
    for (int digits = 1; digits < 9; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, (double)x);
        if ((float)strtod(buf, NULL) == x) return json_real(strtod(buf, NULL));
    }
    return json_real((double)x);
}
