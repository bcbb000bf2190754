// Shared by the RooFit classes with per-event inputs (internal, not in the dictionary).
#ifndef ROOML_ROOFIT_EVENTINPUTS_H
#define ROOML_ROOFIT_EVENTINPUTS_H

#include <RooAbsArg.h>
#include <RooAbsReal.h>
#include <RooArgList.h>
#include <RooArgSet.h>

#include <memory>
#include <string>
#include <vector>

namespace rooml_roofit {

/// "" when the per-event `input` depends on one of the dataset's observables `normSet` (or on no variable at all),
/// else a message naming what is missing.  RooFit's vectorized backend compiles a likelihood with the observables
/// of the dataset as normalization set; a variable the input depends on that is not a column of the dataset (a
/// RooEventColumn's index, a flow's feature) becomes a parameter, and RooFit would silently use its current value
/// for every event (and Minuit would even float it).
inline std::string missingObservable(const RooAbsArg &input, const RooArgSet &normSet, const std::string &what)
{
   const std::unique_ptr<RooArgSet> variables{input.getVariables()};
   if (input.isFundamental() && variables->empty())
      variables->add(input); // a variable used directly as the input (getVariables() of a variable is empty)
   if (variables->empty() || variables->overlaps(normSet))
      return {};
   std::string names;
   for (const RooAbsArg *v : *variables)
      names += std::string(names.empty() ? "" : ", ") + "'" + v->GetName() + "'";
   return what + " ('" + input.GetName() + "') depends on none of the dataset's observables: the dataset has no " +
          "column for " + names + " (add the event index with rooml.roofit.dataset_with_index or add_index_column)";
}

/// The current values of a list of RooAbsReals.
inline std::vector<double> valuesOf(const RooArgList &list)
{
   std::vector<double> v(list.size());
   for (std::size_t i = 0; i < v.size(); ++i)
      v[i] = static_cast<const RooAbsReal &>(list[i]).getVal();
   return v;
}

} // namespace rooml_roofit

#endif
