// rooml::Error: the one exception type thrown by rooml's compiled core.
#pragma once

#include <stdexcept>

namespace rooml {

/// Error raised by the rooml core (bad input files, bad arguments, ...).
class Error : public std::runtime_error {
 public:
  using runtime_error::runtime_error;
};

}  // namespace rooml
