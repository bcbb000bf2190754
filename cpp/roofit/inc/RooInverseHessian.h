// RooML::useInverseHessian: a fit result's covariance from an NLL's analytic Hessian at the minimum.
#ifndef ROOML_ROOINVERSEHESSIAN_H
#define ROOML_ROOINVERSEHESSIAN_H

class RooAbsReal;
class RooFitResult;

namespace RooML {

/// Replace the covariance matrix of `result` (and the errors of its floating parameters and of `nll`'s
/// parameters) by the inverse of `nll`'s analytic Hessian at the current parameter values, which should be the
/// minimum (call it after RooMinimizer::hesse() and save()).  Minuit's Hesse works in its internal, bounded
/// coordinates with finite steps and is off by up to a few per cent for parameters with limits.  The covariance
/// quality of `result` is kept.  Returns false, changing nothing, when `nll` has no Hessian (hasHessian()), the
/// result's floating parameters are not `nll`'s, or the Hessian is not positive definite.
bool useInverseHessian(const RooAbsReal &nll, RooFitResult &result);

} // namespace RooML

#endif
