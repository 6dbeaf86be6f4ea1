#include <errno.h>
#include <jansson.h>
#include <math.h>
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
    case CFG_LIST: return "a list of strings";
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

/* A range in interval notation (config.h), parsed. */
typedef struct {
    double lo, hi, also;
    bool lo_open, hi_open, has_also;
} Range;

/* False when s is not a range: "[lo, hi]" with either end open, lo <= hi,
 * an infinite end only open, optionally after "X or ". */
static bool parse_range(const char *s, Range *r)
{
    char *end;
    *r = (Range){0};
    if (!s) return false;
    const char *or = strstr(s, " or ");
    if (or) {
        r->also = strtod(s, &end);
        if (end != or || !isfinite(r->also)) return false;
        r->has_also = true;
        s = or + 4;
    }
    if (*s != '[' && *s != '(') return false;
    r->lo_open = *s++ == '(';
    r->lo = strtod(s, &end);
    if (end == s || strncmp(end, ", ", 2) != 0) return false;
    s = end + 2;
    r->hi = strtod(s, &end);
    if (end == s || (*end != ']' && *end != ')') || end[1]) return false;
    r->hi_open = *end == ')';
    return r->lo <= r->hi && (isfinite(r->lo) || r->lo_open) && (isfinite(r->hi) || r->hi_open);
}

static bool range_has(const Range *r, double x)
{
    return (r->has_also && x == r->also) ||
           ((r->lo_open ? x > r->lo : x >= r->lo) && (r->hi_open ? x < r->hi : x <= r->hi));
}

bool config_in_range(const char *range, double x)
{
    Range r;
    if (!parse_range(range, &r)) {
        fprintf(stderr, "genre: internal error: '%s' is not a range\n", range ? range : "(none)");
        abort();
    }
    return range_has(&r, x);
}

const char *config_range_text(const char *range, char *buf, size_t size)
{
    const char *or = strstr(range, " or ");
    if (or) snprintf(buf, size, "%.*s or in %s", (int)(or - range), range, or + 4);
    else snprintf(buf, size, "in %s", range);
    return buf;
}

static bool is_number(CfgType t) { return t == CFG_INT || t == CFG_FLOAT; }

/* Checks v against k, converting an integer to a real for CFG_FLOAT. Returns
 * a new reference or NULL with err_set naming `where`. */
static json_t *check_value(const CfgKey *k, json_t *v, const char *where)
{
    json_t *ok = NULL;
    switch (k->type) {
    case CFG_INT:
        if (json_is_integer(v)) ok = json_incref(v);
        break;
    case CFG_FLOAT:
        if (json_is_integer(v)) ok = json_real((double)json_integer_value(v));
        else if (json_is_real(v)) ok = json_incref(v);
        break;
    case CFG_BOOL:
        if (json_is_boolean(v)) ok = json_incref(v);
        break;
    case CFG_LIST:
        if (json_is_array(v)) {
            size_t i;
            json_t *item;
            ok = json_incref(v);
            json_array_foreach(v, i, item) {
                if (json_is_string(item)) continue;
                json_decref(ok);
                ok = NULL;
                break;
            }
        }
        break;
    case CFG_STRING:
        if (json_is_string(v)) {
            if (k->allowed && !choice_ok(k->allowed, json_string_value(v))) {
                err_set("%s: key '%s' is \"%s\", expected one of %s", where, k->key,
                        json_string_value(v), k->allowed);
                return NULL;
            }
            ok = json_incref(v);
        }
        break;
    }
    if (!ok) {
        err_set("%s: key '%s' must be %s", where, k->key, type_name(k->type));
        return NULL;
    }
    if (is_number(k->type) && !config_in_range(k->allowed, json_number_value(ok))) {
        char text[128];
        err_set("%s: key '%s' must be %s", where, k->key, config_range_text(k->allowed, text, sizeof text));
        json_decref(ok);
        return NULL;
    }
    return ok;
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

/* An override's list: a JSON array ('["a", "b"]', checked as a file's
 * value is), or names between commas ("a,b"), "" for none. NULL when it
 * is neither: an empty name ("a,,b", "a,") or a '[' that is not JSON. */
static json_t *parse_list(const char *text)
{
    if (*text == '[') return json_loads(text, JSON_DECODE_ANY, NULL);
    json_t *a = json_array();
    if (!*text) return a;
    for (const char *p = text;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == 0) {
            json_decref(a);
            return NULL;
        }
        json_array_append_new(a, json_stringn(p, n));
        if (!comma) break;
        p = comma + 1;
    }
    return a;
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
    /* Strings are taken verbatim, the rest strictly: " 5" is not 5. */
    json_t *v = NULL;
    long i;
    double x;
    if (k->type == CFG_STRING) v = json_string(text);
    else if (k->type == CFG_INT && config_parse_int(text, &i)) v = json_integer(i);
    else if (k->type == CFG_FLOAT && config_parse_real(text, &x)) v = json_real(x);
    else if (k->type == CFG_BOOL && (!strcmp(text, "true") || !strcmp(text, "false"))) v = json_boolean(*text == 't');
    else if (k->type == CFG_LIST) v = parse_list(text);
    if (!v) return err_set("%s: key '%s' must be %s", where, key, type_name(k->type));
    int rc = set_value(c, key, v, where);
    json_decref(v);
    return rc;
}

/* The length of the decimal number at the start of s (config.h's
 * grammar), 0 when there is none. */
static size_t number_span(const char *s, bool real)
{
    static const char digits[] = "0123456789";
    const char *p = s + (*s == '-');
    size_t n = strspn(p, digits);
    p += n;
    if (real && *p == '.') {
        size_t frac = strspn(p + 1, digits);
        p += 1 + frac;
        n += frac;
    }
    if (real && n && (*p == 'e' || *p == 'E')) {
        const char *q = p + 1 + (p[1] == '+' || p[1] == '-');
        size_t e = strspn(q, digits);
        if (!e) return 0;
        p = q + e;
    }
    return n ? (size_t)(p - s) : 0;
}

bool config_parse_int(const char *s, long *out)
{
    if (!*s || number_span(s, false) != strlen(s)) return false;
    errno = 0;
    long x = strtol(s, NULL, 10);
    if (errno) return false;
    *out = x;
    return true;
}

bool config_parse_real(const char *s, double *out)
{
    if (!*s || number_span(s, true) != strlen(s)) return false;
    double x = strtod(s, NULL);
    if (!isfinite(x)) return false;
    *out = x;
    return true;
}

int config_check_schema(const CfgKey *schema)
{
    for (const CfgKey *k = schema; k->key; k++) {
        Range r;
        if (is_number(k->type)) {
            if (!k->allowed) return err_set("schema: key '%s' is a number without a range", k->key);
            if (!parse_range(k->allowed, &r)) return err_set("schema: key '%s': '%s' is not a range", k->key, k->allowed);
            if (k->type == CFG_INT && (r.lo != floor(r.lo) || r.hi != floor(r.hi) || r.also != floor(r.also)))
                return err_set("schema: key '%s' is an integer, its range '%s' is not", k->key, k->allowed);
        } else if ((k->type == CFG_BOOL || k->type == CFG_LIST) && k->allowed) {
            return err_set("schema: key '%s' is a %s with allowed values", k->key,
                           k->type == CFG_BOOL ? "bool" : "list");
        }
        if (!k->def) continue;
        json_t *v = json_loads(k->def, JSON_DECODE_ANY, NULL);
        json_t *ok = v ? check_value(k, v, "schema: default") : NULL;
        if (!v) err_set("schema: key '%s': default '%s' is not JSON", k->key, k->def);
        json_decref(v);
        if (!ok) return -1;
        json_decref(ok);
    }
    return 0;
}

/* One layer onto c: a file, an object or overrides (config.h). */
static int apply_layer(Config *c, const CfgLayer *l)
{
    if (l->path) {
        json_t *root = json_read_file(l->path, 0);
        if (!root) return -1;
        int rc = json_is_object(root) ? merge_object(c, root, "", l->path)
                                      : err_set("%s: the configuration must be a JSON object", l->path);
        json_decref(root);
        return rc;
    }
    if (l->object) {
        if (!json_is_object(l->object)) return err_set("%s: the configuration must be a JSON object", l->where);
        return merge_object(c, (json_t *)l->object, "", l->where);
    }
    for (int i = 0; i < l->n_overrides; i++)
        if (apply_override(c, l->overrides[i]) != 0) return -1;
    return 0;
}

Config *config_load_layers(const CfgKey *schema, const char *what, int n_layers, const CfgLayer *layers)
{
    if (config_check_schema(schema) != 0) {
        fprintf(stderr, "genre: internal error: %s\n", err_msg());
        abort();
    }
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
    for (int i = 0; i < n_layers; i++)
        if (apply_layer(c, &layers[i]) != 0) goto fail;
    for (const CfgKey *k = schema; k->key; k++)
        if (!json_object_get(c->values, k->key)) {
            err_set("%s: required key '%s' is missing (%s)", what ? what : "configuration", k->key, k->help);
            goto fail;
        }
    return c;
fail:
    config_free(c);
    return NULL;
}

Config *config_load(const CfgKey *schema, const char *path, int n_overrides, char *const *overrides)
{
    CfgLayer layers[2] = {{.path = path}, {.n_overrides = n_overrides, .overrides = overrides}};
    return config_load_layers(schema, path, path ? 2 : 1, path ? layers : layers + 1);
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

int cfg_list_size(const Config *c, const char *key)
{
    return (int)json_array_size(get_typed(c, key, CFG_LIST));
}

const char *cfg_list_item(const Config *c, const char *key, int i)
{
    return json_string_value(json_array_get(get_typed(c, key, CFG_LIST), (size_t)i));
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
    for (const CfgKey *k = schema; k->key; k++) {
        char allowed[160] = "";
        if (is_number(k->type)) {
            char text[128];
            snprintf(allowed, sizeof allowed, "; %s", config_range_text(k->allowed, text, sizeof text));
        } else if (k->allowed) {
            snprintf(allowed, sizeof allowed, "; one of %s", k->allowed);
        }
        printf("  %-24s %-7s default %-12s %s%s\n", k->key,
               k->type == CFG_INT ? "int" : k->type == CFG_FLOAT ? "float"
               : k->type == CFG_BOOL ? "bool" : k->type == CFG_LIST ? "list" : "string",
               k->def ? k->def : "(required)", k->help, allowed);
    }
}

bool config_is_override(const char *arg)
{
    const char *eq = strchr(arg, '=');
    return eq && eq != arg && arg[0] != '-';
}
