// Result type of rooml::FlowModel::box_mass (kept apart so RooFit headers can hold it without the model).
#pragma once

#include <cstddef>

namespace rooml {

/// Probability mass of a flow inside an axis-aligned box (see FlowModel::box_mass).
struct BoxMass {
  double value = 1.0;        ///< mass inside the box (1 when the box contains the support)
  double rel_error = 0.0;    ///< estimated relative standard error (0 when exact)
  std::size_t points = 0;    ///< base points pushed through the flow (0 when exact)
  bool exact = true;         ///< true for a box containing the support or a one-dimensional flow
};

}  // namespace rooml
