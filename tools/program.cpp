// program.cpp — the entry point of the `persist` binary. Everything else in tools/ is a library
// (persist_toollib) that the tests link as well.
#include "tool.h"

int main(int argc, char **argv) { return persist::tool::run_tool(argc, argv); }
