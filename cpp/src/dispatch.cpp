// Choice of the kernel set (see rooml/dispatch.h).  Compiled for the baseline instruction set.
#include "rooml/dispatch.h"

#include <cstdlib>

#include "rooml/error.h"

namespace rooml {

#define ROOML_DECLARE_TABLE(ns) \
  namespace ns {                \
  extern const KernelTable table; \
  }
#if defined(ROOML_HAVE_ISA_AVX512)
ROOML_DECLARE_TABLE(isa_avx512)
#endif
#if defined(ROOML_HAVE_ISA_AVX2)
ROOML_DECLARE_TABLE(isa_avx2)
#endif
ROOML_DECLARE_TABLE(isa_baseline)

namespace {

/// The compiled kernel sets, fastest first.
std::vector<const KernelTable*> compiled() {
  return {
#if defined(ROOML_HAVE_ISA_AVX512)
      &isa_avx512::table,
#endif
#if defined(ROOML_HAVE_ISA_AVX2)
      &isa_avx2::table,
#endif
      &isa_baseline::table};
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

/// Position of a kernel set in compiled() (-1: unknown).
int rank(const std::string& name) {
  const auto sets = compiled();
  for (std::size_t i = 0; i < sets.size(); ++i)
    if (name == sets[i]->name) return static_cast<int>(i);
  return -1;
}

/// Whether ROOML_ISA_LIMIT (treat the CPU as one that runs no kernel set above it: what an older machine
/// would run, reproduced on a newer one) allows a kernel set.
bool within_limit(const std::string& name) {
  const char* limit = std::getenv("ROOML_ISA_LIMIT");
  if (!limit || !*limit) return true;
  const int cap = rank(limit);
  if (cap < 0)
    throw Error(std::string("ROOML_ISA_LIMIT=") + limit + ": unknown kernel set (compiled in: " +
                joined(compiled_isas()) + ")");
  return rank(name) >= cap;
}

/// Whether this CPU (and its operating system, which must save the vector registers) runs a kernel set.
bool cpu_runs(const std::string& name) {
  if (!within_limit(name)) return false;
  if (name == "baseline") return true;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (name == "avx2") return avx2;
  if (name == "avx512")
    return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#endif
  return false;
}

const KernelTable& choose() {
  const std::vector<std::string> usable = supported_isas();
  const char* forced = std::getenv("ROOML_ISA");
  if (forced && *forced) {
    const std::string want = forced;
    for (const KernelTable* t : compiled())
      if (want == t->name) {
        if (!cpu_runs(want))
          throw Error("ROOML_ISA=" + want + ": this CPU cannot run the '" + want +
                      "' kernels; kernel sets it supports: " + joined(usable));
        return *t;
      }
    throw Error("ROOML_ISA=" + want + ": unknown kernel set; kernel sets this CPU supports: " + joined(usable) +
                " (compiled in: " + joined(compiled_isas()) + ")");
  }
  for (const KernelTable* t : compiled())
    if (cpu_runs(t->name)) return *t;
  return isa_baseline::table;
}

}  // namespace

const KernelTable& kernels() {
  static const KernelTable& chosen = choose();  // a bad ROOML_ISA throws on every call
  return chosen;
}

std::string active_isa() { return kernels().name; }

std::vector<std::string> compiled_isas() {
  std::vector<std::string> out;
  for (const KernelTable* t : compiled()) out.emplace_back(t->name);
  return out;
}

std::vector<std::string> supported_isas() {
  std::vector<std::string> out;
  for (const KernelTable* t : compiled())
    if (cpu_runs(t->name)) out.emplace_back(t->name);
  return out;
}

}  // namespace rooml
