/* Command configuration: a schema of dotted keys with types, defaults and
 * the values allowed, filled from an optional JSON file (nested objects map
 * to dotted keys) and then from "key=value" overrides. Every key and value
 * is checked against the schema here, and nowhere else; each error is one
 * message naming where the value came from and the key:
 *   FILE: unknown key 'lossx.gamma'
 *   override 'max_steps=abc': key 'max_steps' must be an integer
 *   override 'loss.gamma=-3': key 'loss.gamma' must be in [0, 10]
 *   FILE: key 'loss.alpha' must be -1 or in [0, 1]
 *   override 'loss.type=mse': key 'loss.type' is "mse", expected one of bce|bce_logw|focal|asl
 *
 * A number's range is written in interval notation, a square bracket for a
 * closed end and a parenthesis for an open one: "[1, 4096]", "(0, 1)",
 * "[0, inf)" (a real's end may be inf; an integer's ends are integers).
 * One value outside the interval may come first, for a key whose special
 * value means "none": "-1 or [0, 1]", "0 or [2, 1000]". Every number has a
 * range (config_check_schema), shown by config_print_help. */
#ifndef GENRE_CONFIG_H
#define GENRE_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum { CFG_INT, CFG_FLOAT, CFG_STRING, CFG_BOOL, CFG_LIST } CfgType;

typedef struct {
    const char *key;     /* dotted, e.g. "loss.gamma" */
    CfgType type;
    const char *def;     /* default as JSON text ("2.0", "\"focal\"", "true"); NULL: required */
    const char *allowed; /* CFG_INT, CFG_FLOAT: the range, required ("[0, 10]");
                            CFG_STRING: the values allowed, "bce|focal", or NULL
                            for any; CFG_BOOL: NULL; CFG_LIST (a list of
                            strings, "[\"a\", \"b\"]"): NULL */
    const char *help;
} CfgKey;

typedef struct Config Config;

/* Builds a config from the schema (terminated by a {NULL} entry), the JSON
 * file `path` (may be NULL) and the overrides. NULL with err_set on error.
 * An override's value is read strictly: an integer or a real as
 * config_parse_int and config_parse_real read them, true or false exactly,
 * a string verbatim, a list as a JSON array of strings ('["a", "b"]') or
 * as names between commas ("a,b"; "" is the empty list, "a,,b" an error). A schema that config_check_schema refuses aborts. */
Config *config_load(const CfgKey *schema, const char *path, int n_overrides, char *const *overrides);

/* One source of values: a JSON file (path), a JSON object (object, named
 * `where` in messages; nested objects or dotted keys, as a file), or
 * key=value overrides. Exactly one of path, object, n_overrides is set. */
typedef struct {
    const char *path;
    const json_t *object;
    const char *where;
    int n_overrides;
    char *const *overrides;
} CfgLayer;

/* config_load over any number of layers, applied in order (a later value
 * wins); `what` names the configuration when a required key is missing.
 * config_load(schema, path, n, over) is the layers {path}, {n, over}. */
Config *config_load_layers(const CfgKey *schema, const char *what, int n_layers, const CfgLayer *layers);

/* 0, or -1 with err_set naming the first key of the schema that breaks
 * the rules above: a number without a range that parses (an integer's with
 * integer ends), allowed values on a bool, a default outside what its key
 * allows. */
int config_check_schema(const CfgKey *schema);

/* Whether x is in `range` (interval notation as above). A range that does
 * not parse aborts: it is the program's error, not the user's. */
bool config_in_range(const char *range, double x);

/* The phrase that says what `range` allows, into buf: "in [0, 10]",
 * "-1 or in [0, 1]". Returns buf. */
const char *config_range_text(const char *range, char *buf, size_t size);

/* Numbers from the command line, read strictly: the whole of s, decimal,
 * an optional '-' and digits; a real may add a fraction and an exponent
 * ("2e-5", ".5", "1."). No blanks, no '+', no hex, no nan or inf. False
 * when s is not one, or when it overflows a long or a double. */
bool config_parse_int(const char *s, long *out);
bool config_parse_real(const char *s, double *out);
void config_free(Config *c);

/* Typed access; asking for a key not in the schema or of another type aborts. */
long cfg_int(const Config *c, const char *key);
double cfg_float(const Config *c, const char *key);
const char *cfg_str(const Config *c, const char *key);
bool cfg_bool(const Config *c, const char *key);
/* A CFG_LIST key: how many strings it holds, and the i-th of them. */
int cfg_list_size(const Config *c, const char *key);
const char *cfg_list_item(const Config *c, const char *key, int i);

/* The resolved configuration as nested JSON, keys in schema order (a new
 * reference). */
json_t *config_to_json(const Config *c);

/* Writes config_to_json, pretty-printed, to path atomically; 0 or -1 with
 * err_set. A run directory's config.json, which --resume reads back. */
int config_write(const Config *c, const char *path);

/* Prints the schema (key, type, default, help, what is allowed) for --help. */
void config_print_help(const CfgKey *schema);

/* True if `arg` looks like a key=value override. */
bool config_is_override(const char *arg);

#endif
