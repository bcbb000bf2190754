// Native double-precision evaluation of a general ONNX graph (foreign models).
//
// A GraphModel interprets the operator graph that rooml::onnx reads: the
// tabular networks and tree ensembles that torch.onnx, tf2onnx, skl2onnx and
// onnxmltools write.  Every tensor is held in double precision whatever its
// declared element type (float32 weights convert exactly; a Cast to a float
// type does not round), except that tree-ensemble thresholds stored as float32
// are compared with the input rounded to float32, the comparison the trees
// were trained with.  Events are evaluated in fixed blocks of kBlock starting
// at event 0, so results are bit-identical for any thread count.  Chains of
// dense layers (Gemm, or MatMul + Add) and element-wise activations run on the
// packed dense kernels of kernels.h.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "rooml/api.h"

namespace rooml {

namespace onnx {
struct Model;
}

/// An ONNX graph with a batch axis (axis 0) on every input and output.
class ROOML_API GraphModel {
 public:
  /// Build from a parsed model; throws rooml::Error naming the op type, node
  /// and file for an operator outside the supported set.
  static std::shared_ptr<const GraphModel> from_model(const onnx::Model& model);
  /// Parse a serialized ONNX model held in memory (`source` names it in errors).
  static std::shared_ptr<const GraphModel> from_bytes(const std::string& bytes,
                                                      const std::string& source = "<memory>");
  /// Read and parse an ONNX file.
  static std::shared_ptr<const GraphModel> from_file(const std::string& path);

  ~GraphModel();
  GraphModel(const GraphModel&) = delete;
  GraphModel& operator=(const GraphModel&) = delete;

  /// Names of the graph inputs that are not initializers, in graph order.
  const std::vector<std::string>& input_names() const;
  /// Names of the tensor-valued graph outputs (ZipMap's sequence outputs are left out).
  const std::vector<std::string>& output_names() const;
  /// Per-event shape of input k (its shape without the batch axis).
  const std::vector<long>& input_shape(std::size_t k) const;
  /// Per-event shape of output k (its shape without the batch axis).
  const std::vector<long>& output_shape(std::size_t k) const;
  /// Number of values per event of input / output k (product of its per-event shape).
  std::size_t input_width(std::size_t k) const;
  std::size_t output_width(std::size_t k) const;
  /// Index of the output or input called `name`; throws naming the known ones if absent.
  std::size_t output_index(const std::string& name) const;
  std::size_t input_index(const std::string& name) const;
  /// Number of nodes evaluated through the packed dense kernels (fused chains), for tests.
  std::size_t n_fused_nodes() const;
  /// The file or label the graph was read from.
  const std::string& source() const;

  /// Evaluate `n` events.  inputs[k] is row-major (n x input_width(k)); the
  /// requested outputs are written row-major (n x output_width(outputs[j]))
  /// to out[j].  `threads` <= 0 uses the default thread count.
  void evaluate(const std::vector<const double*>& inputs, std::size_t n, const std::vector<std::size_t>& outputs,
                const std::vector<double*>& out, int threads = 0) const;

  /// Per-thread evaluation state, reused across calls (one per thread; see evaluate_block).
  struct Scratch;
  std::shared_ptr<Scratch> make_scratch() const;
  /// Evaluate one block of n <= kBlock events on the calling thread (inputs and out as in evaluate).
  void evaluate_block(Scratch& scratch, const std::vector<const double*>& inputs, std::size_t n,
                      std::size_t output, double* out) const;

  struct Impl;

 private:
  GraphModel();
  std::unique_ptr<Impl> impl_;
};

}  // namespace rooml
