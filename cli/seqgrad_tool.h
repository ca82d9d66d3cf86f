/*
 * seqgrad_tool.h - the seqgrad tool as a function: a program that registers
 * its own cells with sg_cell_register() calls seqgrad_main(argc, argv), and
 * its configs can name those cells in model.kind.
 */
#ifndef SEQGRAD_TOOL_H
#define SEQGRAD_TOOL_H

/* Runs one command as `seqgrad` would; returns its exit code. */
int seqgrad_main(int argc, char **argv);

#endif
