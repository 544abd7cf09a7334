// Public header; this keeps the internal path.
#pragma once
#include "lithe/half.hpp"
