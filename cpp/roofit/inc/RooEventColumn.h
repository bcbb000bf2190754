// RooEventColumn: per-event values computed outside RooFit, as a RooAbsReal.
#ifndef ROOML_ROOEVENTCOLUMN_H
#define ROOML_ROOEVENTCOLUMN_H

#include <RooAbsReal.h>
#include <RooRealProxy.h>

#include <cstddef>
#include <memory>
#include <vector>

/// A column of per-event numbers computed outside RooFit (log-densities from
/// onnxruntime on a GPU, network outputs, exact truth values, ...), exposed to
/// RooFit through an *index observable*: a RooRealVar whose value in the dataset
/// is the event's row number in the column.  The value is values[round(index)]
/// (or exp of it, for a column of log-values).
///
/// The values are a persistent member, so a workspace holding the column is
/// self-contained.  The column depends only on the index, so RooFit's vectorized
/// evaluator computes it once per dataset, not once per Minuit step.
///
/// Errors (rooml::Error, also reported with coutE): a non-finite value (naming
/// the event), an index that is not an integer or lies outside [0, size-1]
/// (naming the dataset row and the index value).
///
/// Integral over the index: the index only enumerates events, so it is not
/// integrated.  The column declares the integral over its index analytically as
/// 1: a column of normalized density values p(x_i) (features x integrated
/// outside RooFit) then serves directly as a normalized density of "the event",
/// and RooFit's NLL of a pdf built on it is -sum_i w_i log p(x_i).
class RooEventColumn : public RooAbsReal {
public:
   RooEventColumn() = default;
   /// `values[i]` is the value of the event whose index is i; with `logValues`, values are logarithms and
   /// the column's value is their exponential (e.g. log-densities, which keep their precision far in the tails).
   RooEventColumn(const char *name, const char *title, RooAbsReal &index, const std::vector<double> &values,
                  bool logValues = false);
   RooEventColumn(const RooEventColumn &other, const char *name = nullptr);
   TObject *clone(const char *newname = nullptr) const override { return new RooEventColumn(*this, newname); }

   /// Replace the values (same checks as the constructor), e.g. for the next toy dataset.
   /// Call it before building the likelihood: fits work on clones.
   void setValues(const std::vector<double> &values, bool logValues);
   const std::vector<double> &values() const { return _values; }
   std::size_t size() const { return _values.size(); }
   bool logValues() const { return _log; }
   const RooAbsReal &indexVariable() const { return _index.arg(); }
   /// The column's value for event `i` (exp of the stored value for a log column); throws out of range.
   double valueAt(std::size_t i) const;
   /// How many events were looked up, summed over this column and its clones (fits evaluate clones).
   unsigned long long evaluations() const { return *_evaluations; }

   Int_t getAnalyticalIntegral(RooArgSet &allVars, RooArgSet &analVars, const char *rangeName = nullptr) const override;
   double analyticalIntegral(Int_t code, const char *rangeName = nullptr) const override;

protected:
   double evaluate() const override;
   void doEval(RooFit::EvalContext &ctx) const override;

private:
   /// Row of `_values` for an index value; `row` is the dataset row, for messages (-1: the current value).
   std::size_t lookup(double index, long row) const;
   [[noreturn]] void fail(const std::string &message) const;

   RooRealProxy _index;
   std::vector<double> _values;
   bool _log = false;
   std::shared_ptr<unsigned long long> _evaluations = std::make_shared<unsigned long long>(0); //! shared with clones

   ClassDefOverride(RooEventColumn, 1) // Per-event values computed outside RooFit
};

#endif
