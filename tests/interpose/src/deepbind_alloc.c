/* deepbind_alloc.c — a plugin the deepbind test loads with RTLD_DEEPBIND, as PHP loads its
 * extensions: it allocates blocks the program frees and frees blocks the program allocated. Deep
 * binding would bind its malloc/free to glibc's; under the shim they must be libpersist's. */
#include <stdlib.h>
#include <string.h>

char *plugin_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p) memcpy(p, s, n);
  return p;
}
void plugin_free(void *p) { free(p); }
void *plugin_realloc(void *p, size_t n) { return realloc(p, n); }
