// The virtual interface between the engine and a plugin: one `Problem` is one
// cell instance on one backend and dtype, solved on buffers the plugin owns.
// Everything crossing it is host data in double precision, so the engine never
// depends on a plugin's scalar type or memory space.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "parascan/cell.hpp"
#include "parascan/types.hpp"

namespace parascan {

struct ProblemConfig {
  CellConfig cell;
  std::string backend;  // "serial", "openmp", "cuda"
  std::string dtype;    // "float32", "float64"
  int batch = 1;
  int sequence_length = 0;
};

struct SolverSettings {
  std::string solver = "newton";  // "sequential", "jacobi", "newton", "elk"
  JacobianApproximation jacobian = JacobianApproximation::exact;
  int block_size = 0;             // b of jacobian "block"
  double damping = 0;             // κ in [0, 1): Ĵ ← (1 - κ) Ĵ
  double elk_noise = 1;           // σ² > 0 of ELK's observation noise
  std::string on_divergence = "stop";  // "stop" or "reset"
  int max_iterations = 100;
  double tolerance = 1e-5;         // on the residual's max-norm
  double prefix_tolerance = 1e-5;  // relative, for the exact prefix
  std::string initial_guess = "zeros";  // "zeros" or "step_from_zero"
  int scan_chunks = 0;                  // 0: chosen from the backend's concurrency
  int chunk_size = 0;                   // c of hybrid chunking; 0: none
  std::string chunk_mode = "sequential_within";  // or "parallel_within"
};

/// One iteration's measurements; see docs/output-format.md.
struct TraceEntry {
  double residual = 0;
  double max_abs_error = 0;
  long exact_prefix = 0;
  double seconds = 0;  // cumulative
  long resets = 0;     // state entries reset to the initial guess
  long recomputed_steps = 0;  // (sequence, step) pairs the cell was evaluated at
  long chunk = 0;             // the chunk being solved (parallel_within), else 0
  double seconds_linearize = 0;  // cell evaluation and Jacobian, one fused kernel
  double seconds_scan = 0;
  double seconds_update = 0;
};

struct SolveResult {
  std::string status;  // converged, max_iterations, diverged
  int iterations = 0;
  double seconds = 0;
  double initial_residual = 0;
  double final_residual = 0;
  double final_max_abs_error = 0;
  long final_exact_prefix = 0;
  long resets = 0;
  int scan_chunks = 1;
  std::vector<TraceEntry> trace;
};

/// Settings of the backward pass that follows the forward solve when a run's
/// `pass` is `forward_backward`; docs/spec.md lists the values.
struct BackwardSettings {
  std::string loss = "sum_squares";  // "sum_squares" or "readout"
  std::string method = "scan";       // "sequential" (BPTT), "scan", "jacobi", "chunked"
  JacobianApproximation jacobian = JacobianApproximation::exact;  // Ĵ of the adjoint recurrence
  int block_size = 0;                // b of jacobian "block"
  int iterations = 1;                // adjoint sweeps of method "jacobi"
  int chunk_size = 0;                // c of method "chunked"
  std::string chunk_mode = "sequential_within";  // or "parallel_within"
  int scan_chunks = 0;               // 0: chosen from the backend's concurrency
};

/// Gradients of the loss and how long each backward phase took.
struct BackwardResult {
  double loss = 0;
  double seconds = 0;             // every phase below together
  double seconds_loss = 0;        // loss and its direct gradient g_t
  double seconds_linearize = 0;   // Jacobians of the adjoint recurrence
  double seconds_adjoint = 0;     // the adjoint: scan, sweeps or BPTT
  double seconds_parameters = 0;  // vector-Jacobian products per step
  double seconds_inputs = 0;      // input weight, bias and input gradients
  int iterations = 0;             // adjoint sweeps (jacobi), else 1
  /// Max-abs error of the adjoint against the reference adjoint after each
  /// sweep (jacobi) or once (other methods); empty for the reference itself.
  std::vector<double> adjoint_max_abs_error;
  /// Groups: "inputs" (batch × T × m), "initial_state" (batch × n), then
  /// every cell parameter under its name in `parameters()`.
  std::vector<NamedArray> gradients;
};

class Problem {
 public:
  virtual ~Problem() = default;

  /// Bytes this problem will allocate for the given solver, parameters excluded.
  virtual std::size_t required_bytes(const SolverSettings& settings) const = 0;

  /// Copies inputs x (batch × T × input_dim, row-major) to the backend and
  /// computes the input projection u = W_in x + b_in with one GEMM.
  virtual void set_inputs(const std::vector<double>& x) = 0;

  /// Runs the sequential solver and keeps its states as the reference that
  /// traces are measured against. Returns its wall time in seconds.
  virtual double solve_reference() = 0;

  /// Runs a solver; `solve_reference` must have run first.
  virtual SolveResult solve(const SolverSettings& settings) = 0;

  /// States h_1 … h_T of the last solve, batch × T × n, row-major.
  virtual std::vector<double> states() const = 0;
  virtual std::vector<double> reference_states() const = 0;

  virtual std::vector<NamedArray> parameters() const = 0;

  /// Bytes the backward pass adds to `required_bytes`.
  virtual std::size_t backward_bytes(const BackwardSettings& settings) const = 0;

  /// Sequential backpropagation through time on the reference states: the
  /// gradients every backward pass is measured against. Keeps its adjoint;
  /// `solve_reference` must have run first.
  virtual BackwardResult backward_reference(const BackwardSettings& settings) = 0;

  /// The backward pass on the states of the last `solve`, by `settings.method`;
  /// `backward_reference` must have run first with the same loss.
  virtual BackwardResult backward(const BackwardSettings& settings) = 0;

  /// The largest Lyapunov exponent of the reference trajectory, in nats per
  /// step, averaged over the batch; `solve_reference` must have run first.
  virtual double lyapunov_exponent() = 0;
};

/// One spec parameter of a cell, as `parascan plugins --describe` prints it.
/// Cells that list only `parameter_names` have no default or meaning.
struct ParameterInfo {
  std::string name;
  bool documented = false;
  double default_value = 0;
  std::string meaning;
};

/// Creates problems for one cell type on every backend the plugin was built for.
class CellFactory {
 public:
  virtual ~CellFactory() = default;
  virtual std::string name() const = 0;
  virtual std::string description() const = 0;
  virtual JacobianStructure structure() const = 0;
  /// Names of the numeric parameters the cell reads from the spec's `cell_params`.
  virtual std::vector<std::string> parameter_names() const = 0;
  /// The same parameters with their defaults and meanings.
  virtual std::vector<ParameterInfo> parameter_info() const = 0;
  /// True when the cell has the `vjp` the backward pass needs (parascan/vjp.hpp).
  virtual bool has_vjp() const = 0;
  /// b of a block_diagonal cell, 1 otherwise.
  virtual int block_size() const = 0;
  /// The cell's notes on sizes, state layout and initialisation; may be empty.
  virtual std::string documentation() const = 0;
  /// Throws std::invalid_argument when the cell cannot be built from `config`
  /// (an invalid state_dim or parameter value). Cheap: draws no parameters,
  /// so a spec reader can call it for every run.
  virtual void validate(const CellConfig& config) const = 0;
  virtual std::unique_ptr<Problem> create(const ProblemConfig& config) const = 0;
};

}  // namespace parascan
