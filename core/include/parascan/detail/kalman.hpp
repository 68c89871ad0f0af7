// ELK's step: Levenberg–Marquardt on the linearised system, computed as a
// Kalman smoother (Gonzalez et al., NeurIPS 2024, "Towards Scalable and
// Stable Parallelization of Nonlinear RNNs").
//
// Per channel, with a_t = Ĵ_t (diagonal), c_t = f(h_{t-1}) - h_t and the
// step δ, the model is
//     δ_t = a_t δ_{t-1} + c_t + w_t,   w_t ~ N(0, 1),   δ_{-1} = 0 exactly,
//     0   = δ_t + v_t,                 v_t ~ N(0, σ²),
// and the step is the smoother's mean. σ² → ∞ ignores the observations and
// gives the (quasi-)Newton step; small σ² keeps δ near 0, a trust region.
// Three scans, each parallel in time:
//   1. variances, P_t = σ²(a_t² P_{t-1} + 1) / (a_t² P_{t-1} + 1 + σ²): a
//      Möbius map of P_{t-1}, composed as 2 × 2 matrices;
//   2. filtered means, m_t = (1 - K_t)(a_t m_{t-1} + c_t) with
//      K_t = P⁻_t / (P⁻_t + σ²), P⁻_t = a_t² P_{t-1} + 1: an affine scan;
//   3. smoothed means, in reverse, m^s_t = m_t + G_t (m^s_{t+1} - a_{t+1} m_t
//      - c_{t+1}) with G_t = P_t a_{t+1} / P⁻_{t+1}: an affine scan.
#pragma once

#include <Kokkos_Core.hpp>

#include <utility>

#include "parascan/detail/solver_state.hpp"

namespace parascan::detail {

/// Buffers ELK needs besides the solver's own, (batch, window, n) each.
template <class Scalar, class Space>
struct KalmanBuffers {
  SequenceView<Scalar, Space> variance;     // P_t
  SequenceView<Scalar, Space> coefficient;  // the affine scans' A_t
  SequenceView<Scalar, Space> mean;         // filtered, then smoothed means
  SequenceView<Scalar, Space> chunk_maps;   // (batch, chunks, 4 n): Möbius maps per chunk
  SequenceView<Scalar, Space> chunk_starts; // (batch, chunks, n)

  void reserve(int batch, int window, int n, int chunks) {
    if (variance.extent(1) != static_cast<std::size_t>(window) || variance.extent(0) != static_cast<std::size_t>(batch)) {
      variance = SequenceView<Scalar, Space>("elk_variance", batch, window, n);
      coefficient = SequenceView<Scalar, Space>("elk_coefficient", batch, window, n);
      mean = SequenceView<Scalar, Space>("elk_mean", batch, window, n);
    }
    if (chunk_maps.extent(1) != static_cast<std::size_t>(chunks) || chunk_maps.extent(0) != static_cast<std::size_t>(batch)) {
      chunk_maps = SequenceView<Scalar, Space>("elk_chunk_maps", batch, chunks, 4 * n);
      chunk_starts = SequenceView<Scalar, Space>("elk_chunk_starts", batch, chunks, n);
    }
  }

  static std::size_t bytes(int batch, int window, int n, int chunks) {
    return (3 * static_cast<std::size_t>(batch) * window * n + 5 * static_cast<std::size_t>(batch) * chunks * n) *
           sizeof(Scalar);
  }
};

/// P_t for every step of the window, by a chunked scan of Möbius maps. The
/// maps are projective, so each composed chunk matrix is rescaled by its
/// largest entry: that keeps long products finite without changing the map.
template <class Scalar, class Space>
void variance_scan(const Space& space, const SequenceView<Scalar, Space>& a, KalmanBuffers<Scalar, Space>& buffers,
                   Scalar noise, int chunks) {
  const int batch = static_cast<int>(a.extent(0));
  const int length = static_cast<int>(a.extent(1));
  const int n = static_cast<int>(a.extent(2));
  const int chunk_length = (length + chunks - 1) / chunks;
  const auto variance = buffers.variance;
  const auto maps = buffers.chunk_maps;
  const auto starts = buffers.chunk_starts;

  // Phase 1: each chunk but the last composes M = M_end ⋯ M_begin, with
  // M_t = [[σ² a², σ²], [a², 1 + σ²]] acting on P as (m00 P + m01) / (m10 P + m11).
  if (chunks > 1) {
    Kokkos::parallel_for(
        "parascan::elk::variance_reduce", Kokkos::RangePolicy<Space>(space, 0, batch * n * (chunks - 1)),
        KOKKOS_LAMBDA(const int item) {
          const int c = item % (chunks - 1);
          const int i = (item / (chunks - 1)) % n;
          const int s = item / ((chunks - 1) * n);
          Scalar m00 = 1, m01 = 0, m10 = 0, m11 = 1;
          const int end = chunk_begin(c + 1, chunk_length, length);
          for (int t = chunk_begin(c, chunk_length, length); t < end; ++t) {
            const Scalar a2 = a(s, t, i) * a(s, t, i);
            const Scalar n00 = noise * a2 * m00 + noise * m10;
            const Scalar n01 = noise * a2 * m01 + noise * m11;
            const Scalar n10 = a2 * m00 + (Scalar(1) + noise) * m10;
            const Scalar n11 = a2 * m01 + (Scalar(1) + noise) * m11;
            Scalar largest = n00 > n01 ? n00 : n01;
            largest = largest > n10 ? largest : n10;
            largest = largest > n11 ? largest : n11;
            m00 = n00 / largest;
            m01 = n01 / largest;
            m10 = n10 / largest;
            m11 = n11 / largest;
          }
          maps(s, c, 4 * i) = m00;
          maps(s, c, 4 * i + 1) = m01;
          maps(s, c, 4 * i + 2) = m10;
          maps(s, c, 4 * i + 3) = m11;
        });
  }

  // Phase 2: the variance entering each chunk, in time order; P_{-1} = 0
  // because h_0 is known exactly. Every entry is ≥ 0 and m11 > 0, so the
  // denominators are positive.
  Kokkos::parallel_for(
      "parascan::elk::variance_carry", Kokkos::RangePolicy<Space>(space, 0, batch * n), KOKKOS_LAMBDA(const int item) {
        const int i = item % n;
        const int s = item / n;
        Scalar p = 0;
        for (int c = 0; c < chunks; ++c) {
          starts(s, c, i) = p;
          if (c + 1 < chunks)
            p = (maps(s, c, 4 * i) * p + maps(s, c, 4 * i + 1)) / (maps(s, c, 4 * i + 2) * p + maps(s, c, 4 * i + 3));
        }
      });

  // Phase 3: every chunk reruns the recursion from its start.
  Kokkos::parallel_for(
      "parascan::elk::variance_fixup", Kokkos::RangePolicy<Space>(space, 0, batch * n * chunks),
      KOKKOS_LAMBDA(const int item) {
        const int c = item % chunks;
        const int i = (item / chunks) % n;
        const int s = item / (chunks * n);
        Scalar p = starts(s, c, i);
        const int end = chunk_begin(c + 1, chunk_length, length);
        for (int t = chunk_begin(c, chunk_length, length); t < end; ++t) {
          const Scalar predicted = a(s, t, i) * a(s, t, i) * p + Scalar(1);
          p = noise * predicted / (predicted + noise);
          variance(s, t, i) = p;
        }
      });
}

/// Replaces rhs (c_t on entry) with ELK's step δ over the window; the
/// Jacobian must be diagonal.
template <class Cell, class Scalar, class Space>
void elk_step(SolverState<Cell, Scalar, Space>& state, KalmanBuffers<Scalar, Space>& buffers, Scalar noise,
              int chunks) {
  const auto a = state.jacobian;
  const auto c = state.rhs;
  const int batch = state.batch;
  const int length = static_cast<int>(c.extent(1));
  const int n = state.n;
  buffers.reserve(batch, length, n, chunks);
  variance_scan(state.space, a, buffers, noise, chunks);

  // Filter: A_t = (1 - K_t) a_t and b_t = (1 - K_t) c_t, written to mean.
  const auto variance = buffers.variance;
  const auto coefficient = buffers.coefficient;
  const auto mean = buffers.mean;
  Kokkos::parallel_for(
      "parascan::elk::filter_terms", Kokkos::RangePolicy<Space>(state.space, 0, batch * length),
      KOKKOS_LAMBDA(const int item) {
        const int s = item / length;
        const int t = item % length;
        for (int i = 0; i < n; ++i) {
          const Scalar previous = t == 0 ? Scalar(0) : variance(s, t - 1, i);
          const Scalar predicted = a(s, t, i) * a(s, t, i) * previous + Scalar(1);
          const Scalar keep = noise / (predicted + noise);  // 1 - K_t
          coefficient(s, t, i) = keep * a(s, t, i);
          mean(s, t, i) = keep * c(s, t, i);
        }
      });
  const StateView<Scalar, Space> zero_start;
  diagonal_scan(state.space, coefficient, mean, zero_start, chunks, state.workspace);

  // Smoother: A_t = G_t and b_t = m_t - G_t (a_{t+1} m_t + c_{t+1}), with
  // G_{T-1} = 0 so the reverse scan starts from the last filtered mean. Each
  // item reads its own m_t before overwriting it with b_t.
  Kokkos::parallel_for(
      "parascan::elk::smoother_terms", Kokkos::RangePolicy<Space>(state.space, 0, batch * length),
      KOKKOS_LAMBDA(const int item) {
        const int s = item / length;
        const int t = item % length;
        for (int i = 0; i < n; ++i) {
          Scalar gain = 0;
          Scalar term = mean(s, t, i);
          if (t + 1 < length) {
            const Scalar a_next = a(s, t + 1, i);
            const Scalar predicted = a_next * a_next * variance(s, t, i) + Scalar(1);
            gain = variance(s, t, i) * a_next / predicted;
            term -= gain * (a_next * mean(s, t, i) + c(s, t + 1, i));
          }
          coefficient(s, t, i) = gain;
          mean(s, t, i) = term;
        }
      });
  diagonal_scan(state.space, coefficient, mean, zero_start, chunks, state.workspace, TimeOrder::reverse);

  // The smoothed means are the step; the buffers trade places instead of copying.
  std::swap(state.rhs, buffers.mean);
}

}  // namespace parascan::detail
