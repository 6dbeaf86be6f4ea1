#include <stdlib.h>
#include <string.h>

#include "src/core/err.h"
#include "src/core/failpoint.h"

int failpoint(const char *name)
{
    static long calls;
    const char *spec = getenv("GENRE_FAILPOINT");
    size_t len = strlen(name);
    if (!spec || strncmp(spec, name, len) != 0 || spec[len] != ':') return 0;
    if (++calls != strtol(spec + len + 1, NULL, 10)) return 0;
    return err_set("%s: injected failure (GENRE_FAILPOINT)", name);
}
