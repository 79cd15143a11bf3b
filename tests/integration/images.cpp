// images — pointers from the heap into the program image survive ASLR: a PIE executable stores an
// object with virtual functions, a function pointer and a string literal in the heap (reached
// from a root) in its first run; later runs, loaded at other addresses, call and read them.
// Prints the load address too, so the driver can tell that the image really moved.
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

struct State {
  Shape *shapes[2];
  long (*fn)(long);
  const char *literal;
  long runs;
};

int main() {
  auto *s = static_cast<State *>(persist_root("images", sizeof(State)));
  if (!s) return 2;
  if (!s->runs) {
    s->shapes[0] = new Square(7);
    s->shapes[1] = new Circle(5);
    s->fn = &triple;
    s->literal = "a string literal in .rodata";
  }
  ++s->runs;
  printf("run %ld main=%p: %s %ld, %s %ld, fn(14)=%ld, \"%s\"\n", s->runs,
         reinterpret_cast<void *>(&main), s->shapes[0]->name(), s->shapes[0]->area(),
         s->shapes[1]->name(), s->shapes[1]->area(), s->fn(14), s->literal);
  return 0;
}
