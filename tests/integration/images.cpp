// images — pointers from the heap into the program image survive ASLR: a PIE executable stores an
// object with virtual functions, a function pointer and a string literal in the heap (reached
// from a root) in its first run; later runs, loaded at other addresses, call and read them.
// Prints the load address too, so the driver can tell that the image really moved, and whether
// a child it starts runs with address randomisation. `images kill`: dies of
// SIGKILL after its run (no clean close).
#include <signal.h>
#include <sys/personality.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "persist.h"

struct Shape {
  virtual ~Shape() = default;
  virtual long area() const = 0;
  virtual const char *name() const = 0;
};
struct Square : Shape {
  long side;
  explicit Square(long s) : side(s) {}
  long area() const override { return side * side; }
  const char *name() const override { return "square"; }
};
struct Circle : Shape {
  long r;
  explicit Circle(long r_) : r(r_) {}
  long area() const override { return 3 * r * r; }
  const char *name() const override { return "circle"; }
};

static long triple(long x) { return 3 * x; }

static long twice(long x) { return 2 * x; }

struct Item {  // many objects with vtables and function pointers, not just the two above
  Shape *shape;
  long (*fn)(long);
};
constexpr int kItems = 256;

struct State {
  Shape *shapes[2];
  long (*fn)(long);
  const char *literal;
  long runs;
  Item items[kItems];
};

// 1 when a child started now would have its address space randomised (it reads its personality).
static int child_randomised() {
  FILE *p = popen("exec cat /proc/self/personality", "r");
  unsigned v = 0;
  int ok = p && fscanf(p, "%x", &v) == 1;
  if (p) pclose(p);
  return ok ? !(v & ADDR_NO_RANDOMIZE) : -1;
}

int main(int argc, char **argv) {
  auto *s = static_cast<State *>(persist_root("images", sizeof(State)));
  if (!s) return 2;
  if (!s->runs) {
    s->shapes[0] = new Square(7);
    s->shapes[1] = new Circle(5);
    s->fn = &triple;
    s->literal = "a string literal in .rodata";
    for (int i = 0; i < kItems; ++i)
      s->items[i] = Item{i % 2 ? static_cast<Shape *>(new Circle(i)) : new Square(i), i % 3 ? &twice : &triple};
  }
  long sum = 0, want = 0;
  for (int i = 0; i < kItems; ++i) {
    sum += s->items[i].shape->area() + s->items[i].fn(i);
    want += (i % 2 ? 3L * i * i : 1L * i * i) + (i % 3 ? 2L * i : 3L * i);
  }
  if (sum != want) {
    printf("items: sum %ld, want %ld\n", sum, want);
    return 3;
  }
  ++s->runs;
  unsetenv("LD_PRELOAD");  // the child only reports its personality
  printf("run %ld main=%p child_aslr=%d: %s %ld, %s %ld, fn(14)=%ld, \"%s\"\n", s->runs,
         reinterpret_cast<void *>(&main), child_randomised(), s->shapes[0]->name(), s->shapes[0]->area(), s->shapes[1]->name(),
         s->shapes[1]->area(), s->fn(14), s->literal);
  fflush(stdout);
  if (argc > 1 && strcmp(argv[1], "kill") == 0) raise(SIGKILL);
  return 0;
}
