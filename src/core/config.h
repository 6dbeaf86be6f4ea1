/* Command configuration: a schema of dotted keys with types and defaults,
 * filled from an optional JSON file (nested objects map to dotted keys) and
 * then from "key=value" overrides. Every key and value is validated against
 * the schema; errors name the file, the key and what was expected. */
#ifndef GENRE_CONFIG_H
#define GENRE_CONFIG_H

#include <jansson.h>
#include <stdbool.h>

typedef enum { CFG_INT, CFG_FLOAT, CFG_STRING, CFG_BOOL } CfgType;

typedef struct {
    const char *key;     /* dotted, e.g. "loss.gamma" */
    CfgType type;
    const char *def;     /* default as JSON text ("2.0", "\"focal\"", "true"); NULL: required */
    const char *choices; /* for strings: allowed values separated by '|', or NULL */
    const char *help;
} CfgKey;

typedef struct Config Config;

/* Builds a config from the schema (terminated by a {NULL} entry), the JSON
 * file `path` (may be NULL) and the overrides. NULL with err_set on error. */
Config *config_load(const CfgKey *schema, const char *path, int n_overrides, char *const *overrides);
void config_free(Config *c);

/* Typed access; asking for a key not in the schema or of another type aborts. */
long cfg_int(const Config *c, const char *key);
double cfg_float(const Config *c, const char *key);
const char *cfg_str(const Config *c, const char *key);
bool cfg_bool(const Config *c, const char *key);

/* The resolved configuration as nested JSON, keys in schema order (a new
 * reference). */
json_t *config_to_json(const Config *c);

/* Writes config_to_json, pretty-printed, to path atomically; 0 or -1 with
 * err_set. A run directory's config.json, which --resume reads back. */
int config_write(const Config *c, const char *path);

/* Prints the schema (key, type, default, help) for --help. */
void config_print_help(const CfgKey *schema);

/* True if `arg` looks like a key=value override. */
bool config_is_override(const char *arg);

#endif
