// The per-event pass of the NSBI likelihood (see rooml/nsbi_likelihood.h).
#include "rooml/nsbi_likelihood.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>

#include "rooml/dispatch.h"
#include "rooml/kernels.h"
#include "rooml/parallel.h"

namespace rooml::nsbi {

namespace {

/// g, d log g / dx and d^2 log g / dx^2 of one shape column for `count` events from `first` (order >= Gradient:
/// d; Hessian: e).
void shapeJet(int code, const double* __restrict H, const double* __restrict L, const double* __restrict lH,
              const double* __restrict lL, double x, std::size_t count, Order order, double* __restrict g,
              double* __restrict d, double* __restrict e2) {
  if (code == interp::kPoly6Exp) return kernels().code5_jet(H, L, lH, lL, x, count, static_cast<int>(order), g, d, e2);
  for (std::size_t i = 0; i < count; ++i) {  // other multiplicative codes: the scalar kernel
    g[i] = interp::detail::jet(code, L[i], H[i], 1.0, x, 1.0, 0);
    if (order == Order::Value) continue;
    d[i] = interp::detail::jet(code, L[i], H[i], 1.0, x, 1.0, 1) / g[i];
    if (order == Order::Hessian) e2[i] = interp::detail::jet(code, L[i], H[i], 1.0, x, 1.0, 2) / g[i] - d[i] * d[i];
  }
}

/// wlog = w log S (0 where S is not finite and > 0) and q = w / S (0 there); log_normal vectorizes for normal S,
/// the rare subnormal S get std::log.
void logTerms(const double* __restrict S, const double* __restrict w, std::size_t count, double* __restrict wlog,
              double* __restrict q) {
  constexpr double kMax = std::numeric_limits<double>::max();
  for (std::size_t i = 0; i < count; ++i) {
    const bool normal = S[i] >= DBL_MIN && S[i] <= kMax, ok = normal || (S[i] > 0.0 && S[i] <= kMax);
    wlog[i] = normal ? S[i] : 1.0;
    q[i] = ok ? w[i] / S[i] : 0.0;
  }
  kernels().log_normal(wlog, count, wlog);
  for (std::size_t i = 0; i < count; ++i) wlog[i] *= w[i];
  for (std::size_t i = 0; i < count; ++i)
    if (S[i] > 0.0 && S[i] < DBL_MIN) wlog[i] = w[i] * std::log(S[i]);
}

/// out = log(x) for positive finite x: log_normal (vectorized) for normal values, std::log for the others.
void logs(const double* __restrict x, std::size_t count, double* __restrict out) {
  kernels().log_normal(x, count, out);
  for (std::size_t i = 0; i < count; ++i)
    if (!(x[i] >= DBL_MIN && x[i] <= DBL_MAX)) out[i] = std::log(x[i]);
}

double sum(const double* v, std::size_t n) { return kernels().sum(v, n); }
double dot(const double* a, const double* b, std::size_t n) { return kernels().dot(a, b, n); }

}  // namespace

std::size_t EventTable::stride() const { return ((weighted ? 1 : 0) + J + 4 * shapes.size()) * kBlock; }

void EventTable::pack(int threads) {
  const std::size_t blocks = (n + kBlock - 1) / kBlock, NS = shapes.size(), width = stride();
  packed.assign(blocks * width, 0.0);
  ratioSums.assign(J, 0.0);
  for (std::size_t j = 0; j < J; ++j)
    for (std::size_t e = 0; e < n; ++e) ratioSums[j] += (weighted ? pendingWeights[e] : 1.0) * pendingRatios[j * n + e];
  for_each_block(n, threads > 0 ? threads : 1, [&](std::size_t, std::size_t begin, std::size_t count) {
    double* blk = packed.data() + (begin / kBlock) * width;
    if (weighted) std::copy_n(pendingWeights.begin() + begin, count, blk);
    double* ratios = blk + (weighted ? kBlock : 0);
    for (std::size_t j = 0; j < J; ++j) {
      std::fill_n(ratios + j * kBlock, kBlock, 1.0);  // padding: neutral values, never read
      std::copy_n(pendingRatios.begin() + j * n + begin, count, ratios + j * kBlock);
    }
    for (std::size_t s = 0; s < NS; ++s) {
      double* out = ratios + (J + 4 * s) * kBlock;
      std::fill_n(out, 2 * kBlock, 1.0);
      std::copy_n(pendingHi[s].begin() + begin, count, out);
      std::copy_n(pendingLo[s].begin() + begin, count, out + kBlock);
      logs(out, 2 * kBlock, out + 2 * kBlock);
    }
  });
  pendingWeights = {};
  pendingRatios = {};
  pendingLo = {};
  pendingHi = {};
}

Sums accumulate(const EventTable& t, const double* alpha, const double* c, Order order, const Directions* dirs,
                int threads) {
  const std::size_t J = t.J, NS = t.shapes.size(), n = t.n;
  const std::size_t P = (order == Order::Hessian && c && dirs) ? dirs->P : 0;
  const bool grad = order != Order::Value, hess = order == Order::Hessian;
  // per-block record: logSum, bad, firstBad, firstBadValue, B (J), D (NS), E (NS * NS), F (NS), TT (P * P)
  const std::size_t oB = 4, oD = oB + J, oE = oD + NS, oF = oE + (hess ? NS * NS : 0), oT = oF + (hess ? NS : 0);
  const std::size_t width = oT + P * P;
  const std::size_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> record(blocks * width, 0.0);
  const int nThreads = threads > 0 ? threads : 1;
  struct Scratch {
    std::vector<double> A, g, d, e2, q, T, u, ones;
  };
  std::vector<Scratch> scratch(static_cast<std::size_t>(nThreads));
  for_each_block(n, nThreads, [&](std::size_t worker, std::size_t begin, std::size_t count) {
    Scratch& w = scratch[worker];
    w.A.resize(J * kBlock);
    w.g.resize(kBlock);
    w.d.resize((NS + 1) * kBlock);
    w.e2.resize((NS ? NS : 1) * kBlock);
    w.q.resize(kBlock);
    double* rec = record.data() + (begin / kBlock) * width;
    const double* blk = t.packed.data() + (begin / kBlock) * t.stride();
    if (w.ones.empty()) w.ones.assign(kBlock, 1.0);
    const double* wt = t.weighted ? blk : w.ones.data();
    const double* ratios = blk + (t.weighted ? kBlock : 0);
    std::copy(ratios, ratios + J * kBlock, w.A.begin());
    for (std::size_t s = 0; s < NS; ++s) {
      const ShapeColumn& col = t.shapes[s];
      const double* in = ratios + (J + 4 * s) * kBlock;
      shapeJet(col.code, in, in + kBlock, in + 2 * kBlock, in + 3 * kBlock, alpha[col.parameter], count, order,
               w.g.data(), w.d.data() + s * kBlock, w.e2.data() + s * kBlock);
      double* A = w.A.data() + col.process * kBlock;
      for (std::size_t i = 0; i < count; ++i) A[i] *= w.g[i];
    }
    // q = w / S (events) or w (reference)
    if (c) {
      double* S = w.g.data();
      std::fill(S, S + count, 0.0);
      for (std::size_t j = 0; j < J; ++j) {
        const double cj = c[j], *A = w.A.data() + j * kBlock;
        for (std::size_t i = 0; i < count; ++i) S[i] += cj * A[i];
      }
      constexpr double kMax = std::numeric_limits<double>::max();
      for (std::size_t i = 0; i < count; ++i) {
        if (!(S[i] > 0.0 && S[i] <= kMax) && rec[1]++ == 0) {
          rec[2] = static_cast<double>(begin + i);
          rec[3] = S[i];
        }
      }
      // w log S (0 for bad events, which make the value NaN anyway) and q = w / S; log_normal vectorizes for
      // normal S, the rare subnormal S get std::log
      double* wlog = w.d.data() + NS * kBlock;  // scratch row past the shape derivatives
      logTerms(S, wt, count, wlog, w.q.data());
      rec[0] = sum(wlog, count);
    } else {
      std::copy_n(wt, count, w.q.begin());
    }
    if (!grad && c) return;
    // qA_j = q A_j (reused below)
    for (std::size_t j = 0; j < J; ++j) {
      double* A = w.A.data() + j * kBlock;
      for (std::size_t i = 0; i < count; ++i) A[i] *= w.q[i];
      rec[oB + j] = sum(A, count);
    }
    if (!grad) return;
    for (std::size_t s = 0; s < NS; ++s)
      rec[oD + s] = dot(w.A.data() + t.shapes[s].process * kBlock, w.d.data() + s * kBlock, count);
    if (!hess) return;
    w.u.resize(kBlock);
    for (std::size_t s = 0; s < NS; ++s) {
      const double* qA = w.A.data() + t.shapes[s].process * kBlock;
      const double* ds = w.d.data() + s * kBlock;
      for (std::size_t i = 0; i < count; ++i) w.u[i] = qA[i] * ds[i];
      rec[oF + s] = dot(qA, w.e2.data() + s * kBlock, count);
      for (std::size_t u = s; u < NS; ++u) {
        if (t.shapes[u].process != t.shapes[s].process) continue;
        const double v = dot(w.u.data(), w.d.data() + u * kBlock, count);
        rec[oE + s * NS + u] = v;
        rec[oE + u * NS + s] = v;
      }
    }
    if (P == 0) return;
    // T_a per event, from q A_j: T_a q = sum_j dc_aj (q A_j) + ...; TT needs w T_a T_b / S^2 = (q T_a)(q T_b) / w.
    w.T.resize(P * kBlock);
    for (std::size_t a = 0; a < P; ++a) {
      double* Ta = w.T.data() + a * kBlock;
      std::fill(Ta, Ta + count, 0.0);
      for (std::size_t j = 0; j < J; ++j) {
        const double f = dirs->dc[a * J + j];
        if (f == 0.0) continue;
        const double* qA = w.A.data() + j * kBlock;
        for (std::size_t i = 0; i < count; ++i) Ta[i] += f * qA[i];
      }
      if (dirs->k[a] < 0) continue;
      for (std::size_t s = 0; s < NS; ++s) {
        if (static_cast<long>(t.shapes[s].parameter) != dirs->k[a]) continue;
        const double cj = c[t.shapes[s].process];
        const double* qA = w.A.data() + t.shapes[s].process * kBlock;
        const double* ds = w.d.data() + s * kBlock;
        for (std::size_t i = 0; i < count; ++i) Ta[i] += cj * qA[i] * ds[i];
      }
    }
    // 1/w per event (q = w/S; rows with q = 0 contribute nothing)
    for (std::size_t i = 0; i < count; ++i) {
      w.q[i] = (w.q[i] == 0.0 || wt[i] == 0.0) ? 0.0 : 1.0 / wt[i];
    }
    for (std::size_t a = 0; a < P; ++a) {
      const double* Ta = w.T.data() + a * kBlock;
      for (std::size_t i = 0; i < count; ++i) w.u[i] = Ta[i] * w.q[i];
      for (std::size_t b = a; b < P; ++b) {
        const double v = dot(w.u.data(), w.T.data() + b * kBlock, count);
        rec[oT + a * P + b] = v;
        rec[oT + b * P + a] = v;
      }
    }
  });
  Sums out;
  out.B.assign(J, 0.0);
  out.D.assign(NS, 0.0);
  if (hess) {
    out.E.assign(NS * NS, 0.0);
    out.F.assign(NS, 0.0);
  }
  out.TT.assign(P * P, 0.0);
  double comp = 0.0;  // Neumaier compensation of the log sum
  for (std::size_t b = 0; b < blocks; ++b) {
    const double* rec = record.data() + b * width;
    const double v = rec[0], s = out.logSum + v;
    comp += std::fabs(out.logSum) >= std::fabs(v) ? (out.logSum - s) + v : (v - s) + out.logSum;
    out.logSum = s;
    if (rec[1] > 0 && out.bad == 0) {
      out.firstBad = static_cast<std::size_t>(rec[2]);
      out.firstBadValue = rec[3];
    }
    out.bad += static_cast<std::size_t>(rec[1]);
    for (std::size_t j = 0; j < J; ++j) out.B[j] += rec[oB + j];
    for (std::size_t s2 = 0; s2 < NS; ++s2) out.D[s2] += rec[oD + s2];
    if (hess) {
      for (std::size_t x = 0; x < NS * NS; ++x) out.E[x] += rec[oE + x];
      for (std::size_t s2 = 0; s2 < NS; ++s2) out.F[s2] += rec[oF + s2];
    }
    for (std::size_t x = 0; x < P * P; ++x) out.TT[x] += rec[oT + x];
  }
  out.logSum += comp;
  return out;
}

}  // namespace rooml::nsbi
