// Probability mass of a flow inside a box: exact CDF in one dimension, randomized quasi-Monte Carlo otherwise.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "rooml/error.h"
#include "rooml/flow_model.h"
#include "rooml/kernels.h"

namespace rooml {
namespace {

constexpr std::size_t kShifts = 16;                 // independent random shifts: the error estimate's sample
constexpr std::uint64_t kShiftSeed = 0x5EED0B0C5ULL;  // fixed: the estimate is deterministic
constexpr std::size_t kChunk = 1 << 15;             // base points pushed through the flow per call

double standard_normal_cdf(double t) { return 0.5 * std::erfc(-t / std::sqrt(2.0)); }

// Inverse of the standard normal CDF: Acklam's rational approximation refined by one Halley step
// (relative error ~1e-15 after the step).
double standard_normal_quantile(double p) {
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                             1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01,  -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  const double p_low = 0.02425;
  double x;
  if (p < p_low) {
    const double q = std::sqrt(-2.0 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
  } else if (p <= 1.0 - p_low) {
    const double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
  } else {
    const double q = std::sqrt(-2.0 * std::log(1.0 - p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
  }
  const double e = standard_normal_cdf(x) - p;
  const double u = e * std::sqrt(2.0 * M_PI) * std::exp(0.5 * x * x);
  return x - u / (1.0 + 0.5 * x * u);
}

// Counter-based uniform in (0, 1) (splitmix64), the same construction as the sampler's.
double shift_uniform(std::uint64_t counter) {
  std::uint64_t z = kShiftSeed + 0x9E3779B97F4A7C15ULL * (counter + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return (static_cast<double>(z >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

std::vector<unsigned> first_primes(std::size_t n) {
  std::vector<unsigned> primes;
  for (unsigned k = 2; primes.size() < n; ++k) {
    bool prime = true;
    for (unsigned p : primes) {
      if (p * p > k) break;
      if (k % p == 0) { prime = false; break; }
    }
    if (prime) primes.push_back(k);
  }
  return primes;
}

double radical_inverse(std::uint64_t index, unsigned base) {
  double result = 0.0, scale = 1.0 / base;
  for (; index > 0; index /= base, scale /= base) result += static_cast<double>(index % base) * scale;
  return result;
}

bool inside(const double* x, const double* low, const double* high, std::size_t d) {
  for (std::size_t f = 0; f < d; ++f)
    if (!(x[f] >= low[f] && x[f] <= high[f])) return false;
  return true;
}

}  // namespace

double FlowModel::member_box_mass_1d(std::size_t member, double low, double high, const double* context) const {
  // The member's map T is monotone; its direction comes from the images of two base points.
  const double z_probe[2] = {-1.0, 1.0};
  double x_probe[2];
  std::vector<double> ctx2;
  for (int i = 0; i < 2; ++i)
    for (std::size_t f = 0; f < n_context(); ++f) ctx2.push_back(context[f]);
  member_inverse(member, z_probe, ctx2.empty() ? nullptr : ctx2.data(), 2, x_probe, 1);
  const double direction = x_probe[1] >= x_probe[0] ? 1.0 : -1.0;
  // G(x) = Phi(direction * T(x)) increases from 0 at the support's lower edge to 1 at its upper edge.
  auto G = [&](double x, bool upper) {
    if (x <= low_[0]) return 0.0;
    if (x >= high_[0]) return 1.0;
    double z;
    member_forward(member, &x, context, 1, &z, 1);
    if (std::isnan(z)) return upper ? 1.0 : 0.0;
    return standard_normal_cdf(direction * z);
  };
  return std::max(0.0, G(high, true) - G(low, false));
}

BoxMass FlowModel::box_mass(const double* low, const double* high, const double* context, double rel_precision,
                            int bootstrap, std::size_t max_points, int threads) const {
  const std::size_t d = n_features(), c = n_context();
  if (c && !context) throw Error(source_ + ": the box mass needs " + std::to_string(c) + " context values");
  for (std::size_t f = 0; f < c; ++f)
    if (!std::isfinite(context[f])) throw Error(source_ + ": context value '" + context_[f] + "' is not finite");
  if (!(rel_precision > 0.0)) throw Error(source_ + ": the box mass's relative precision must be > 0");
  std::vector<double> lo(d), hi(d);
  bool contains_support = true, empty = false;
  for (std::size_t f = 0; f < d; ++f) {
    if (std::isnan(low[f]) || std::isnan(high[f]))
      throw Error(source_ + ": box bound of '" + features_[f] + "' is NaN");
    lo[f] = std::max(low[f], low_[f]);
    hi[f] = std::min(high[f], high_[f]);
    contains_support = contains_support && low[f] <= low_[f] && high[f] >= high_[f];
    empty = empty || !(lo[f] < hi[f]);
  }
  const auto [first, last] = member_range(bootstrap);
  const std::size_t m = last - first;
  BoxMass result;
  if (contains_support) return result;
  if (empty) {
    result.value = 0.0;
    return result;
  }
  if (d == 1 && (m == 1 || rule_ == EnsembleRule::Mixture)) {
    double sum = 0.0;
    for (std::size_t k = first; k < last; ++k) sum += member_box_mass_1d(k, lo[0], hi[0], context);
    result.value = sum / static_cast<double>(m);
    return result;
  }
  return box_mass_qmc(lo.data(), hi.data(), context, rel_precision, first, last, max_points, threads);
}

BoxMass FlowModel::box_mass_qmc(const double* low, const double* high, const double* context, double rel_precision,
                                std::size_t first, std::size_t last, std::size_t max_points, int threads) const {
  const std::size_t d = n_features(), c = n_context(), m = last - first;
  const bool weighted = m > 1 && rule_ == EnsembleRule::MeanLogProb;
  const std::vector<unsigned> primes = first_primes(d);
  std::vector<double> shifts(kShifts * d);
  for (std::size_t i = 0; i < shifts.size(); ++i) shifts[i] = shift_uniform(i);
  // Per shift: sum of (weight x inside) and sum of weights (weights are 1 unless `weighted`).
  std::vector<double> in_sum(kShifts, 0.0), weight_sum(kShifts, 0.0);
  std::vector<double> z, x, ctx, lp(kChunk * m);
  std::size_t done = 0, target = 1024;
  BoxMass result;
  result.exact = false;
  while (true) {
    for (std::size_t r = 0; r < kShifts; ++r) {
      for (std::size_t begin = done; begin < target; begin += kChunk) {
        const std::size_t count = std::min(kChunk, target - begin);
        z.resize(count * d);
        x.resize(count * d);
        for (std::size_t e = 0; e < count; ++e)
          for (std::size_t f = 0; f < d; ++f) {
            double u = radical_inverse(begin + e + 1, primes[f]) + shifts[r * d + f];
            u -= std::floor(u);
            u = std::min(std::max(u, 1e-300), 1.0 - 1e-16);
            z[e * d + f] = standard_normal_quantile(u);
          }
        if (c) {
          ctx.resize(count * c);
          for (std::size_t e = 0; e < count; ++e) std::copy(context, context + c, ctx.begin() + e * c);
        }
        for (std::size_t k = first; k < last; ++k) {
          member_inverse(k, z.data(), c ? ctx.data() : nullptr, count, x.data(), threads);
          if (!weighted) {
            for (std::size_t e = 0; e < count; ++e) in_sum[r] += inside(&x[e * d], low, high, d) ? 1.0 : 0.0;
            weight_sum[r] += static_cast<double>(count);
            continue;
          }
          // Importance weight of the geometric-mean density against the members' mixture (the proposal).
          for (std::size_t e = 0; e < count * d; ++e)
            x[e] = std::min(std::max(x[e], low_[e % d]), high_[e % d]);
          for_each_member_block(x.data(), c ? ctx.data() : nullptr, count, threads, first, last,
                                [&](std::size_t b, std::size_t n, const double* lpb) {
                                  for (std::size_t j = 0; j < m; ++j)
                                    for (std::size_t e = 0; e < n; ++e) lp[(b + e) * m + j] = lpb[j * kBlock + e];
                                });
          for (std::size_t e = 0; e < count; ++e) {
            double mean = 0.0, top = -std::numeric_limits<double>::infinity();
            for (std::size_t j = 0; j < m; ++j) {
              mean += lp[e * m + j];
              top = std::max(top, lp[e * m + j]);
            }
            double mix = 0.0;
            for (std::size_t j = 0; j < m; ++j) mix += std::exp(lp[e * m + j] - top);
            const double w = std::exp(mean / static_cast<double>(m) - top - std::log(mix / static_cast<double>(m)));
            weight_sum[r] += w;
            if (inside(&x[e * d], low, high, d)) in_sum[r] += w;
          }
        }
      }
    }
    done = target;
    double mean = 0.0, var = 0.0;
    for (std::size_t r = 0; r < kShifts; ++r) mean += in_sum[r] / weight_sum[r];
    mean /= kShifts;
    for (std::size_t r = 0; r < kShifts; ++r) var += std::pow(in_sum[r] / weight_sum[r] - mean, 2);
    var /= static_cast<double>(kShifts - 1);
    result.value = mean;
    result.points = done * kShifts * m;
    result.rel_error = mean > 0.0 ? std::sqrt(var / kShifts) / mean : std::numeric_limits<double>::infinity();
    // A zero spread at few points (all shifts agree on an extreme fraction) is not yet evidence of precision.
    const bool converged = (result.rel_error <= rel_precision && (var > 0.0 || done >= 16384)) ||
                           (mean == 0.0 && done >= 16384);
    if (converged || 2 * target * kShifts * m > max_points) break;
    target *= 2;
  }
  return result;
}

}  // namespace rooml
