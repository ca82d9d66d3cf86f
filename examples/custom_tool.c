/*
 * custom_tool.c - the seqgrad tool with a cell of your own: register it
 * under a name, then hand over to seqgrad_main(). A config then says
 * `model: {kind: mgu}` (examples/configs/char_mgu.yaml):
 *
 *   build/examples/custom_tool train examples/configs/char_mgu.yaml
 *
 * The cell is the minimal gated unit of examples/mgu.h.
 */
#include <seqgrad/seqgrad.h>

#include <seqgrad/tool.h>
#include "mgu.h"

int main(int argc, char **argv)
{
    sg_cell_register("mgu", &mgu_cell);
    return seqgrad_main(argc, argv);
}
