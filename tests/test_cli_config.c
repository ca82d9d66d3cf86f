/*
 * test_cli_config.c - cli/config.c: defaults, nested keys, --set, and every
 * kind of error with its exact text: file:line:col: key.path: problem.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../cli/config.h"
#include "testutil.h"

static char file[64];
static char err[1024];

static int load(const char *yaml, sg_config *c)
{
    strcpy(file, "/tmp/seqgrad-cfg-XXXXXX");
    int fd = mkstemp(file);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, yaml, strlen(yaml)), (int)strlen(yaml));
    close(fd);
    int rc = cfg_load(c, file, err, sizeof err);
    unlink(file);
    return rc;
}

static void fails(const char *yaml, const char *expect)
{
    sg_config c;
    ck_assert_int_eq(load(yaml, &c), -1);
    char full[600];
    snprintf(full, sizeof full, "%s:%s", file, expect);
    ck_assert_str_eq(err, full);
}

START_TEST(test_values_and_defaults)
{
    sg_config c;
    ck_assert_int_eq(load("model:\n  kind: gru\n  hidden: 64\ndata:\n  kind: text\n  seq_len: 32\n"
                          "optim: {kind: sgd, lr: 0.5}\n", &c), 0);
    ck_assert_int_eq(cfg_check(&c, err, sizeof err), 0);
    ck_assert_str_eq(cfg_str(&c, "model.kind"), "gru");
    ck_assert_int_eq(cfg_int(&c, "model.hidden"), 64);
    ck_assert_int_eq(cfg_int(&c, "model.layers"), 2);            /* default */
    ck_assert_double_eq(cfg_real(&c, "optim.lr"), 0.5);          /* flow style works too */
    ck_assert_int_eq(cfg_set(&c, "model.layers=3", err, sizeof err), 0);
    ck_assert_int_eq(cfg_int(&c, "model.layers"), 3);
    char dump[8192];
    cfg_dump(&c, dump, sizeof dump);
    ck_assert_ptr_nonnull(strstr(dump, "model:\n  kind: \"gru\"\n  hidden: 64\n  embedding: 0\n  layers: 3\n"));
    ck_assert(cfg_is_set(&c, "model.hidden") && cfg_is_set(&c, "model.layers"));   /* the file; --set */
    ck_assert(!cfg_is_set(&c, "model.dropout"));                                     /* a default */
}
END_TEST

START_TEST(test_errors_name_file_line_col_and_key)
{
    fails("model:\n  kind: lstm\n  hiden: 64\n", "3:3: model.hiden: unknown key");
    fails("model:\n  hidden: big\n", "2:11: model.hidden: expected an integer, got \"big\"");
    fails("model:\n  hidden: 0\n", "2:11: model.hidden: 0 is out of range [1, 4096]");
    fails("model:\n  dropout: 1.5\n", "2:12: model.dropout: 1.5 is out of range [0, 0.95]");
    fails("optim:\n  kind: adamx\n", "2:9: optim.kind: \"adamx\" is not one of sgd|adam|adamw|rmsprop|adagrad");
    fails("model:\n  hidden: [1, 2]\n", "2:11: model.hidden: expected a value, got a list");
    fails("model: lstm\n", "1:8: model: expected a mapping, got a value");
    fails("model:\n  hidden:\n    deep: 1\n", "3:5: model.hidden: expected a value, got a mapping");
    sg_config c;
    ck_assert_int_eq(load("model:\n  kind: lstm\n hidden: 3\n", &c), -1);      /* bad indentation */
    ck_assert_msg(strncmp(err, file, strlen(file)) == 0 && strstr(err, ":3:"), "%s", err);
}
END_TEST

START_TEST(test_missing_and_set_errors)
{
    sg_config c;
    ck_assert_int_eq(load("model:\n  kind: lstm\n", &c), 0);
    ck_assert_int_eq(cfg_check(&c, err, sizeof err), -1);
    char expect[300];
    snprintf(expect, sizeof expect, "%s: data.kind: missing (required: text|words|lines|pairs|copy|reverse|sort|adding|labelled|wordlang|fashion|parity|order|segment|wordgen|caption|tagged)", file);
    ck_assert_str_eq(err, expect);
    ck_assert_int_eq(cfg_set(&c, "model.hiden=3", err, sizeof err), -1);
    ck_assert_str_eq(err, "--set model.hiden: unknown key");
    ck_assert_int_eq(cfg_set(&c, "model.hidden=-1", err, sizeof err), -1);
    ck_assert_str_eq(err, "--set model.hidden: -1 is out of range [1, 4096]");
    ck_assert_int_eq(cfg_set(&c, "model.hidden", err, sizeof err), -1);
    ck_assert_str_eq(err, "--set model.hidden: expected key.path=value");
    ck_assert_int_eq(cfg_load(&c, "/nonexistent.yaml", err, sizeof err), -1);
    ck_assert_str_eq(err, "/nonexistent.yaml: cannot open: No such file or directory");
}
END_TEST

/* docs/config.md carries the table cfg_doc makes: the docs cannot drift */
START_TEST(test_docs_list_every_key)
{
    static char table[16384], docs[65536];
    cfg_doc(table, sizeof table);
    FILE *f = fopen(TEST_DATA_DIR "/../../docs/config.md", "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(docs, 1, sizeof docs - 1, f);
    fclose(f);
    docs[n] = '\0';
    ck_assert_msg(strstr(docs, table) != NULL, "docs/config.md is out of date: ./build/seqgrad config-keys");
}
END_TEST

/* a string with " and \ dumps as YAML that reads back to the same string
 * (a run with such a data path trained but could not be resumed); a key
 * given twice is an error, not "the last wins" */
START_TEST(test_dump_round_trip_and_duplicates)
{
    sg_config c, back;
    ck_assert_int_eq(load("model: {kind: lstm}\ndata: {kind: text, path: 'a\"b\\c'}\n", &c), 0);
    ck_assert_str_eq(cfg_str(&c, "data.path"), "a\"b\\c");
    char dump[8192];
    size_t len = cfg_dump(&c, dump, sizeof dump);
    ck_assert_ptr_nonnull(strstr(dump, "  path: \"a\\\"b\\\\c\"\n"));
    ck_assert_msg(cfg_load_text(&back, "dump", dump, len, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(cfg_str(&back, "data.path"), "a\"b\\c");
    fails("model:\n  kind: lstm\n  kind: gru\n", "3:9: model.kind: given twice (first at line 2, column 9)");
    /* line breaks and controls YAML would fold or refuse, written as escapes (found by fuzz/fuzz_config.c) */
    ck_assert_int_eq(load("model: {kind: lstm}\ndata: {kind: text, path: \"a\\Nb\\Lc\\x80d\\uFEFFe\"}\n", &c), 0);
    len = cfg_dump(&c, dump, sizeof dump);
    ck_assert_msg(cfg_load_text(&back, "dump", dump, len, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(cfg_str(&back, "data.path"), cfg_str(&c, "data.path"));
    ck_assert_ptr_nonnull(strstr(dump, "  path: \"a\\u0085b\\u2028c\\u0080d\\ufeffe\"\n"));
}
END_TEST

/* the cell: section: read with each text's place, dumped and read back the
 * same; its mistakes name file:line:col and the key */
START_TEST(test_cell_section)
{
    sg_config c, back;
    const char *yaml = "cell:\n"
                       "  name: mine\n"
                       "  states: [h, c]\n"
                       "  params:\n"
                       "    w: {shape: [4H, E], init: input}\n"
                       "    g: [H]\n"
                       "    k: {shape: \"2, H\", init: constant, value: 0.5}\n"
                       "  equations:\n"
                       "    - c' = c * tanh(x @ w^T)[0:H]\n"
                       "    - \"h' = g * c'\"\n"
                       "model: {kind: mine}\ndata: {kind: text}\n"
                       "compare: {cells: [mine, lstm], seeds: 2}\n";
    ck_assert_msg(load(yaml, &c) == 0, "%s", err);
    ck_assert(c.cell.present);
    ck_assert_str_eq(c.cell.name.text, "mine");
    ck_assert_int_eq(c.cell.n_states, 2);
    ck_assert_str_eq(c.cell.states[1].text, "c");
    ck_assert_int_eq(c.cell.n_params, 3);
    ck_assert_str_eq(c.cell.params[0].shape.text, "4H, E");
    ck_assert_int_eq(c.cell.params[0].shape.line, 5);
    ck_assert_int_eq(c.cell.params[0].shape.col, 17);
    ck_assert_str_eq(c.cell.params[0].init.text, "input");
    ck_assert_str_eq(c.cell.params[1].init.text, "uniform");
    ck_assert_double_eq(c.cell.params[2].value, 0.5);
    ck_assert_int_eq(c.cell.n_equations, 2);
    ck_assert_int_eq(c.cell.equations[0].line, 9);
    ck_assert_int_eq(c.cell.equations[0].col, 7);
    ck_assert_int_eq(c.cell.equations[1].col, 8);       /* after the quote */
    ck_assert_str_eq(cfg_str(&c, "compare.cells"), "mine,lstm");
    char dump[16384];
    size_t len = cfg_dump(&c, dump, sizeof dump);
    ck_assert_ptr_nonnull(strstr(dump, "  cells: [mine,lstm]\n"));
    ck_assert_msg(cfg_load_text(&back, "dump", dump, len, err, sizeof err) == 0, "%s\n%s", err, dump);
    ck_assert_str_eq(back.cell.equations[0].text, c.cell.equations[0].text);
    ck_assert_str_eq(back.cell.params[2].shape.text, "2, H");
    ck_assert_str_eq(back.cell.params[1].init.text, "uniform");
    ck_assert_double_eq(back.cell.params[2].value, 0.5);
    ck_assert_str_eq(cfg_str(&back, "compare.cells"), "mine,lstm");
    fails("cell:\n  name: a\n  colour: red\n", "3:3: cell.colour: unknown key (name, states, params, equations)");
    fails("cell:\n  name: a\n  states: h\n", "3:11: cell.states: expected a list");
    fails("cell:\n  name: a\n  params: {w: {shape: [H], size: 3}}\n", "3:28: cell.params.w: unknown key (shape, init, value)");
    fails("cell:\n  name: a\n  params: {w: {init: ones}}\n", "3:26: cell.params.w: no shape");
    fails("cell:\n  name: a\n  params:\n    w:\n", "4:7: cell.params.w: expected a shape: [4H, E]");   /* found by fuzz_config */
    fails("cell:\n  name: a\n  params: {w: {shape: [H], value: x}}\n", "3:35: cell.params.w: value: expected a number");
    fails("cell:\n  name: a\n  states: [h]\n", "2:3: cell: equations: missing");
    fails("cell:\n  states: [h]\n  equations: [\"h' = h\"]\n", "2:3: cell: name: missing");
    fails("cell:\n  name: a\n  equations: [\"h' = h\"]\n  equations: [\"h' = h\"]\n",
          "4:3: cell.equations: given twice");                  /* found by fuzz_config */
    ck_assert_int_eq(load("cell: {name: a, states: [h], equations: [\"h' = tanh(h)\"]}\nmodel: {kind: a}\n"
                          "data: {kind: text}\n", &c), 0);
    len = cfg_dump(&c, dump, sizeof dump);                    /* no params: "params: {}" reads back */
    ck_assert_msg(cfg_load_text(&back, "dump", dump, len, err, sizeof err) == 0, "%s\n%s", err, dump);
    fails("compare: {cells: [a-b]}\n", "1:18: compare.cells: expected names (letters, digits, _), got \"a-b\"");
    fails("model: {kind: [a]}\n", "1:15: model.kind: expected a value, got a list");
    fails("compare: {cells: [a, '', b]}\n", "1:18: compare.cells: expected names (letters, digits, _), got \"a,,b\"");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli/config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, test_values_and_defaults);
    tcase_add_test(tc, test_errors_name_file_line_col_and_key);
    tcase_add_test(tc, test_missing_and_set_errors);
    tcase_add_test(tc, test_docs_list_every_key);
    tcase_add_test(tc, test_dump_round_trip_and_duplicates);
    tcase_add_test(tc, test_cell_section);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
