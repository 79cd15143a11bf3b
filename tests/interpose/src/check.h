/* check.h — the CHECK macro of the C test programs here: a failed condition is counted in
 * `failures` and printed with its line and a printf-style explanation; the program exits with
 * failures != 0. */
#pragma once
#include <stdio.h>

static int failures;
#define CHECK(cond, ...)                               \
  do {                                                 \
    if (!(cond)) {                                     \
      ++failures;                                      \
      printf("FAILED line %d: %s: ", __LINE__, #cond); \
      printf(__VA_ARGS__);                             \
      putchar('\n');                                   \
    }                                                  \
  } while (0)
