// The error type is public (include/lithe/error.hpp); this header keeps the internal path.
#pragma once
#include "lithe/error.hpp"
