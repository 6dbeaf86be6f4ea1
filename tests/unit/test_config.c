#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/core/config.h"
#include "src/core/err.h"

static const CfgKey schema[] = {
    {"data", CFG_STRING, NULL, NULL, "prepared data directory"},
    {"lr", CFG_FLOAT, "2e-5", "(0, inf)", "learning rate"},
    {"max_steps", CFG_INT, "0", "[0, 1000]", "stop after N steps"},
    {"loss.type", CFG_STRING, "\"bce\"", "bce|bce_logw|focal", "loss"},
    {"loss.gamma", CFG_FLOAT, "2.0", "[0, 10]", "focal gamma"},
    {"loss.alpha", CFG_FLOAT, "0.25", "-1 or [0, 1]", "focal alpha"},
    {"shuffle", CFG_BOOL, "true", NULL, "shuffle"},
    {"drop", CFG_LIST, "[]", NULL, "names to drop"},
    {NULL, 0, NULL, NULL, NULL},
};

static char *write_tmp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/genre-cfg-%d.json", (int)getpid());
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

Test(config, file_then_overrides)
{
    char *path = write_tmp("{\"data\": \"d\", \"loss\": {\"type\": \"focal\", \"gamma\": 1}}");
    char *ov[] = {"max_steps=50", "loss.gamma=1.5", "data=other"};
    Config *c = config_load(schema, path, 3, ov);
    cr_assert_not_null(c, "%s", err_msg());
    cr_expect_str_eq(cfg_str(c, "data"), "other");
    cr_expect_eq(cfg_int(c, "max_steps"), 50);
    cr_expect_float_eq(cfg_float(c, "loss.gamma"), 1.5, 1e-12);
    cr_expect_str_eq(cfg_str(c, "loss.type"), "focal");
    cr_expect_float_eq(cfg_float(c, "lr"), 2e-5, 1e-15);
    cr_expect(cfg_bool(c, "shuffle"));
    char out[80];
    snprintf(out, sizeof out, "/tmp/genre-cfg-out-%d.json", (int)getpid());
    cr_assert_eq(config_write(c, out), 0, "%s", err_msg());
    char text[4096] = "";
    FILE *f = fopen(out, "r");
    cr_assert_not_null(f);
    text[fread(text, 1, sizeof text - 1, f)] = 0;
    fclose(f);
    remove(out);
    cr_expect(strstr(text, "\"loss\": {\n    \"type\": \"focal\",\n    \"gamma\": 1.5") != NULL, "%s", text);
    cr_expect_eq(text[strlen(text) - 1], '\n');
    config_free(c);
    remove(path);
}

Test(config, errors_name_the_problem)
{
    char *ov_unknown[] = {"data=x", "lossx.gamma=1"};
    cr_expect_null(config_load(schema, NULL, 2, ov_unknown));
    cr_expect(strstr(err_msg(), "unknown key 'lossx.gamma'") != NULL, "%s", err_msg());

    char *ov_type[] = {"data=x", "max_steps=abc"};
    cr_expect_null(config_load(schema, NULL, 2, ov_type));
    cr_expect(strstr(err_msg(), "'max_steps' must be an integer") != NULL, "%s", err_msg());

    char *ov_choice[] = {"data=x", "loss.type=mse"};
    cr_expect_null(config_load(schema, NULL, 2, ov_choice));
    cr_expect(strstr(err_msg(), "expected one of") != NULL, "%s", err_msg());

    cr_expect_null(config_load(schema, NULL, 0, NULL));
    cr_expect(strstr(err_msg(), "required key 'data'") != NULL, "%s", err_msg());

    char *path = write_tmp("{\"data\": \"d\",\n \"lr\": }");
    cr_expect_null(config_load(schema, path, 0, NULL));
    cr_expect(strstr(err_msg(), ":2:") != NULL, "%s", err_msg());
    remove(path);

    path = write_tmp("{\"data\": \"d\", \"lr\": \"fast\"}");
    cr_expect_null(config_load(schema, path, 0, NULL));
    cr_expect(strstr(err_msg(), "'lr' must be a number") != NULL, "%s", err_msg());
    remove(path);
}

/* A value out of its key's range: one message naming where it came from,
 * the key and the range. */
Test(config, ranges_are_checked_with_one_message)
{
    char *gamma[] = {"data=x", "loss.gamma=-3"};
    cr_expect_null(config_load(schema, NULL, 2, gamma));
    cr_expect_str_eq(err_msg(), "override 'loss.gamma=-3': key 'loss.gamma' must be in [0, 10]");
    char *lr[] = {"data=x", "lr=0"};
    cr_expect_null(config_load(schema, NULL, 2, lr));
    cr_expect_str_eq(err_msg(), "override 'lr=0': key 'lr' must be in (0, inf)");
    char *alpha[] = {"data=x", "loss.alpha=-0.5"};
    cr_expect_null(config_load(schema, NULL, 2, alpha));
    cr_expect_str_eq(err_msg(), "override 'loss.alpha=-0.5': key 'loss.alpha' must be -1 or in [0, 1]");

    char *path = write_tmp("{\"data\": \"d\", \"loss\": {\"alpha\": 5}}"), want[256];
    cr_expect_null(config_load(schema, path, 0, NULL));
    snprintf(want, sizeof want, "%s: key 'loss.alpha' must be -1 or in [0, 1]", path);
    cr_expect_str_eq(err_msg(), want);
    remove(path);

    char *ok[] = {"data=x", "loss.alpha=-1", "lr=1e300", "max_steps=1000", "loss.gamma=0"};
    Config *c = config_load(schema, NULL, 5, ok);
    cr_assert_not_null(c, "%s", err_msg());
    cr_expect_float_eq(cfg_float(c, "loss.alpha"), -1, 0);
    config_free(c);
}

/* An override's number is the whole value, decimal, as an option's is. */
Test(config, override_values_are_read_strictly)
{
    const char *bad[][2] = {
        {"max_steps= 5", "an integer"}, {"max_steps=5 ", "an integer"}, {"max_steps=+5", "an integer"},
        {"max_steps=0x5", "an integer"}, {"max_steps=5.0", "an integer"}, {"lr=0x1p-3", "a number"},
        {"lr=nan", "a number"}, {"lr=1e999", "a number"}, {"lr=", "a number"}, {"shuffle= true", "true or false"},
        {"shuffle=1", "true or false"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        char *over[] = {"data=x", (char *)bad[k][0]}, key[32], want[128];
        snprintf(key, sizeof key, "%.*s", (int)(strchr(bad[k][0], '=') - bad[k][0]), bad[k][0]);
        cr_expect_null(config_load(schema, NULL, 2, over), "%s", bad[k][0]);
        snprintf(want, sizeof want, "override '%s': key '%s' must be %s", bad[k][0], key, bad[k][1]);
        cr_expect_str_eq(err_msg(), want);
    }
    char *good[] = {"data=x", "lr=.5", "max_steps=-0", "shuffle=false", "loss.gamma=25e-1"};
    Config *c = config_load(schema, NULL, 5, good);
    cr_assert_not_null(c, "%s", err_msg());
    cr_expect_float_eq(cfg_float(c, "lr"), 0.5, 0);
    cr_expect_float_eq(cfg_float(c, "loss.gamma"), 2.5, 0);
    cr_expect(!cfg_bool(c, "shuffle"));
    config_free(c);
}

/* A list comes from a file as a JSON array of strings, from an override
 * as JSON or as names between commas; anything else names the key. */
Test(config, lists_from_files_and_overrides)
{
    const char *forms[][2] = {{"drop=", ""}, {"drop=Drama", "Drama|"}, {"drop=Sci-Fi,Film-Noir", "Sci-Fi|Film-Noir|"},
                              {"drop=[]", ""}, {"drop=[\"Drama\", \"a,b\"]", "Drama|a,b|"}};
    for (size_t k = 0; k < sizeof forms / sizeof *forms; k++) {
        char *over[] = {"data=x", (char *)forms[k][0]}, got[128] = "";
        Config *c = config_load(schema, NULL, 2, over);
        cr_assert_not_null(c, "%s: %s", forms[k][0], err_msg());
        for (int i = 0; i < cfg_list_size(c, "drop"); i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s|", cfg_list_item(c, "drop", i));
        cr_expect_str_eq(got, forms[k][1], "%s", forms[k][0]);
        config_free(c);
    }
    const char *bad[] = {"drop=a,,b", "drop=a,", "drop=,a", "drop=[1]", "drop=[\"a\"", "drop=[\"a\", null]"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        char *over[] = {"data=x", (char *)bad[k]}, want[128];
        cr_expect_null(config_load(schema, NULL, 2, over), "%s was taken", bad[k]);
        snprintf(want, sizeof want, "override '%s': key 'drop' must be a list of strings", bad[k]);
        cr_expect_str_eq(err_msg(), want);
    }
    char *path = write_tmp("{\"data\": \"d\", \"drop\": [\"Thriller\"]}"), want[256];
    Config *c = config_load(schema, path, 0, NULL);
    cr_assert_not_null(c, "%s", err_msg());
    cr_expect_eq(cfg_list_size(c, "drop"), 1);
    cr_expect_str_eq(cfg_list_item(c, "drop", 0), "Thriller");
    config_free(c);
    path = write_tmp("{\"data\": \"d\", \"drop\": \"Thriller\"}");
    cr_expect_null(config_load(schema, path, 0, NULL));
    snprintf(want, sizeof want, "%s: key 'drop' must be a list of strings", path);
    cr_expect_str_eq(err_msg(), want);
    remove(path);
}

/* The schema check refuses what config_load could not enforce. */
Test(config, a_schema_number_needs_a_range)
{
    const struct {
        CfgKey key;
        const char *message;
    } bad[] = {
        {{"n", CFG_INT, "1", NULL, "n"}, "schema: key 'n' is a number without a range"},
        {{"n", CFG_INT, "1", "[0, 2", "n"}, "schema: key 'n': '[0, 2' is not a range"},
        {{"n", CFG_INT, "1", "[2, 0]", "n"}, "schema: key 'n': '[2, 0]' is not a range"},
        {{"x", CFG_FLOAT, "1", "[0, inf]", "x"}, "schema: key 'x': '[0, inf]' is not a range"},
        {{"n", CFG_INT, "0", "[0, 0.5]", "n"}, "schema: key 'n' is an integer, its range '[0, 0.5]' is not"},
        {{"n", CFG_INT, "0", "[1, 2]", "n"}, "schema: default: key 'n' must be in [1, 2]"},
        {{"b", CFG_BOOL, "true", "[0, 1]", "b"}, "schema: key 'b' is a bool with allowed values"},
        {{"l", CFG_LIST, "[]", "a|b", "l"}, "schema: key 'l' is a list with allowed values"},
        {{"l", CFG_LIST, "[1]", NULL, "l"}, "schema: default: key 'l' must be a list of strings"},
        {{"s", CFG_STRING, "\"c\"", "a|b", "s"}, "schema: default: key 's' is \"c\", expected one of a|b"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        CfgKey one[] = {bad[k].key, {NULL, 0, NULL, NULL, NULL}};
        cr_expect_eq(config_check_schema(one), -1, "%s", bad[k].message);
        cr_expect_str_eq(err_msg(), bad[k].message);
    }
    cr_expect_eq(config_check_schema(schema), 0, "%s", err_msg());
}

/* --help shows what each key allows. */
Test(config, help_shows_what_each_key_allows)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/genre-cfg-help-%d.txt", (int)getpid());
    fflush(stdout);
    int saved = dup(1);
    cr_assert(freopen(path, "w", stdout));
    config_print_help(schema);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    FILE *f = fopen(path, "r");
    char text[4096] = "";
    text[fread(text, 1, sizeof text - 1, f)] = '\0';
    fclose(f);
    remove(path);
    cr_expect(strstr(text, "  loss.gamma               float   default 2.0          focal gamma; in [0, 10]\n"), "%s", text);
    cr_expect(strstr(text, "  loss.alpha               float   default 0.25         focal alpha; -1 or in [0, 1]\n"),
              "%s", text);
    cr_expect(strstr(text, "loss; one of bce|bce_logw|focal\n"), "%s", text);
    cr_expect(strstr(text, "  shuffle                  bool    default true         shuffle\n"), "%s", text);
    cr_expect(strstr(text, "  drop                     list    default []           names to drop\n"), "%s", text);
}
