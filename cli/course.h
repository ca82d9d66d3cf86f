/*
 * course.h - the course pack's checker (cli/course.c): `seqgrad course list`
 * and `seqgrad course check EXERCISE FILE.c`. The exercises and their
 * starter files are in docs/course/.
 */
#ifndef SEQGRAD_CLI_COURSE_H
#define SEQGRAD_CLI_COURSE_H

#include <stdio.h>

/* One line per exercise: name and title. */
void course_list(FILE *out);
/* The C prototypes a solution of exercise `name` defines, or NULL. */
const char *course_prototypes(const char *name);
/* Compiles FILE with the system's C compiler ($CC, default cc), runs its
 * functions on fixed inputs in f64 and compares each output, gradient and
 * time step with the tape, printing the report and "score: P/N" to out.
 * Returns EXIT_OK when every check passes, EXIT_FAIL when some fail or the
 * code crashed, EXIT_DATA when FILE cannot be read or compiled, EXIT_USAGE
 * for an unknown exercise; err says why. */
int course_check(const char *name, const char *file, FILE *out, char *err, size_t n);

#endif
