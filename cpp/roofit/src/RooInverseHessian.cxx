#include "RooInverseHessian.h"

#include <RooAbsReal.h>
#include <RooArgSet.h>
#include <RooFitResult.h>
#include <RooRealVar.h>
#include <TDecompChol.h>
#include <TMatrixDSym.h>

#include <cmath>
#include <cstddef>
#include <vector>

bool RooML::useInverseHessian(const RooAbsReal &nll, RooFitResult &result)
{
   if (!nll.hasHessian())
      return false;
   RooArgSet params;
   nll.getParameters(nullptr, params);
   const std::size_t n = params.size();
   const RooArgList &fitted = result.floatParsFinal();
   const std::size_t m = fitted.size();
   // index in the Hessian (getParameters order) of each floating parameter of the result
   std::vector<std::size_t> index(m, n);
   std::size_t nFloating = 0;
   for (std::size_t i = 0; i < n; ++i) {
      auto *var = dynamic_cast<RooRealVar *>(params[i]);
      if (!var || var->isConstant())
         continue;
      ++nFloating;
      const int a = fitted.index(var->GetName());
      if (a < 0)
         return false;
      index[a] = i;
   }
   if (nFloating != m || m == 0)
      return false;
   std::vector<double> hessian(n * n);
   nll.hessian(hessian.data());
   TMatrixDSym matrix(static_cast<int>(m));
   for (std::size_t a = 0; a < m; ++a)
      for (std::size_t b = 0; b < m; ++b) {
         const double h = hessian[index[a] * n + index[b]];
         if (!std::isfinite(h))
            return false;
         matrix(a, b) = h;
      }
   TDecompChol cholesky(matrix);
   if (!cholesky.Decompose())
      return false;
   TMatrixDSym covariance(matrix);
   cholesky.Invert(covariance);
   const int quality = result.covQual();
   result.setCovarianceMatrix(covariance);
   result.setCovQual(quality); // setCovarianceMatrix marks the matrix as external
   for (std::size_t a = 0; a < m; ++a) {
      const double error = std::sqrt(covariance(a, a));
      static_cast<RooRealVar &>(*params[index[a]]).setError(error);
      static_cast<RooRealVar &>(fitted[a]).setError(error);
   }
   return true;
}
