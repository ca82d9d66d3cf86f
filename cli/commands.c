/*
 * commands.c - the seqgrad tool's command line: a table of commands (name,
 * handler, help), one checked number parser for every option, and one
 * place that prints errors. seqgrad_main() is all of it, so a program of
 * your own can register cells (sg_cell_register) and then hand over to it
 * (examples/custom_tool.c).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "course.h"
#include "figure.h"
#include <seqgrad/tool.h>
#include "compare.h"
#include "dist.h"
#include "horizon.h"
#include "interchange.h"
#include "train.h"

static const char *usage =
    "usage: seqgrad COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  train CONFIG.yaml [--set key.path=value ...] [--overwrite]\n"
    "                                                 train the model the config describes\n"
    "  resume RUN_DIR                                 continue a run from its last checkpoint\n"
    "  sample CHECKPOINT [--prompt TEXT] [--length N] [--temperature T] [--seed S]\n"
    "                                                 draw text from a language model\n"
    "  translate CHECKPOINT [--input TEXT] [--beam K] [--attention FILE.svg]\n"
    "                                                 decode sources with a seq2seq model\n"
    "  eval CHECKPOINT [FILE]                         loss, perplexity or accuracy\n"
    "  gradcheck CONFIG.yaml                          check the model's gradients (tiny, f64)\n"
    "  compare RUN_DIR... [--out DIR]                 the runs' curves side by side, a table, an HTML page\n"
    "  predict CHECKPOINT [FILE]                      a classifier's class for each line\n"
    "  horizon CONFIG.yaml [--lengths ..] [--cells ..] each cell's accuracy against sequence length\n"
    "  export RUN_DIR --to pytorch|onnx OUT           the model in torch.nn or ONNX, checked on the run's data\n"
    "  import WEIGHTS.safetensors --config C.yaml RUN_DIR  weights of a state_dict as a run folder\n"
    "  config-keys                                    every config key, as docs/config.md lists it\n"
    "  course list | course check EXERCISE FILE.c     grade a hand-written forward and backward pass\n"
    "  figure gradients|gates [OPTIONS]               the lecture's pictures, as SVG\n"
    "\n"
    "seqgrad COMMAND --help describes one command. Config keys: docs/config.md.\n"
    "\n"
    "exit codes: 0 done, 1 failed, 2 usage, 3 bad config, 4 bad data or checkpoint,\n"
    "            130, 143, 129: stopped by Ctrl-C, SIGTERM or SIGHUP (a checkpoint was written first)\n";

static const char *help_train =
    "usage: seqgrad train CONFIG.yaml [--set key.path=value ...] [--overwrite]\n"
    "Trains the model of CONFIG.yaml. The run folder (train.run_dir) gets config.yaml\n"
    "(every key, defaults included), checkpoint.safetensors, metrics.csv, loss.svg,\n"
    "and grad_norms.svg (recurrent models of text or the adding problem) or\n"
    "attention.svg (seq2seq). Data kinds, models and keys: docs/config.md.\n"
    "--set overrides a key after the file is read, e.g. --set model.hidden=256.\n"
    "A run folder that holds a run is refused (seqgrad resume continues it);\n"
    "--overwrite starts it again.\n"
    "Ctrl-C, SIGTERM and SIGHUP stop after the current step and write a checkpoint.\n";

static const char *help_resume =
    "usage: seqgrad resume RUN_DIR\n"
    "Continues the run in RUN_DIR from checkpoint.safetensors and the config it holds,\n"
    "dropping the rows of metrics.csv written after it.\n"
    "The parameters reached are the same, bit for bit, as a run never stopped\n"
    "(same machine and thread count).\n";

static const char *help_sample =
    "usage: seqgrad sample CHECKPOINT [--prompt TEXT] [--length N] [--temperature T] [--seed S]\n"
    "                      [--condition CLASS | --image N]\n"
    "Reads the model of CHECKPOINT (the checkpoint holds the run's config),\n"
    "feeds the prompt (default \"\\n\"), then draws N characters (default 300) from\n"
    "softmax(logits / T) (default 0.8) with seed S (default 1). A model of words\n"
    "or lines starts afresh at each newline: it draws whole items, one per line.\n"
    "A model that generates from a vector (data.kind wordgen) starts each item\n"
    "from --condition, one of its classes (a language); a captioning model (data.kind\n"
    "caption) from --image N, a test image of Fashion-MNIST.\n";

static const char *help_translate =
    "usage: seqgrad translate CHECKPOINT [--input TEXT] [--beam K] [--length-penalty A]\n"
    "                         [--max-len N] [--attention FILE.svg]\n"
    "Decodes each line of standard input (or TEXT) with the seq2seq model of\n"
    "CHECKPOINT and prints one output line per source: greedy (K = 1, default) or\n"
    "beam search of width K, scores divided by length^A (default 0.6).\n"
    "--attention writes the first source's attention heatmap (source along the top,\n"
    "output down the side) as SVG (RNN seq2seq models).\n";

static const char *help_eval =
    "usage: seqgrad eval CHECKPOINT [FILE]\n"
    "Evaluates the model of CHECKPOINT on FILE (text, words, lines or pairs, as the\n"
    "run was trained on) or, without FILE, on the run's validation split:\n"
    "language models: loss (nats/char) and perplexity; seq2seq: loss and greedy\n"
    "exact-match accuracy; the adding problem: mean squared error and accuracy\n"
    "(|error| < 0.04).\n";

static const char *help_course =
    "usage: seqgrad course list\n"
    "       seqgrad course check EXERCISE FILE.c\n"
    "       seqgrad course prototypes EXERCISE\n"
    "Compiles FILE.c (your solution of EXERCISE, started from docs/course/EXERCISE.c)\n"
    "with the system's C compiler ($CC, default cc), runs its functions on fixed\n"
    "inputs in f64 and compares every output, every gradient and every time step\n"
    "with the tape. Each compared quantity is a point; the last line is\n"
    "\"score: P/N\". Exit 0 when all pass, 1 when some fail, 4 when FILE does not\n"
    "compile. The exercises and their formulas: docs/course/README.md.\n";

static int course_command(int argc, char **argv, char *err, size_t n)
{
    if (argc == 3 && !strcmp(argv[2], "list"))
        return course_list(stdout), EXIT_OK;
    if (argc == 4 && !strcmp(argv[2], "prototypes") && course_prototypes(argv[3]))
        return fputs(course_prototypes(argv[3]), stdout), EXIT_OK;
    if (argc == 5 && !strcmp(argv[2], "check"))
        return course_check(argv[3], argv[4], stdout, err, n);
    if (argc == 4 && !strcmp(argv[2], "prototypes"))
        return cli_fail(err, n, EXIT_USAGE, "course: no exercise %s (seqgrad course list)", argv[3]);
    return EXIT_USAGE;
}

static const char *help_figure =
    "usage: seqgrad figure gradients [--out FILE.svg] [--steps T] [--hidden H] [--batch B]\n"
    "                                [--seed S] [--gains SMALL,LARGE] [--forget-bias F]\n"
    "       seqgrad figure gates CHECKPOINT [--out FILE.svg] [--text TEXT]\n"
    "gradients: the norm of dL/dh_k against t - k for a loss at the last step t\n"
    "(default T = 100, H = 32, B = 16, seed 1), for a tanh RNN whose recurrent\n"
    "weight is a random orthogonal matrix times each gain (default 0.5 and 3:\n"
    "vanishing and exploding), an LSTM as PyTorch initialises it, an LSTM whose\n"
    "forget gate's bias is F (default 3), and a GRU; one log axis (default\n"
    "gradients.svg), and a table.\n"
    "gates: the share of saturated units (below 0.1 or above 0.9) of each sigmoid\n"
    "gate at each character of TEXT, in the first layer of the LSTM or GRU\n"
    "language model of CHECKPOINT (default gates.svg), and a table.\n";

static int figure_command(int argc, char **argv, char *err, size_t n)
{
    bool gates = argc >= 4 && !strcmp(argv[2], "gates");
    if (argc < 3 || (!gates && strcmp(argv[2], "gradients")))
        return EXIT_USAGE;
    figure_opts o = {.out = gates ? "gates.svg" : "gradients.svg", .steps = 100, .hidden = 32, .batch = 16,
                     .seed = 1, .gain_small = 0.5, .gain_large = 3, .forget_bias = 3,
                     .text = "In the beginning God created the heaven and the earth. And the earth was without "
                             "form, and void; and darkness was upon the face of the deep."};
    for (int i = gates ? 4 : 3; i < argc; i += 2) {
        const char *opt = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long x = 0;
        bool ok = true;
        if (!v)
            return cli_fail(err, n, EXIT_USAGE, "%s needs a value", opt);
        if (!strcmp(opt, "--out"))
            o.out = v;
        else if (gates && !strcmp(opt, "--text"))
            o.text = v;
        else if (!gates && !strcmp(opt, "--steps"))
            ok = cli_parse_long(opt, v, 2, 10000, &x, err, n), o.steps = (int)x;
        else if (!gates && !strcmp(opt, "--hidden"))
            ok = cli_parse_long(opt, v, 1, 4096, &x, err, n), o.hidden = (int)x;
        else if (!gates && !strcmp(opt, "--batch"))
            ok = cli_parse_long(opt, v, 1, 4096, &x, err, n), o.batch = (int)x;
        else if (!gates && !strcmp(opt, "--seed"))
            ok = cli_parse_long(opt, v, 0, 2147483647, &x, err, n), o.seed = (unsigned long)x;
        else if (!gates && !strcmp(opt, "--forget-bias"))
            ok = cli_parse_double(opt, v, -100, 100, &o.forget_bias, err, n);
        else if (!gates && !strcmp(opt, "--gains")) {
            char a[64] = "", *comma;
            snprintf(a, sizeof a, "%s", v);
            if (!(comma = strchr(a, ',')))
                return cli_fail(err, n, EXIT_USAGE, "--gains: expected SMALL,LARGE, got \"%s\"", v);
            *comma = '\0';
            ok = cli_parse_double(opt, a, 1e-3, 100, &o.gain_small, err, n) &&
                 cli_parse_double(opt, comma + 1, 1e-3, 100, &o.gain_large, err, n);
        } else
            return cli_fail(err, n, EXIT_USAGE, "figure %s: unknown option %s", argv[2], opt);
        if (!ok)
            return EXIT_USAGE;
    }
    return gates ? figure_gates(argv[3], &o, stdout, err, n) : figure_gradients(&o, stdout, err, n);
}

static const char *help_gradcheck =
    "usage: seqgrad gradcheck CONFIG.yaml\n"
    "Builds the configured model at a tiny size in f64 and checks the gradient of every\n"
    "parameter against finite differences; exit 1 if any fails.\n";

static const char *help_predict =
    "usage: seqgrad predict CHECKPOINT [FILE]\n"
    "A classifier's class for each line of FILE (or standard input), one per line:\n"
    "the text of a line (labelled data: the text after a TAB, if there is one), a word\n"
    "(wordlang), a string of symbols (parity, order). seqgrad eval gives the\n"
    "accuracy, per-class precision, recall and F1, and the confusion matrix.\n";

static const char *help_horizon =
    "usage: seqgrad horizon CONFIG.yaml [--lengths 25,50,100,200] [--cells rnn,lstm,gru]\n"
    "                       [--seeds N] [--threshold 0.9] [--out DIR]\n"
    "Trains each cell at each sequence length (data.seq_len) with each seed, with the\n"
    "config's budget (train.steps), on its long-range task (data.kind adding or order),\n"
    "and prints the final validation accuracy per cell and length with each cell's\n"
    "horizon: the longest length reached with mean accuracy >= the threshold at it\n"
    "and every shorter one. Writes DIR/horizon.csv and DIR/horizon.svg (DIR:\n"
    "train.run_dir/horizon); each run keeps its folder there. Cells: any registered\n"
    "ones and the config's cell: section.\n";

static const char *help_compare =
    "usage: seqgrad compare RUN_DIR... [--out DIR]\n"
    "Draws the runs' training and validation losses and their gradient norm per time\n"
    "step on shared axes in DIR/compare.svg, writes DIR/compare.html (the plots, the\n"
    "table and each run's config; it opens from disk) and prints a table: cell, seed,\n"
    "parameters, final and best validation loss, tokens/s. DIR: the folder holding the\n"
    "first run. A config with compare.cells trains the runs and compares them itself.\n";

static const char *help_config_keys =
    "usage: seqgrad config-keys\n"
    "Prints every config key with its type, default, range and meaning (docs/config.md).\n";

/* Each handler gets the arguments after the command's name (argv[0] is the
 * first of them) and returns an exit code; on an error it leaves the
 * message in err. EXIT_USAGE with no message prints the command's help. */

static int unknown_option(const char *cmd, const char *opt, char *err, size_t n)
{
    return cli_fail(err, n, EXIT_USAGE, "%s: unknown option %s (seqgrad %s --help)", cmd, opt, cmd);
}

static int cmd_train(int argc, char **argv, char *err, size_t n)
{
    train_opts o = {0};
    sg_config c;
    if (argc < 1)
        return EXIT_USAGE;
    if (cfg_load(&c, argv[0], err, n) != 0)
        return EXIT_CONFIG;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--overwrite"))
            o.overwrite = true;
        else if (!strcmp(argv[i], "--set") && i + 1 < argc) {
            if (cfg_set(&c, argv[++i], err, n) != 0)
                return EXIT_CONFIG;
        } else
            return unknown_option("train", argv[i], err, n);
    }
    if (cfg_check(&c, err, n) != 0)
        return EXIT_CONFIG;
    if (cfg_str(&c, "compare.cells")[0])
        return train_compare(&c, &o, err, n);
    int rc = dist_start(err, n);              /* under mpirun: one rank of a data-parallel run */
    if (rc == EXIT_OK)
        rc = train_run(&c, &o, err, n);
    dist_stop();
    return rc;
}

static int cmd_predict(int argc, char **argv, char *err, size_t n)
{
    if (argc != 1 && argc != 2)
        return EXIT_USAGE;
    FILE *in = argc == 2 ? fopen(argv[1], "r") : stdin;
    if (!in)
        return cli_fail(err, n, EXIT_DATA, "%s: cannot open: %s", argv[1], strerror(errno));
    int rc = train_predict(argv[0], in, stdout, err, n);
    if (argc == 2)
        fclose(in);
    return rc;
}

static int cmd_compare(int argc, char **argv, char *err, size_t n)
{
    const char *out = NULL;
    int k = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out = argv[++i];
        else if (argv[i][0] == '-' && argv[i][1])
            return unknown_option("compare", argv[i], err, n);
        else
            argv[k++] = argv[i];
    }
    if (k == 0)
        return EXIT_USAGE;
    char parent[600];      /* by default, the folder that holds the first run */
    snprintf(parent, sizeof parent, "%s", argv[0]);
    for (size_t l = strlen(parent); l > 1 && parent[l - 1] == '/'; l--)
        parent[l - 1] = '\0';
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent)
        *slash = '\0';
    else
        snprintf(parent, sizeof parent, "%s", slash ? "/" : ".");
    return compare_runs((const char *const *)argv, k, out ? out : parent, stdout, err, n);
}

static int cmd_resume(int argc, char **argv, char *err, size_t n)
{
    train_opts o = {0};
    if (argc != 1)
        return EXIT_USAGE;
    int rc = dist_start(err, n);
    if (rc == EXIT_OK)
        rc = train_resume(argv[0], &o, err, n);
    dist_stop();
    return rc;
}

static int cmd_sample(int argc, char **argv, char *err, size_t n)
{
    const char *prompt = "\n", *condition = NULL;
    long length = 300, seed = 1;
    double temperature = 0.8;
    if (argc < 1)
        return EXIT_USAGE;
    for (int i = 1; i < argc; i += 2) {
        const char *opt = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (!v)
            return cli_fail(err, n, EXIT_USAGE, "%s needs a value", opt);
        if (!strcmp(opt, "--prompt"))
            prompt = v;
        else if (!strcmp(opt, "--condition") || !strcmp(opt, "--image"))
            condition = v;
        else if (!strcmp(opt, "--length"))
            ok = cli_parse_long(opt, v, 0, 10000000, &length, err, n);
        else if (!strcmp(opt, "--temperature"))
            ok = cli_parse_double(opt, v, 1e-6, 1e6, &temperature, err, n);
        else if (!strcmp(opt, "--seed"))
            ok = cli_parse_long(opt, v, 0, LONG_MAX, &seed, err, n);
        else
            return unknown_option("sample", opt, err, n);
        if (!ok)
            return EXIT_USAGE;
    }
    return train_sample(argv[0], prompt, condition, (int)length, temperature, (unsigned long)seed, stdout, err, n);
}

static int cmd_translate(int argc, char **argv, char *err, size_t n)
{
    translate_opts to = {.beam = 1, .length_penalty = 0.6};
    if (argc < 1)
        return EXIT_USAGE;
    for (int i = 1; i < argc; i += 2) {
        const char *opt = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long x = 0;
        bool ok = true;
        if (!v)
            return cli_fail(err, n, EXIT_USAGE, "%s needs a value", opt);
        if (!strcmp(opt, "--input"))
            to.input = v;
        else if (!strcmp(opt, "--beam"))
            ok = cli_parse_long(opt, v, 1, 64, &x, err, n), to.beam = (int)x;
        else if (!strcmp(opt, "--length-penalty"))
            ok = cli_parse_double(opt, v, 0, 100, &to.length_penalty, err, n);
        else if (!strcmp(opt, "--max-len"))
            ok = cli_parse_long(opt, v, 0, 4096, &x, err, n), to.max_len = (int)x;
        else if (!strcmp(opt, "--attention"))
            to.attention_svg = v;
        else
            return unknown_option("translate", opt, err, n);
        if (!ok)
            return EXIT_USAGE;
    }
    return train_translate(argv[0], &to, stdin, stdout, err, n);
}

static int cmd_eval(int argc, char **argv, char *err, size_t n)
{
    return argc == 1 || argc == 2 ? train_eval(argv[0], argc == 2 ? argv[1] : NULL, stdout, err, n) : EXIT_USAGE;
}

static int cmd_gradcheck(int argc, char **argv, char *err, size_t n)
{
    sg_config c;
    if (argc != 1)
        return EXIT_USAGE;
    if (cfg_load(&c, argv[0], err, n) != 0 || cfg_check(&c, err, n) != 0)
        return EXIT_CONFIG;
    return train_gradcheck(&c, stdout, err, n);
}

static int cmd_config_keys(int argc, char **argv, char *err, size_t n)
{
    static char doc[16384];
    (void)argv, (void)err, (void)n;
    if (argc != 0)
        return EXIT_USAGE;
    cfg_doc(doc, sizeof doc);
    fputs(doc, stdout);
    return EXIT_OK;
}

static const char *help_export =
    "usage: seqgrad export RUN_DIR --to pytorch|onnx OUT\n"
    "Rebuilds the model of RUN_DIR in PyTorch (torch.nn modules: OUT/weights.pt,\n"
    "OUT/weights.safetensors, OUT/seqgrad_torch.py, OUT/config.yaml) or as an ONNX\n"
    "graph (OUT/model.onnx), with /usr/bin/python3 and python3-torch or python3-onnx;\n"
    "then checks that it gives seqgrad's outputs on a validation batch of the run's\n"
    "own data (OUT/reference.safetensors) and prints the largest difference.\n"
    "docs/interchange.md lists the model kinds.\n";

static const char *help_import =
    "usage: seqgrad import WEIGHTS.safetensors --config CONFIG.yaml RUN_DIR\n"
    "Builds the run CONFIG.yaml describes (its data gives the vocabulary and the\n"
    "classes), loads every parameter from WEIGHTS (a state_dict saved as safetensors,\n"
    "names as seqgrad_torch.py's modules give them; every one present, no other), and\n"
    "writes RUN_DIR/checkpoint.safetensors at step 0 and RUN_DIR/config.yaml:\n"
    "seqgrad eval, sample, translate and resume accept it.\n";

/* the subcommands take argv from the command's name on */
static int cmd_course(int argc, char **argv, char *err, size_t n) { return course_command(argc + 2, argv - 2, err, n); }
static int cmd_figure(int argc, char **argv, char *err, size_t n) { return figure_command(argc + 2, argv - 2, err, n); }

static const struct {
    const char *name;
    int (*run)(int argc, char **argv, char *err, size_t n);
    const char *const *help;
} commands[] = {
    {"train", cmd_train, &help_train},
    {"resume", cmd_resume, &help_resume},
    {"sample", cmd_sample, &help_sample},
    {"translate", cmd_translate, &help_translate},
    {"eval", cmd_eval, &help_eval},
    {"gradcheck", cmd_gradcheck, &help_gradcheck},
    {"compare", cmd_compare, &help_compare},
    {"predict", cmd_predict, &help_predict},
    {"horizon", horizon_command, &help_horizon},
    {"export", export_command, &help_export},
    {"import", import_command, &help_import},
    {"config-keys", cmd_config_keys, &help_config_keys},
    {"course", cmd_course, &help_course},
    {"figure", cmd_figure, &help_figure},
};

static bool wants_help(int argc, char **argv)
{
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return true;
    return false;
}

/* this process's rank when mpirun started it, else 0 */
static long rank_of_launch(void)
{
    const char *v = getenv("OMPI_COMM_WORLD_RANK");
    return v ? strtol(v, NULL, 10) : 0;
}

int seqgrad_main(int argc, char **argv)
{
    char err[1024] = "";
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++) {
        if (strcmp(argv[1], commands[k].name))
            continue;
        if (wants_help(argc, argv))
            return fputs(*commands[k].help, stdout), EXIT_OK;
        int rc = commands[k].run(argc - 2, argv + 2, err, sizeof err);
        if (rc == EXIT_USAGE && !err[0])
            fputs(*commands[k].help, stderr);
        else if (rc != EXIT_OK && rc < 128 && rank_of_launch() > 0)   /* under mpirun: which rank says it */
            fprintf(stderr, "seqgrad (rank %ld): %s\n", rank_of_launch(), err);
        else if (rc != EXIT_OK && rc < 128)   /* 128 + a signal: stopped on request, with a checkpoint */
            fprintf(stderr, "seqgrad: %s\n", err);
        return rc;
    }
    fprintf(stderr, "seqgrad: unknown command %s\n%s", argv[1], usage);
    return EXIT_USAGE;
}
