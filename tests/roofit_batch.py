"""Values of a RooFit function on every event through RooFit's vectorized evaluator (doEval)."""
from __future__ import annotations

import numpy as np

_HELPERS = r"""
#include <RooFit/Evaluator.h>
namespace rooml_test_batch {
// RooFit's vectorized Evaluator (doEval) on `f`, the observable `name` fed from a column.
struct Batch {
  RooFit::Evaluator ev;
  std::size_t n;
  Batch(RooAbsReal &f, const char *name, const double *col, std::size_t n_) : ev(f), n(n_) {
    ev.setInput(name, {col, n}, false);
  }
  void run(double *out) {
    auto r = ev.run();
    for (std::size_t i = 0; i < n; ++i) out[i] = r[r.size() == 1 ? 0 : i];
  }
};
}
"""


class Batch:
    """Values of a RooFit function on events 0..n-1 of an index observable, re-evaluated on each call."""

    def __init__(self, ROOT, func, n, index_name="event_index"):
        if not hasattr(ROOT, "rooml_test_batch"):
            assert ROOT.gInterpreter.Declare(_HELPERS)
        self.col = np.arange(n, dtype=np.float64)
        self.impl = ROOT.rooml_test_batch.Batch(func, index_name, self.col, n)
        self.n = n

    def __call__(self):
        """Return the values at the current parameters."""
        out = np.empty(self.n)
        self.impl.run(out)
        return out


def batch(ROOT, func, n, index_name="event_index"):
    """Return the values of ``func`` on events 0..n-1 through RooFit's vectorized evaluator (doEval)."""
    return Batch(ROOT, func, n, index_name)()
