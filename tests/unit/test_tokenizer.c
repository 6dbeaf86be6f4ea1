#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/cli/commands.h"
#include "src/core/err.h"
#include "tests/testutil.h"
#include "tokenizer/tokenizer.h"
#include "src/core/utf8.h"

/* A tiny vocabulary: ids are line numbers. */
static const char *const VOCAB[] = {
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "hello", ",",
    "world", "!", "cafe", "naive", "ab", "abc", "##cd", "##d", "a", "##a",
    "\xd0\xb6", "##\xd0\xb6", "\xcf\x83", "x", "y", "[", "mask", "]", "i", "##stanbul",
    NULL,
};

static char *write_file(const char *name, const char *content)
{
    char *path = write_temp(name, content);
    cr_assert_not_null(path, "cannot write %s", name);
    return path;
}

static Tokenizer *small_vocab(void)
{
    char text[1024] = "";
    for (int i = 0; VOCAB[i]; i++) {
        strcat(text, VOCAB[i]);
        strcat(text, "\n");
    }
    Tokenizer *t = tokenizer_load(write_file("vocab.txt", text));
    cr_assert_not_null(t, "%s", err_msg());
    return t;
}

/* The ids of `text` as their tokens joined by spaces. */
static const char *encode_str(const Tokenizer *t, const char *text)
{
    static char out[4096];
    int32_t ids[512];
    long n = tokenizer_encode(t, text, strlen(text), ids, 512);
    cr_assert_geq(n, 0, "%s", err_msg());
    cr_assert_leq(n, 512);
    out[0] = '\0';
    for (long i = 0; i < n; i++) {
        if (i) strcat(out, " ");
        strcat(out, tokenizer_token(t, ids[i]));
    }
    return out;
}

static void join_word(const char *word, size_t len, void *ctx)
{
    char *out = ctx;
    cr_assert_eq(strlen(word), len);
    if (*out) strcat(out, "|");
    strcat(out, word);
}

static const char *words(const char *text)
{
    static char out[4096];
    out[0] = '\0';
    cr_assert_eq(basic_tokenize(text, strlen(text), join_word, out), 0, "%s", err_msg());
    return out;
}

/* Expected values checked by hand against HuggingFace's BertNormalizer +
 * BertPreTokenizer (tokenizers 0.23.3). */
Test(tokenizer, basic_words)
{
    cr_expect_str_eq(words("Hello, World!"), "hello|,|world|!");
    cr_expect_str_eq(words("  Café\tNAÏVE \r\n"), "cafe|naive");
    cr_expect_str_eq(words("ab\xe9\x87\x8e\xe5\x8f\xa3" "cd"), "ab|\xe9\x87\x8e|\xe5\x8f\xa3|cd");
    cr_expect_str_eq(words("a\x01" "b\xe2\x80\x8b" "c\xef\xbf\xbd" "d"), "abcd");
    cr_expect_str_eq(words("a\xc2\xa0" "b\xe3\x80\x80" "c"), "a|b|c");
    cr_expect_str_eq(words("a\xe2\x80\x94" "b$c"), "a|\xe2\x80\x94|b|$|c");
    cr_expect_str_eq(words("\xce\xa3\xce\x91"), "\xcf\x83\xce\xb1");
    cr_expect_str_eq(words("\xc4\xb0stanbul"), "istanbul");
    cr_expect_str_eq(words(""), "");
    cr_expect_str_eq(words(" \t "), "");
}

/* NFD's canonical reordering of the marks that survive (Mc, class 216 and
 * 226): across a removed control or an Mn of class 230, not across an Mn of
 * class 0 (U+0941), which is a starter. */
Test(tokenizer, basic_canonical_order)
{
    cr_expect_str_eq(words("a\xf0\x9d\x85\xad\xf0\x9d\x85\xa5" "b"), "a\xf0\x9d\x85\xa5\xf0\x9d\x85\xad" "b");
    cr_expect_str_eq(words("a\xf0\x9d\x85\xad\xe0\xa5\x81\xf0\x9d\x85\xa5" "b"), "a\xf0\x9d\x85\xad\xf0\x9d\x85\xa5" "b");
    cr_expect_str_eq(words("a\xf0\x9d\x85\xad\xe2\x80\x8b\xf0\x9d\x85\xa5" "b"), "a\xf0\x9d\x85\xa5\xf0\x9d\x85\xad" "b");
    cr_expect_str_eq(words("a\xf0\x9d\x85\xad\xcc\x81\xf0\x9d\x85\xa5" "b"), "a\xf0\x9d\x85\xa5\xf0\x9d\x85\xad" "b");
}

Test(tokenizer, basic_long_word_is_whole)
{
    char text[3001];
    memset(text, 'Q', 3000);
    text[3000] = '\0';
    char *out = malloc(4096);
    out[0] = '\0';
    cr_assert_eq(basic_tokenize(text, 3000, join_word, out), 0);
    cr_expect_eq(strlen(out), 3000);
    cr_expect_eq(out[0], 'q');
    free(out);
}

Test(tokenizer, wordpiece_greedy_longest_first)
{
    Tokenizer *t = small_vocab();
    cr_expect_str_eq(encode_str(t, "unaffable"), "un ##aff ##able");
    cr_expect_str_eq(encode_str(t, "abcd"), "abc ##d", "longest first, not ab ##cd");
    cr_expect_str_eq(encode_str(t, "Hello, world!"), "hello , world !");
    cr_expect_str_eq(encode_str(t, "Caf\xc3\xa9 na\xc3\xafve"), "cafe naive");
    cr_expect_str_eq(encode_str(t, "\xc4\xb0stanbul"), "i ##stanbul");
    cr_expect_str_eq(encode_str(t, "\xce\xa3"), "\xcf\x83");
    cr_expect_str_eq(encode_str(t, ""), "");
    tokenizer_free(t);
}

Test(tokenizer, unk_rules)
{
    Tokenizer *t = small_vocab();
    cr_expect_str_eq(encode_str(t, "unx hello"), "[UNK] hello", "a part with no match makes the whole word [UNK]");
    cr_expect_str_eq(encode_str(t, "affable"), "[UNK]", "a continuation cannot start a word");
    char text[202];
    memset(text, 'a', 101);
    text[100] = '\0';
    cr_expect_eq(tokenizer_encode(t, text, 100, NULL, 0), 100, "100 characters: still split");
    text[100] = 'a';
    text[101] = '\0';
    cr_expect_str_eq(encode_str(t, text), "[UNK]", "101 characters: [UNK]");
    /* The limit counts characters, not bytes: 60 x U+0436 is 120 bytes. */
    for (int i = 0; i < 60; i++) memcpy(text + 2 * i, "\xd0\xb6", 2);
    text[120] = '\0';
    cr_expect_eq(tokenizer_encode(t, text, 120, NULL, 0), 60);
    tokenizer_free(t);
}

Test(tokenizer, literal_special_tokens)
{
    Tokenizer *t = small_vocab();
    cr_expect_str_eq(encode_str(t, "x[MASK]y [mask]"), "x [MASK] y [ mask ]");
    cr_expect_str_eq(encode_str(t, "[CLS][SEP] [UNK]"), "[CLS] [SEP] [UNK]");
    cr_expect_str_eq(encode_str(t, "[MAS [MASK"), "[ [UNK] [ mask");
    tokenizer_free(t);
}

Test(tokenizer, encode_counts_past_cap)
{
    Tokenizer *t = small_vocab();
    int32_t ids[2] = {-7, -7};
    cr_expect_eq(tokenizer_encode(t, "hello , world !", 15, ids, 1), 4);
    cr_expect_eq(ids[0], tokenizer_token_id(t, "hello"));
    cr_expect_eq(ids[1], -7, "nothing written past cap");
    tokenizer_free(t);
}

Test(tokenizer, encode_batch_truncates_pads_and_masks)
{
    Tokenizer *t = small_vocab();
    SpecialIds sp = tokenizer_special(t);
    const char *texts[] = {"hello world", "hello , world ! hello", ""};
    int32_t ids[3 * 5], mask[3 * 5];
    int lengths[3];
    cr_assert_eq(tokenizer_encode_batch(t, texts, 3, 5, ids, mask, lengths), 0, "%s", err_msg());
    int32_t h = tokenizer_token_id(t, "hello"), w = tokenizer_token_id(t, "world"), c = tokenizer_token_id(t, ",");
    int32_t want_ids[15] = {sp.cls, h, w, sp.sep, sp.pad, sp.cls, h, c, w, sp.sep, sp.cls, sp.sep, sp.pad, sp.pad, sp.pad};
    int32_t want_mask[15] = {1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0};
    for (int i = 0; i < 15; i++) {
        cr_expect_eq(ids[i], want_ids[i], "ids[%d]", i);
        cr_expect_eq(mask[i], want_mask[i], "mask[%d]", i);
    }
    cr_expect_eq(lengths[0], 4);
    cr_expect_eq(lengths[1], 5);
    cr_expect_eq(lengths[2], 2);
    cr_expect_eq(tokenizer_encode_batch(t, texts, 3, 1, ids, mask, NULL), -1);
    tokenizer_free(t);
}

Test(tokenizer, invalid_utf8_names_the_byte)
{
    Tokenizer *t = small_vocab();
    static const struct { const char *text; const char *msg; } cases[] = {
        {"ab\xff" "c", "invalid UTF-8 at byte 2"},
        {"\xc0\x80", "invalid UTF-8 at byte 0"},         /* overlong NUL */
        {"a\xed\xa0\x80", "invalid UTF-8 at byte 1"},    /* surrogate */
        {"\xf4\x90\x80\x80", "invalid UTF-8 at byte 0"}, /* past U+10FFFF */
        {"hello \xc3", "invalid UTF-8 at byte 6"},       /* cut short */
        {"[CLS]x\x80", "invalid UTF-8 at byte 6"},       /* after a special token */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int32_t ids[8];
        cr_expect_eq(tokenizer_encode(t, cases[i].text, strlen(cases[i].text), ids, 8), -1, "case %zu", i);
        cr_expect_str_eq(err_msg(), cases[i].msg, "case %zu", i);
        cr_expect_eq(basic_tokenize(cases[i].text, strlen(cases[i].text), join_word, (char[64]){0}), -1);
        cr_expect_eq(utf8_check(cases[i].text, strlen(cases[i].text)), (size_t)atol(cases[i].msg + 22));
    }
    const char *bad[] = {"fine", "bad\xfe"};
    int32_t ids[2 * 4], mask[2 * 4];
    cr_expect_eq(tokenizer_encode_batch(t, bad, 2, 4, ids, mask, NULL), -1);
    cr_expect_str_eq(err_msg(), "text 1: invalid UTF-8 at byte 3");
    tokenizer_free(t);
}

Test(tokenizer, vocab_lookup_and_files)
{
    Tokenizer *t = small_vocab();
    int n = 0;
    while (VOCAB[n]) n++;
    cr_expect_eq(tokenizer_vocab_size(t), n);
    for (int i = 0; i < n; i++) {
        cr_expect_eq(tokenizer_token_id(t, VOCAB[i]), i);
        cr_expect_str_eq(tokenizer_token(t, i), VOCAB[i]);
    }
    cr_expect_eq(tokenizer_token_id(t, "nope"), -1);
    cr_expect_null(tokenizer_token(t, n));
    cr_expect_null(tokenizer_token(t, -1));
    SpecialIds sp = tokenizer_special(t);
    cr_expect(sp.pad == 0 && sp.unk == 1 && sp.cls == 2 && sp.sep == 3 && sp.mask == 4);
    tokenizer_free(t);

    /* CRLF and trailing blanks are trimmed; a repeated token takes its last line. */
    t = tokenizer_load(write_file("crlf.txt", "[PAD]\r\n[UNK]  \r\n[CLS]\r\n[SEP]\r\nx\r\nx\r\n"));
    cr_assert_not_null(t, "%s", err_msg());
    cr_expect_eq(tokenizer_vocab_size(t), 6);
    cr_expect_eq(tokenizer_token_id(t, "[UNK]"), 1);
    cr_expect_eq(tokenizer_token_id(t, "x"), 5);
    cr_expect_eq(tokenizer_special(t).mask, -1, "[MASK] is optional");
    tokenizer_free(t);

    /* A model directory means its vocab.txt. */
    char dir[128];
    snprintf(dir, sizeof dir, "/tmp/genre-tok-%d-model", (int)getpid());
    mkdir(dir, 0700);
    char path[160];
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    rename(write_file("v", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n"), path);
    t = tokenizer_load(dir);
    cr_assert_not_null(t, "%s", err_msg());
    cr_expect_eq(tokenizer_vocab_size(t), 4);
    tokenizer_free(t);
    unlink(path);
    rmdir(dir);
}

Test(tokenizer, vocab_errors)
{
    cr_expect_null(tokenizer_load("/nonexistent/vocab.txt"));
    cr_expect(strstr(err_msg(), "/nonexistent/vocab.txt: cannot open") != NULL, "%s", err_msg());
    char *p = write_file("empty.txt", "");
    cr_expect_null(tokenizer_load(p));
    cr_expect(strstr(err_msg(), "empty vocabulary") != NULL, "%s", err_msg());
    p = write_file("nounk.txt", "[PAD]\n[CLS]\n[SEP]\n");
    cr_expect_null(tokenizer_load(p));
    cr_expect(strstr(err_msg(), "no [UNK] token") != NULL, "%s", err_msg());
    p = write_file("bad.txt", "[PAD]\n[UNK]\nok\nbad\xff\n");
    cr_expect_null(tokenizer_load(p));
    cr_expect(strstr(err_msg(), "bad.txt:4: invalid UTF-8") != NULL, "%s", err_msg());
}

/* Writes the small vocabulary to `vocab` and puts `input` on stdin. */
static void cli_input(const char *input, char vocab[256])
{
    Tokenizer *t = small_vocab();
    tokenizer_free(t);
    snprintf(vocab, 256, "/tmp/genre-test-%d-vocab.txt", (int)getpid());
    char *in = write_file("stdin", input);
    cr_assert_not_null(freopen(in, "rb", stdin));
}

/* Runs `genre tokenize` in this (forked) test process on `input`; returns its stdout. */
static const char *run_cli(const char *input, const char *const *args, int nargs)
{
    char vocab[256];
    cli_input(input, vocab);
    char out[256];
    snprintf(out, sizeof out, "/tmp/genre-tok-%d-stdout", (int)getpid());
    cr_assert_not_null(freopen(out, "wb", stdout));
    /* --words takes no vocabulary. */
    int words = nargs && !strcmp(args[0], "--words");
    char *argv[8] = {"tokenize", "--vocab", vocab};
    int argc = words ? 1 : 3;
    for (int i = 0; i < nargs; i++) argv[argc++] = (char *)args[i];
    cr_assert_eq(cmd_tokenize(argc, argv), 0);
    fflush(stdout);
    static char buf[4096];
    FILE *f = fopen(out, "rb");
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

Test(tokenize_cli, lines_crlf_special_and_max_len)
{
    const char *in = "hello world\r\n\nunaffable\nhello";
    cr_expect_str_eq(run_cli(in, NULL, 0), "8 10\n\n5 6 7\n8\n");
}

Test(tokenize_cli, special_with_max_len)
{
    const char *args[] = {"--special", "--max-len", "4"};
    cr_expect_str_eq(run_cli("hello world\nunaffable\n", args, 3), "2 8 10 3\n2 5 6 3\n");
}

Test(tokenize_cli, max_len_without_special)
{
    const char *args[] = {"--max-len", "2"};
    cr_expect_str_eq(run_cli("unaffable hello\n", args, 2), "5 6\n");
}

Test(tokenize_cli, words)
{
    const char *args[] = {"--words"};
    cr_expect_str_eq(run_cli("Hello, Caf\xc3\xa9!\r\n\n \n[MASK]", args, 1), "hello , cafe !\n\n\n[ mask ]\n");
}

/* Exit status 1 and the message naming the line and the byte. */
Test(tokenize_cli, invalid_utf8_exits_1)
{
    char vocab[256], err[1024];
    cli_input("hello\nwor\xffld\n", vocab);
    char *argv[] = {"tokenize", "--vocab", vocab};
    CmdCall call = {cmd_tokenize, 3, argv};
    int rc = run_captured(call_cmd, &call, err, sizeof err);
    cr_expect_eq(rc, 1, "exit status %d, stderr: %s", rc, err);
    cr_expect(strstr(err, "stdin:2: invalid UTF-8 at byte 3") != NULL, "stderr: %s", err);
}

Test(tokenize_cli, stats_of_a_prepared_dataset)
{
    char dir[128], path[192];
    snprintf(dir, sizeof dir, "/tmp/genre-tok-%d-data", (int)getpid());
    mkdir(dir, 0777);
    const char *files[][2] = {
        {"labels.txt", "Drama\n"},
        {"train.jsonl", "{\"title\": \"a\", \"year\": 1, \"text\": \"hello world\", \"labels\": [\"Drama\"]}\n"
                        "{\"title\": \"b\", \"year\": 2, \"text\": \"unaffable\", \"labels\": []}\n"},
        {"val.jsonl", "{\"title\": \"c\", \"year\": 3, \"text\": \"hello\", \"labels\": [\"Drama\"]}\n"},
        {"test.jsonl", ""},
    };
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i][0]);
        FILE *f = fopen(path, "w");
        fputs(files[i][1], f);
        fclose(f);
    }
    /* Lengths with [CLS] and [SEP]: 4 and 5 in train, 3 in val; --max-len 4 cuts one. */
    const char *args[] = {"--stats", dir, "--max-len", "4"};
    const char *out = run_cli("", args, 4);
    cr_expect(strstr(out, "train        2        9     4.5     4     5       5     50.0%  0.000%") != NULL, "%s", out);
    cr_expect(strstr(out, "val          1        3     3.0     3     3       3      0.0%") != NULL, "%s", out);
}
