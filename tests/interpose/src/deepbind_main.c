/* deepbind_main.c — a program that loads a plugin with dlopen(..., RTLD_DEEPBIND) and passes
 * blocks both ways (issue 15 point 2): the plugin frees and reallocs the program's blocks, the
 * program frees the plugin's. Under the shim every one of them must be a block of the heap. The
 * plugin is named as $ORIGIN/...: glibc expands $ORIGIN to the directory of dlopen's caller, so
 * the shim's dlopen must leave the caller as it was (this program, not libpersist.so).
 * Usage: deepbind_main '$ORIGIN/plugins/PLUGIN.so'. Exit status 0 when every check holds. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc != 2) return 64;
  CHECK(dlopen("libno-such-plugin-persist.so", RTLD_NOW | RTLD_DEEPBIND) == NULL, "a missing library opened");
  CHECK(dlerror() != NULL, "no dlerror() after a failed dlopen");
  CHECK(dlopen(NULL, RTLD_NOW) != NULL, "dlopen(NULL) failed: %s", dlerror());
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  if (!lib) return printf("dlopen(%s): %s\n", argv[1], dlerror()), 1;
  char *(*plugin_strdup)(const char *) = (char *(*)(const char *))dlsym(lib, "plugin_strdup");
  void (*plugin_free)(void *) = (void (*)(void *))dlsym(lib, "plugin_free");
  void *(*plugin_realloc)(void *, size_t) = (void *(*)(void *, size_t))dlsym(lib, "plugin_realloc");
  if (!plugin_strdup || !plugin_free || !plugin_realloc) return printf("dlsym: %s\n", dlerror()), 1;
  void *(*default_heap)(void) = (void *(*)(void))dlsym(RTLD_DEFAULT, "persist_default_heap");
  int (*contains)(const void *, const void *) =
      (int (*)(const void *, const void *))dlsym(RTLD_DEFAULT, "persist_contains");
  void *heap = default_heap ? default_heap() : NULL;
  int outside = 0;
  char text[64];
  for (int round = 0; round < 2000; ++round) {
    size_t n = (size_t)(round * 53 % 4000) + 1;
    char *mine = malloc(n);  /* the program's block, freed by the plugin */
    CHECK(mine != NULL, "malloc(%zu)", n);
    memset(mine, 'a' + round % 26, n);
    plugin_free(mine);
    snprintf(text, sizeof text, "round %d", round);
    char *theirs = plugin_strdup(text);  /* the plugin's block, freed by the program */
    CHECK(theirs && strcmp(theirs, text) == 0, "plugin_strdup");
    if (heap && !contains(heap, theirs)) ++outside;
    free(theirs);
    char *grown = malloc(16);  /* reallocated by the plugin, freed by the program */
    memcpy(grown, "0123456789abcde", 16);
    grown = plugin_realloc(grown, n + 16);
    CHECK(grown && memcmp(grown, "0123456789abcde", 16) == 0, "plugin_realloc lost the contents");
    if (heap && !contains(heap, grown)) ++outside;
    free(grown);
  }
  printf("deepbind: 2000 rounds; %s; %d failures\n",
         !heap ? "no libpersist" : outside ? "plugin blocks outside the heap" : "plugin blocks in the heap",
         failures);
  if (heap && outside) printf("%d of the plugin's blocks came from another allocator\n", outside);
  dlclose(lib);
  return failures || (heap && outside) ? 1 : 0;
}
