/*
 * main.c - the seqgrad program: everything is in seqgrad_main().
 */
#include <seqgrad/tool.h>

int main(int argc, char **argv) { return seqgrad_main(argc, argv); }
