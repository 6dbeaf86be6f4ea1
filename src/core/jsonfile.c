#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

const char *json_error_what(const json_error_t *e)
{
    switch (json_error_code(e)) {
    case json_error_null_character:
        return "a string holds \\u0000 (a NUL character), which genre does not accept";
    case json_error_null_byte_in_key:
        return "an object key holds \\u0000 (a NUL character), which genre does not accept";
    default:
        return e->text;
    }
}

json_t *json_read_file(const char *path, size_t flags)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        err_set("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        err_set("%s: is a directory, not a JSON file", path);
        return NULL;
    }
    json_error_t e;
    json_t *o = json_loadf(f, flags, &e);
    int read_errno = ferror(f) ? errno : 0;
    fclose(f);
    if (o) return o;
    if (read_errno) err_set("%s: cannot read: %s", path, strerror(read_errno));
    else if (e.line > 0) err_set("%s:%d: %s", path, e.line, json_error_what(&e));
    else err_set("%s: %s", path, json_error_what(&e));
    return NULL;
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

json_t *json_floats_by_name(const char *const *names, const float *values, int n)
{
    json_t *o = json_object();
    for (int k = 0; k < n; k++) json_object_set_new(o, names[k], json_real_of_float(values[k]));
    return o;
}
