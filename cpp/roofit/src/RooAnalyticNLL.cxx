#include "RooAnalyticNLL.h"

#include <cmath>

RooAnalyticNLL::RooAnalyticNLL(const RooAnalyticNLL &other, const char *name)
   : RooAbsReal(other, name), _offsetting(other._offsetting), _offsetSet(other._offsetSet), _offset(other._offset)
{
}

void RooAnalyticNLL::enableOffsetting(bool flag)
{
   _offsetting = flag;
   _offsetSet = false;
   _offset = 0.0;
}

double RooAnalyticNLL::getValV(const RooArgSet * /*nset*/) const
{
   const double v = absoluteValue();
   if (!_offsetting || hideOffset())
      return v;
   if (!_offsetSet && std::isfinite(v)) {
      _offset = v;
      _offsetSet = true;
   }
   return v - _offset;
}
