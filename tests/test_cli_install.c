/*
 * test_cli_install.c - the installed tool and library, as a user would use
 * them: `meson install` into a temporary DESTDIR, then a tool of one's own
 * with a registered C cell (examples/custom_tool.c and its minimal gated
 * unit) built from the installed files with pkg-config alone, which
 * gradient-checks the installed example config on the installed data.
 * Skipped in a sanitized build (a plain cc cannot link its objects).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

static char dest[64], out[4096];

static int sh(const char *cmd)
{
    char full[4096];
    snprintf(full, sizeof full, "%s > %s/log.txt 2>&1", cmd, dest);
    int rc = system(full);
    char path[128];
    snprintf(path, sizeof path, "%s/log.txt", dest);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(out, 1, sizeof out - 1, f) : 0;
    out[n] = '\0';
    if (f)
        fclose(f);
    return rc;
}

START_TEST(test_installed_tool_with_a_cell_of_ones_own)
{
    strcpy(dest, "/tmp/seqgrad-install-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dest));
    char cmd[3000], pc[256], env[1024];
    snprintf(cmd, sizeof cmd, "meson install -C %s --destdir %s --no-rebuild --quiet", BUILD_DIR, dest);
    ck_assert_msg(sh(cmd) == 0, "meson install failed:\n%s", out);
    /* the .pc file, wherever libdir put it */
    snprintf(cmd, sizeof cmd, "dirname $(find %s -name seqgrad.pc | head -1)", dest);
    ck_assert_int_eq(sh(cmd), 0);
    snprintf(pc, sizeof pc, "%.*s", (int)strcspn(out, "\n"), out);
    snprintf(env, sizeof env, "PKG_CONFIG_PATH=%s PKG_CONFIG_SYSROOT_DIR=%s", pc, dest);
    /* only installed files: the example is copied away from the source tree */
    snprintf(cmd, sizeof cmd, "cp %s/examples/custom_tool.c %s/examples/mgu.h %s/ && cd %s && "
             "cc custom_tool.c $(%s pkg-config --cflags --libs seqgrad) -o mytool", SOURCE_DIR, SOURCE_DIR, dest, dest,
             env);
    ck_assert_msg(sh(cmd) == 0, "the tool did not build from the installed files:\n%s", out);
    /* LD_LIBRARY_PATH: the installed libdir is the .pc file's parent */
    char libdir[256];
    snprintf(libdir, sizeof libdir, "%s", pc);
    char *slash = strrchr(libdir, '/');
    if (slash)
        *slash = '\0';
    snprintf(cmd, sizeof cmd, "cd %s && LD_LIBRARY_PATH=%s SEQGRAD_DATA_DIR=$(dirname $(find %s -name genesis.txt)) "
             "./mytool gradcheck $(find %s -name char_mgu.yaml)", dest, libdir, dest, dest);
    ck_assert_msg(sh(cmd) == 0, "the installed tool's gradcheck failed:\n%s", out);
    ck_assert_msg(strstr(out, "gradient check of mgu on text data") && strstr(out, "all parameters pass\n"), "%s", out);
    /* it trains, its own parameters checkpointed under their declared names */
    snprintf(cmd, sizeof cmd, "cd %s && LD_LIBRARY_PATH=%s SEQGRAD_DATA_DIR=$(dirname $(find %s -name genesis.txt)) "
             "./mytool train $(find %s -name char_mgu.yaml) --set train.steps=3 --set model.hidden=16 "
             "--set train.run_dir=%s/mgu && grep -c rnn.weight_f_l1 %s/mgu/checkpoint.safetensors", dest, libdir, dest,
             dest, dest, dest);
    ck_assert_msg(sh(cmd) == 0, "the installed tool did not train its cell:\n%s", out);
    /* the gallery is installed too: a cell from equations, no C */
    snprintf(cmd, sizeof cmd, "cd %s && LD_LIBRARY_PATH=%s SEQGRAD_DATA_DIR=$(dirname $(find %s -name genesis.txt)) "
             "./mytool gradcheck $(find %s -path '*share/seqgrad/cells/peephole_lstm.yaml')", dest, libdir, dest, dest);
    ck_assert_msg(sh(cmd) == 0 && strstr(out, "gradient check of peephole_lstm on text data"), "%s", out);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dest);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(void)
{
#ifdef SANITIZED
    printf("skipped: a sanitized build's installed objects need the sanitizer runtime to link\n");
    return 77;
#endif
    if (system("command -v cc > /dev/null && command -v pkg-config > /dev/null") != 0) {
        printf("skipped: cc or pkg-config is missing\n");
        return 77;
    }
    Suite *s = suite_create("cli/install");
    TCase *tc = tcase_create("install");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_installed_tool_with_a_cell_of_ones_own);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
