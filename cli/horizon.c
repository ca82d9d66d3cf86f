/*
 * horizon.c - `seqgrad horizon CONFIG --lengths 25,50,100 --cells rnn,lstm,gru
 * --seeds 3`: the lecture's "empirical feasible length" of each cell,
 * measured. Every cell is trained at every length with every seed, with
 * the config's fixed budget (train.steps), on a long-range task (the adding
 * problem or the temporal order problem, whose length is data.seq_len);
 * the final validation accuracy of each run goes into a table, a CSV and
 * an SVG of accuracy against length, one line per cell (the mean over
 * seeds). A cell's horizon is the longest length at which its mean accuracy
 * is at least --threshold (0.9) and at every shorter length too.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "horizon.h"
#include "plot.h"
#include "train.h"

enum { MAX_ITEMS = 16 };

/* "a,b,c" into items (at most MAX_ITEMS); their count, or -1 */
static int split_list(char *s, char **items)
{
    int k = 0;
    for (char *save = NULL, *p = strtok_r(s, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        if (k == MAX_ITEMS)
            return -1;
        items[k++] = p;
    }
    return k;
}

/* the last valid_accuracy of run_dir/metrics.csv, NAN if none */
static double final_accuracy(const char *run_dir)
{
    char path[800], line[512];
    snprintf(path, sizeof path, "%s/metrics.csv", run_dir);
    FILE *f = fopen(path, "r");
    double acc = NAN;
    while (f && fgets(line, sizeof line, f)) {
        char *p = strrchr(line, ',');
        if (p && p[1] != '\n' && p[1] != '\0' && line[0] >= '0' && line[0] <= '9')
            acc = strtod(p + 1, NULL);
    }
    if (f)
        fclose(f);
    return acc;
}

static int usage(char *err, size_t n, const char *what)
{
    snprintf(err, n, "horizon: %s", what);
    return EXIT_USAGE;
}

int horizon_command(int argc, char **argv, char *err, size_t n)
{
    char lengths_text[256] = "25,50,100,200", cells_text[256] = "rnn,lstm,gru", out_dir[512] = "";
    long seeds = 1;
    double threshold = 0.9;
    const char *config = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--lengths") && v)
            snprintf(lengths_text, sizeof lengths_text, "%s", v), i++;
        else if (!strcmp(a, "--cells") && v)
            snprintf(cells_text, sizeof cells_text, "%s", v), i++;
        else if (!strcmp(a, "--seeds") && v) {
            if (!cli_parse_long("--seeds", argv[++i], 1, 20, &seeds, err, n))
                return EXIT_USAGE;
        } else if (!strcmp(a, "--threshold") && v) {
            if (!cli_parse_double("--threshold", argv[++i], 0.01, 1, &threshold, err, n))
                return EXIT_USAGE;
        } else if (!strcmp(a, "--out") && v)
            snprintf(out_dir, sizeof out_dir, "%s", v), i++;
        else if (a[0] == '-')
            return cli_fail(err, n, EXIT_USAGE, "horizon: unknown option %s (seqgrad horizon --help)", a);
        else if (!config)
            config = a;
        else
            return usage(err, n, "one config only");
    }
    if (!config)
        return EXIT_USAGE;
    sg_config *base = malloc(sizeof *base), *one = malloc(sizeof *one);
    char *cells[MAX_ITEMS], *len_items[MAX_ITEMS];
    int n_cells = split_list(cells_text, cells), n_len = split_list(lengths_text, len_items), rc = EXIT_OK;
    long lengths[MAX_ITEMS];
    if (!base || !one)
        rc = cli_fail(err, n, EXIT_FAIL, "out of memory");
    else if (n_cells < 1 || n_len < 1)
        rc = usage(err, n, "--cells and --lengths take 1 to 16 comma-separated items");
    for (int k = 0; rc == EXIT_OK && k < n_len; k++)
        if (!cli_parse_long("--lengths", len_items[k], 4, 4096, &lengths[k], err, n))
            rc = EXIT_USAGE;
    if (rc == EXIT_OK && (cfg_load(base, config, err, n) != 0 || cfg_check(base, err, n) != 0))
        rc = EXIT_CONFIG;
    const char *kind = rc == EXIT_OK ? cfg_str(base, "data.kind") : "";
    if (rc == EXIT_OK && strcmp(kind, "adding") && strcmp(kind, "order")) {
        char where[600];
        cfg_where(base, "data.kind", where, sizeof where);
        rc = cli_fail(err, n, EXIT_CONFIG, "%s: data.kind: horizon measures a long-range task (adding or order), not %s",
                                   where, kind);
    }
    if (rc == EXIT_OK && !out_dir[0])
        snprintf(out_dir, sizeof out_dir, "%s/horizon", cfg_str(base, "train.run_dir"));
    double *acc = rc == EXIT_OK ? calloc((size_t)(n_cells * n_len * seeds), sizeof *acc) : NULL;
    if (rc == EXIT_OK && !acc)
        rc = cli_fail(err, n, EXIT_FAIL, "out of memory");
    long seed0 = rc == EXIT_OK ? cfg_int(base, "train.seed") : 0;
    train_opts quiet = {.quiet = true, .overwrite = true};
    for (int c = 0; rc == EXIT_OK && c < n_cells; c++)
        for (int l = 0; rc == EXIT_OK && l < n_len; l++)
            for (long s = 0; rc == EXIT_OK && s < seeds; s++) {
                char set[700], dir[700];
                *one = *base;
                snprintf(dir, sizeof dir, "%s/%s-T%ld-seed%ld", out_dir, cells[c], lengths[l], seed0 + s);
                const char *sets[4][2] = {{"model.kind", cells[c]}, {"data.seq_len", len_items[l]},
                                          {"train.run_dir", dir}, {"compare.cells", ""}};
                for (int k = 0; k < 4 && rc == EXIT_OK; k++) {
                    snprintf(set, sizeof set, "%s=%s", sets[k][0], sets[k][1]);
                    if (cfg_set(one, set, err, n) != 0)
                        rc = EXIT_CONFIG;
                }
                snprintf(set, sizeof set, "train.seed=%ld", seed0 + s);
                if (rc == EXIT_OK && cfg_set(one, set, err, n) != 0)
                    rc = EXIT_CONFIG;
                if (rc == EXIT_OK)
                    rc = train_run(one, &quiet, err, n);
                double a = final_accuracy(dir);
                acc[(c * n_len + l) * seeds + s] = a;
                if (rc == EXIT_OK)
                    printf("%-12s T=%-5ld seed %-3ld accuracy %.3f\n", cells[c], lengths[l], seed0 + s, a);
                fflush(stdout);
            }
    if (rc != EXIT_OK) {
        free(base), free(one), free(acc);
        return rc;
    }
    /* the table, the CSV and the SVG: mean (and range) over seeds */
    char path[700];
    snprintf(path, sizeof path, "%s/horizon.csv", out_dir);
    FILE *csv = fopen(path, "w");
    double *mean = calloc((size_t)(n_cells * n_len), sizeof *mean), *x = calloc((size_t)n_len, sizeof *x);
    printf("\nfinal validation accuracy, %s task, %ld steps each, mean of %ld seed%s (min-max):\n%-12s", kind,
           cfg_int(base, "train.steps"), seeds, seeds > 1 ? "s" : "", "cell");
    for (int l = 0; l < n_len; l++)
        printf(seeds > 1 ? "  %17s" : "  %13s", len_items[l]), x[l] = (double)lengths[l];
    printf("  horizon (>= %.2f)\n", threshold);
    if (csv)
        fprintf(csv, "cell,length,seed,accuracy\n");
    for (int c = 0; mean && x && c < n_cells; c++) {
        printf("%-12s", cells[c]);
        long horizon = 0;
        bool held = true;
        for (int l = 0; l < n_len; l++) {
            double sum = 0, lo = INFINITY, hi = -INFINITY;
            for (long s = 0; s < seeds; s++) {
                double a = acc[(c * n_len + l) * seeds + s];
                sum += a, lo = fmin(lo, a), hi = fmax(hi, a);
                if (csv)
                    fprintf(csv, "%s,%ld,%ld,%.6f\n", cells[c], lengths[l], seed0 + s, a);
            }
            mean[c * n_len + l] = sum / (double)seeds;
            held = held && mean[c * n_len + l] >= threshold;
            horizon = held ? lengths[l] : horizon;
            if (seeds > 1)
                printf("  %.3f (%.2f-%.2f)", mean[c * n_len + l], lo, hi);
            else
                printf("  %13.3f", mean[c * n_len + l]);
        }
        if (horizon)
            printf("  %ld\n", horizon);
        else
            printf("  below %s\n", len_items[0]);
    }
    if (csv && fclose(csv) != 0)
        rc = cli_fail(err, n, EXIT_FAIL, "cannot write %s", path);
    plot_series *ser = calloc((size_t)n_cells, sizeof *ser);
    for (int c = 0; ser && mean && x && c < n_cells; c++)
        ser[c] = (plot_series){.label = cells[c], .x = x, .y = mean + c * n_len, .n = n_len};
    char title[300];
    snprintf(title, sizeof title, "final validation accuracy against length, %s task, %ld steps, mean of %ld seed%s",
             kind, cfg_int(base, "train.steps"), seeds, seeds > 1 ? "s" : "");
    plot_axes ax = {title, "sequence length T", "accuracy", false, 0, 1};
    snprintf(path, sizeof path, "%s/horizon.svg", out_dir);
    if (rc == EXIT_OK && (!ser || plot_lines(path, ser, n_cells, &ax) != 0))
        rc = cli_fail(err, n, EXIT_FAIL, "cannot write %s", path);
    if (rc == EXIT_OK)
        printf("wrote %s/horizon.csv and %s/horizon.svg\n", out_dir, out_dir);
    free(ser), free(mean), free(x), free(acc), free(base), free(one);
    return rc;
}
