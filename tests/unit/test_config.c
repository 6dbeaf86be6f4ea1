#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/core/config.h"
#include "src/core/err.h"

static const CfgKey schema[] = {
    {"data", CFG_STRING, NULL, NULL, "prepared data directory"},
    {"lr", CFG_FLOAT, "2e-5", NULL, "learning rate"},
    {"max_steps", CFG_INT, "0", NULL, "stop after N steps"},
    {"loss.type", CFG_STRING, "\"bce\"", "bce|bce_logw|focal", "loss"},
    {"loss.gamma", CFG_FLOAT, "2.0", NULL, "focal gamma"},
    {"shuffle", CFG_BOOL, "true", NULL, "shuffle"},
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
