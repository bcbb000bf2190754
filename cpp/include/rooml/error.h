// rooml::Error: the one exception type thrown by rooml's compiled core.
#pragma once

#include <stdexcept>

#include "rooml/api.h"

namespace rooml {

/// Error raised by the rooml core (bad input files, bad arguments, ...).
/// Its type information stays visible even though the core is built with hidden
/// symbols, so C++ callers and PyROOT (cppyy) catch it with its message.
class ROOML_API Error : public std::runtime_error {
 public:
  using runtime_error::runtime_error;
};

}  // namespace rooml
