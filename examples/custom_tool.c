/*
 * custom_tool.c - the seqgrad tool with a cell of your own: register it
 * (under its name, "mgu"), then hand over to seqgrad_main(). A config then says
 * `model: {kind: mgu}` (examples/configs/char_mgu.yaml):
 *
 *   build/examples/custom_tool train examples/configs/char_mgu.yaml
 *
 * The cell is the minimal gated unit of examples/mgu.h.
 */
#include <seqgrad/seqgrad.h>

#include <seqgrad/tool.h>
#include "mgu.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    char err[300];
    if (sg_cell_register(&mgu_cell, err, sizeof err) != SG_OK) {
        fprintf(stderr, "custom_tool: %s\n", err);
        return 1;
    }
    return seqgrad_main(argc, argv);
}
