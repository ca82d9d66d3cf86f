/*
 * fuzz_config.c - libFuzzer target: the config loader on any bytes, and its
 * dump-and-reload round trip. Whatever loads must dump to YAML that loads
 * back to the same values (a string holding " or \ once broke resume). A
 * cell: section must compile or be refused with a message, and a cell that
 * compiles is built and stepped forward and backward at small sizes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <seqgrad/seqgrad.h>

#include "../cli/config.h"
#include "../cli/run.h"

/* a compiled cell: refused at init with a message, or one step and its backward */
static void exercise(const sg_cell_def *def)
{
    sg_params *ps = sg_params_new();
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    sg_cell c;
    if (sg_cell_init(&c, def, ps, "", "", 3, 4, NULL, SG_F64, &rng) == SG_OK) {
        sg_tape *t = sg_tape_new();
        sg_tensor *s[SG_CELL_MAX_STATES], *next[SG_CELL_MAX_STATES] = {NULL};
        for (int k = 0; k < SG_CELL_MAX_STATES; k++)
            s[k] = sg_full(t, SG_F64, 2, (int[]){2, 4}, 0.25);
        if (sg_cell_step(t, &c, sg_full(t, SG_F64, 2, (int[]){2, 3}, 0.5), s, next) == SG_OK)
            sg_backward(t, sg_sum_all(t, next[0]));
        sg_tape_free(t);
    } else if (!sg_params_errmsg(ps)[0]) {
        fprintf(stderr, "a cell was refused without a message\n");
        abort();
    }
    sg_params_free(ps);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sg_config a, b;
    static char err[1024], dump[16384];
    if (cfg_load_text(&a, "fuzz.yaml", (const char *)data, size, err, sizeof err) != 0 ||
        cfg_check(&a, err, sizeof err) != 0)     /* what the tool would go on with */
        return 0;
    size_t len = cfg_dump(&a, dump, sizeof dump);
    if (len >= sizeof dump - 1)                  /* a truncated dump is refused by the tool, never loaded */
        return 0;
    if (cfg_load_text(&b, "dump.yaml", dump, len, err, sizeof err) != 0) {
        fprintf(stderr, "the dump does not load back: %s\n%s", err, dump);
        abort();
    }
    for (int i = 0; i < cfg_schema_len; i++)
        if (strcmp(a.v[i].value, b.v[i].value) != 0) {
            fprintf(stderr, "%s: \"%s\" dumped and read back as \"%s\"\n", cfg_schema[i].key, a.v[i].value,
                    b.v[i].value);
            abort();
        }
    if (a.cell.present != b.cell.present || a.cell.n_equations != b.cell.n_equations ||
        a.cell.n_params != b.cell.n_params) {
        fprintf(stderr, "the cell: section did not survive the dump\n%s", dump);
        abort();
    }
    sg_cell_def *def = NULL;
    if (a.cell.present && run_compile_cell(&a, &def, err, sizeof err) == 0)
        exercise(def);
    else if (a.cell.present && !err[0]) {
        fprintf(stderr, "a cell was refused without a message\n");
        abort();
    }
    sg_cell_def_free(def);
    return 0;
}
