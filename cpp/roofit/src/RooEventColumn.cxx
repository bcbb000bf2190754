// RooEventColumn: per-event values computed outside RooFit (see RooEventColumn.h).
#include "RooEventColumn.h"

#include <RooFit/EvalContext.h>
#include <RooMsgService.h>
#include <TError.h>

#include <cmath>
#include <string>

#include "rooml/error.h"
#include "rooml/interpolation.h" // rooml::interp::num: doubles in messages

namespace {

// An index farther than this from an integer is refused (dataset columns hold doubles, exact for integers).
constexpr double kIndexTolerance = 1e-6;

std::string checkValues(const std::vector<double> &values, bool logValues)
{
   for (std::size_t i = 0; i < values.size(); ++i) {
      if (!std::isfinite(values[i])) {
         return std::string(logValues ? "log-value" : "value") + " of event " + std::to_string(i) + " is " +
                rooml::interp::detail::num(values[i]) + " (all values must be finite" +
                (logValues ? "; a density of 0 has log-value -inf and cannot enter a likelihood)" : ")");
      }
   }
   return {};
}

} // namespace

RooEventColumn::RooEventColumn(const char *name, const char *title, RooAbsReal &index,
                               const std::vector<double> &values, bool logValues)
   : RooAbsReal(name, title), _index("index", "event index", this, index)
{
   setValues(values, logValues);
}

RooEventColumn::RooEventColumn(const RooEventColumn &other, const char *name)
   : RooAbsReal(other, name),
     _index("index", this, other._index),
     _values(other._values),
     _log(other._log),
     _evaluations(other._evaluations)
{
}

void RooEventColumn::fail(const std::string &message) const
{
   const std::string full = "RooEventColumn '" + std::string(GetName()) + "': " + message;
   // Also reported through RooFit: an exception's message may not survive every caller.
   coutE(InputArguments) << full << std::endl;
   throw rooml::Error(full);
}

void RooEventColumn::setValues(const std::vector<double> &values, bool logValues)
{
   const std::string problem = checkValues(values, logValues);
   if (!problem.empty())
      fail(problem);
   _values = values;
   _log = logValues;
   setValueDirty();
}

double RooEventColumn::valueAt(std::size_t i) const
{
   if (i >= _values.size())
      fail("event " + std::to_string(i) + " out of range (the column holds " + std::to_string(_values.size()) +
           " values)");
   return _log ? std::exp(_values[i]) : _values[i];
}

std::size_t RooEventColumn::lookup(double index, long row) const
{
   const double r = std::round(index);
   if (std::abs(index - r) <= kIndexTolerance && r >= 0 && r < static_cast<double>(_values.size()))
      return static_cast<std::size_t>(r);
   // the message is built only for a bad index (this runs once per event and column)
   const std::string where = row < 0 ? std::string("the current index value") : "dataset row " + std::to_string(row);
   if (!(std::abs(index - r) <= kIndexTolerance)) {
      fail(where + ": index " + rooml::interp::detail::num(index) + " of '" + _index.arg().GetName() +
           "' is not an integer (an event index is a row number)");
   }
   if (r < 0 || r >= static_cast<double>(_values.size())) {
      fail(where + ": index " + rooml::interp::detail::num(index) + " of '" + _index.arg().GetName() +
           "' is outside [0, " + std::to_string(static_cast<long long>(_values.size()) - 1) + "] (the column holds " +
           std::to_string(_values.size()) + " values: was the dataset's index column made for this column?)");
   }
   return static_cast<std::size_t>(r);
}

double RooEventColumn::evaluate() const
{
   ++*_evaluations;
   const std::size_t i = lookup(_index, -1);
   return _log ? std::exp(_values[i]) : _values[i];
}

void RooEventColumn::doEval(RooFit::EvalContext &ctx) const
{
   std::span<double> out = ctx.output();
   std::span<const double> index = ctx.at(_index);
   const std::size_t n = out.size();
   *_evaluations += index.size();
   if (index.size() == 1) { // the index is not a dataset column: one value for all
      const std::size_t i = lookup(index[0], -1);
      std::fill(out.begin(), out.end(), _log ? std::exp(_values[i]) : _values[i]);
      return;
   }
   for (std::size_t e = 0; e < n; ++e)
      out[e] = _values[lookup(index[e], static_cast<long>(e))];
   if (_log) {
      for (std::size_t e = 0; e < n; ++e)
         out[e] = std::exp(out[e]);
   }
}

Int_t RooEventColumn::getAnalyticalIntegral(RooArgSet &allVars, RooArgSet &analVars, const char * /*rangeName*/) const
{
   // The index enumerates events; it is never integrated (see the class documentation), in any range.
   return matchArgs(allVars, analVars, _index) ? 1 : 0;
}

double RooEventColumn::analyticalIntegral(Int_t code, const char * /*rangeName*/) const
{
   R__ASSERT(code == 1);
   return 1.0;
}
