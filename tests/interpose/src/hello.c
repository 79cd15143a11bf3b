/* hello.c — a small C program with deterministic output that allocates a little (malloc, realloc,
 * calloc, strdup, stdio): the subject of the valgrind, ASan, secure-mode and failure-case tests. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  unsigned long sum = 0;
  char **words = NULL;
  for (int i = 0; i < 2000; ++i) {
    words = realloc(words, (size_t)(i + 1) * sizeof *words);
    char buf[32];
    snprintf(buf, sizeof buf, "word%d", i * 7919 % 2000);
    words[i] = strdup(buf);
  }
  int *zeros = calloc(1000, sizeof *zeros);
  for (int i = 0; i < 1000; ++i) sum += (unsigned long)zeros[i];
  free(zeros);
  for (int i = 0; i < 2000; ++i) {
    sum += strlen(words[i]) * (unsigned long)(i + 1);
    free(words[i]);
  }
  free(words);
  printf("hello from %s: %d args, sum %lu\n", argc > 1 ? argv[1] : "hello", argc, sum);
  return 0;
}
