/*
 * seqgrad/tool.h - the seqgrad tool as a function: a program that registers
 * its own cells with sg_cell_register() calls seqgrad_main(argc, argv), and
 * its configs can name those cells in model.kind. Installed with the
 * library; `cc mytool.c $(pkg-config --cflags --libs seqgrad)` builds such a
 * program (examples/custom_tool.c).
 */
#ifndef SEQGRAD_TOOL_H
#define SEQGRAD_TOOL_H

/* Runs one command as `seqgrad` would; returns its exit code. */
int seqgrad_main(int argc, char **argv);

#endif
