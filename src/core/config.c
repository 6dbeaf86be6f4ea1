#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/config.h"
#include "src/core/err.h"
#include "src/core/jsonfile.h"

struct Config {
    const CfgKey *schema;
    json_t *values; /* flat: dotted key -> value */
};

static const char *type_name(CfgType t)
{
    switch (t) {
    case CFG_INT: return "an integer";
    case CFG_FLOAT: return "a number";
    case CFG_STRING: return "a string";
    case CFG_BOOL: return "true or false";
    }
    return "?";
}

static const CfgKey *find_key(const CfgKey *schema, const char *key)
{
    for (const CfgKey *k = schema; k->key; k++)
        if (strcmp(k->key, key) == 0) return k;
    return NULL;
}

/* True if some schema key starts with "prefix.", i.e. prefix names a section. */
static bool is_section(const CfgKey *schema, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const CfgKey *k = schema; k->key; k++)
        if (strncmp(k->key, prefix, n) == 0 && k->key[n] == '.') return true;
    return false;
}

static bool choice_ok(const char *choices, const char *s)
{
    size_t n = strlen(s);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, s, n) == 0) return true;
        if (!bar) break;
        p = bar + 1;
    }
    return false;
}

/* Checks v against k, converting an integer to a real for CFG_FLOAT. Returns
 * a new reference or NULL with err_set naming `where`. */
static json_t *check_value(const CfgKey *k, json_t *v, const char *where)
{
    switch (k->type) {
    case CFG_INT:
        if (json_is_integer(v)) return json_incref(v);
        break;
    case CFG_FLOAT:
        if (json_is_integer(v)) return json_real((double)json_integer_value(v));
        if (json_is_real(v)) return json_incref(v);
        break;
    case CFG_BOOL:
        if (json_is_boolean(v)) return json_incref(v);
        break;
    case CFG_STRING:
        if (json_is_string(v)) {
            if (k->choices && !choice_ok(k->choices, json_string_value(v))) {
                err_set("%s: key '%s' is \"%s\", expected one of %s", where, k->key,
                        json_string_value(v), k->choices);
                return NULL;
            }
            return json_incref(v);
        }
        break;
    }
    err_set("%s: key '%s' must be %s", where, k->key, type_name(k->type));
    return NULL;
}

static int set_value(Config *c, const char *key, json_t *v, const char *where)
{
    const CfgKey *k = find_key(c->schema, key);
    if (!k) return err_set("%s: unknown key '%s'", where, key);
    json_t *ok = check_value(k, v, where);
    if (!ok) return -1;
    json_object_set_new(c->values, key, ok);
    return 0;
}

/* Walks a nested object from a file, assigning leaves by dotted key. */
static int merge_object(Config *c, json_t *obj, const char *prefix, const char *where)
{
    const char *name;
    json_t *v;
    json_object_foreach(obj, name, v) {
        char key[256];
        snprintf(key, sizeof key, "%s%s%s", prefix, *prefix ? "." : "", name);
        if (json_is_object(v) && is_section(c->schema, key)) {
            if (merge_object(c, v, key, where) != 0) return -1;
        } else if (set_value(c, key, v, where) != 0) {
            return -1;
        }
    }
    return 0;
}

static int apply_override(Config *c, const char *arg)
{
    const char *eq = strchr(arg, '=');
    char key[256];
    size_t n = (size_t)(eq - arg);
    if (n >= sizeof key) return err_set("override '%s': key too long", arg);
    memcpy(key, arg, n);
    key[n] = '\0';
    const CfgKey *k = find_key(c->schema, key);
    char where[300];
    snprintf(where, sizeof where, "override '%s'", arg);
    if (!k) return err_set("%s: unknown key '%s'", where, key);
    const char *text = eq + 1;
    /* Strings are taken verbatim; everything else is parsed as JSON. */
    json_t *v = k->type == CFG_STRING ? json_string(text)
                                      : json_loads(text, JSON_DECODE_ANY, NULL);
    if (!v) return err_set("%s: key '%s' must be %s", where, key, type_name(k->type));
    int rc = set_value(c, key, v, where);
    json_decref(v);
    return rc;
}

Config *config_load(const CfgKey *schema, const char *path, int n_overrides, char *const *overrides)
{
    Config *c = xcalloc(1, sizeof *c);
    c->schema = schema;
    c->values = json_object();
    for (const CfgKey *k = schema; k->key; k++) {
        if (!k->def) continue;
        json_error_t e;
        json_t *v = json_loads(k->def, JSON_DECODE_ANY, &e);
        if (!v || set_value(c, k->key, v, "built-in default") != 0) {
            fprintf(stderr, "genre: bad built-in default for '%s'\n", k->key);
            abort();
        }
        json_decref(v);
    }
    if (path) {
        json_t *root = json_read_file(path, 0);
        if (!root) goto fail;
        if (!json_is_object(root)) {
            json_decref(root);
            err_set("%s: the configuration must be a JSON object", path);
            goto fail;
        }
        int rc = merge_object(c, root, "", path);
        json_decref(root);
        if (rc != 0) goto fail;
    }
    for (int i = 0; i < n_overrides; i++)
        if (apply_override(c, overrides[i]) != 0) goto fail;
    for (const CfgKey *k = schema; k->key; k++)
        if (!json_object_get(c->values, k->key)) {
            err_set("%s: required key '%s' is missing (%s)", path ? path : "configuration",
                    k->key, k->help);
            goto fail;
        }
    return c;
fail:
    config_free(c);
    return NULL;
}

void config_free(Config *c)
{
    if (!c) return;
    json_decref(c->values);
    free(c);
}

static json_t *get_typed(const Config *c, const char *key, CfgType t)
{
    const CfgKey *k = find_key(c->schema, key);
    if (!k || k->type != t) {
        fprintf(stderr, "genre: internal error: config key '%s' read as %s\n", key, type_name(t));
        abort();
    }
    return json_object_get(c->values, key);
}

long cfg_int(const Config *c, const char *key)
{
    return (long)json_integer_value(get_typed(c, key, CFG_INT));
}

double cfg_float(const Config *c, const char *key)
{
    return json_real_value(get_typed(c, key, CFG_FLOAT));
}

const char *cfg_str(const Config *c, const char *key)
{
    return json_string_value(get_typed(c, key, CFG_STRING));
}

bool cfg_bool(const Config *c, const char *key)
{
    return json_is_true(get_typed(c, key, CFG_BOOL));
}

json_t *config_to_json(const Config *c)
{
    json_t *root = json_object();
    for (const CfgKey *k = c->schema; k->key; k++) {
        json_t *obj = root;
        char part[256];
        const char *p = k->key, *dot;
        while ((dot = strchr(p, '.'))) {
            snprintf(part, sizeof part, "%.*s", (int)(dot - p), p);
            json_t *sub = json_object_get(obj, part);
            if (!sub) {
                sub = json_object();
                json_object_set_new(obj, part, sub);
            }
            obj = sub;
            p = dot + 1;
        }
        json_object_set(obj, p, json_object_get(c->values, k->key));
    }
    return root;
}

int config_write(const Config *c, const char *path)
{
    json_t *o = config_to_json(c);
    int rc = json_write_file(path, o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(o);
    return rc;
}

void config_print_help(const CfgKey *schema)
{
    printf("\nConfiguration keys (set in --config FILE or as key=value):\n");
    for (const CfgKey *k = schema; k->key; k++)
        printf("  %-22s %-7s default %-12s %s\n", k->key,
               k->type == CFG_INT ? "int" : k->type == CFG_FLOAT ? "float"
               : k->type == CFG_BOOL ? "bool" : "string",
               k->def ? k->def : "(required)", k->help);
}

bool config_is_override(const char *arg)
{
    const char *eq = strchr(arg, '=');
    return eq && eq != arg && arg[0] != '-';
}
