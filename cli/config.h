/*
 * config.h - experiment configs: a YAML file of nested mappings whose
 * leaves are the keys of one schema (config.c's table, also listed in
 * docs/config.md). Every key has a type, a default and a range; unknown
 * keys, wrong types, values out of range and missing required keys are
 * errors that name file:line:column and the key path, and nothing starts.
 * `--set key.path=value` overrides a key after the file is read.
 */
#ifndef SEQGRAD_CLI_CONFIG_H
#define SEQGRAD_CLI_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

/* Exit codes of the tool, documented in `seqgrad --help`. */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_CONFIG = 3, EXIT_DATA = 4, EXIT_INTERRUPTED = 130 };

/* The one way the tool fails: the message into err (n bytes), and code
 * back, so a failure reads `return cli_fail(err, n, EXIT_DATA, "%s: ...", path);`.
 * A function that answers true/false passes false as the code. */
int cli_fail(char *err, size_t n, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* mkdir -p dir: 0, or -1 with errno. */
int cli_make_dirs(const char *dir);

/* The one checked number parser for options: the whole of text is a number
 * in [lo, hi] (a whole one for cli_parse_long), else false with
 * "OPT: expected ..." in err. */
bool cli_parse_long(const char *opt, const char *text, long lo, long hi, long *v, char *err, size_t n);
bool cli_parse_double(const char *opt, const char *text, double lo, double hi, double *v, char *err, size_t n);

typedef enum { CFG_INT, CFG_REAL, CFG_STR, CFG_BOOL, CFG_LIST } cfg_type;   /* LIST: names, kept as "a,b,c" */

typedef struct {
    const char *key;        /* "model.hidden" */
    cfg_type type;
    const char *def;        /* default as text; NULL = required */
    double lo, hi;          /* range of INT and REAL */
    const char *const *choices;   /* STR: the names allowed (NULL-ended; an enum's table), or NULL: any */
    const char *doc;
} cfg_key;

extern const cfg_key cfg_schema[];
extern const int cfg_schema_len;

typedef struct {
    char value[512];
    int line, col;          /* where it was set; 0 if default or --set */
    bool from_file;
} cfg_value;

/* A text of the config's cell: section and where it was written. */
typedef struct {
    char text[256];
    int line, col;
} cfg_text;

/* The cell: section, a cell defined by equations (docs/cells.md):
 *   cell:
 *     name: peephole
 *     states: [h, c]
 *     params:
 *       weight_ih: {shape: [4H, E], init: input}
 *       peephole: [3, H]
 *     equations:
 *       - z = x @ weight_ih^T + ...                                       */
typedef struct {
    cfg_text name, shape, init;     /* init: a name of sg_param_init, "uniform" unless given */
    double value;                   /* init: constant */
} cfg_param;

typedef struct {
    bool present;
    int line, col;                  /* of the section */
    cfg_text name;
    int n_states, n_params, n_equations;
    cfg_text states[4];
    cfg_param params[16];
    cfg_text equations[48];
} cfg_cell;

typedef struct {
    char file[512];
    cfg_value v[64];
    cfg_cell cell;
} sg_config;

/* Defaults everywhere, then the file's values. Returns 0, or -1 with
 * "file:line:col: key.path: problem" in err. */
int cfg_load(sg_config *c, const char *file, char *err, size_t n);
/* The same from text in memory (len bytes); name stands for the file in
 * messages ("CHECKPOINT[config]"). */
int cfg_load_text(sg_config *c, const char *name, const char *text, size_t len, char *err, size_t n);
/* "key.path=value"; -1 with "--set key.path: problem" in err. */
int cfg_set(sg_config *c, const char *assign, char *err, size_t n);
/* After loads and sets: every required key present. */
int cfg_check(const sg_config *c, char *err, size_t n);

/* Where key was set: "file:line:col", "--set", or the file (a default). */
void cfg_where(const sg_config *c, const char *key, char *out, size_t n);

/* Whether key was given (in the file or by --set) rather than defaulted. */
bool cfg_is_set(const sg_config *c, const char *key);

long cfg_int(const sg_config *c, const char *key);
double cfg_real(const sg_config *c, const char *key);
const char *cfg_str(const sg_config *c, const char *key);
bool cfg_bool(const sg_config *c, const char *key);

/* The effective config as YAML (every key), for the run folder and
 * checkpoints; strings are double-quoted with \ and " escaped, so the dump
 * loads back to the same values. Returns the bytes written (truncated to
 * n, which the caller must detect: a full buffer is a truncated dump). */
size_t cfg_dump(const sg_config *c, char *out, size_t n);

/* docs/config.md's table of every key: type, default, range, meaning. */
size_t cfg_doc(char *out, size_t n);

#endif
