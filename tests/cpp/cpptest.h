// cpptest.h — what the C++ API tests include: the public headers and the HeapTest fixture (one
// heap file per test, heaputil.h).
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "heaputil.h"
#include "persist.h"
#include "persist.hpp"
#include "testutil.h"
