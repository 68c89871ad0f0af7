// Chunked affine scans: y_t = A_t y_{t-1} + b_t for t = 0 .. T-1 with
// y_{-1} = y0, or, in reverse, y_t = A_t y_{t+1} + b_t with y_T = y0.
//
// Affine maps compose as (A2, b2) ∘ (A1, b1) = (A2 A1, A2 b1 + b2). That is
// associative but not commutative, and Kokkos::parallel_scan assumes a
// commutative join (its Serial backend never calls join at all), so parascan
// orders the composition itself, in three phases over C time chunks:
//   1. reduce: every chunk but the last composes its own maps from the
//      identity (I, 0), giving (P_c, q_c) = the chunk's product and its
//      response to a zero start, all chunks in parallel;
//   2. carry: one pass over the chunks in time order computes each chunk's
//      start value, carry_0 = y0, carry_{c+1} = P_c carry_c + q_c;
//   3. fix-up: every chunk reruns its recurrence from its carry, in parallel,
//      writing y_t over b_t.
// No phase divides by a product of A, so decays that underflow to zero give
// zeros, never NaN. C = 1 is a sequential pass per channel (diagonal) or per
// block, the cheapest when batch × channels already fills the execution space.
//
// "Time order" below means the order of the recurrence: increasing t
// forward, decreasing t in reverse. Chunk 0 is always the first in that order.
#pragma once

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace parascan {

/// Time-major buffers: (batch, time, entries per step), contiguous per step.
template <class Scalar, class Space>
using SequenceView = Kokkos::View<Scalar***, Kokkos::LayoutRight, typename Space::memory_space>;

/// Initial values y0: (batch, state).
template <class Scalar, class Space>
using StateView = Kokkos::View<Scalar**, Kokkos::LayoutRight, typename Space::memory_space>;

enum class TimeOrder { forward, reverse };

namespace detail {

/// Channels per work item of the diagonal scan. Host threads walk time for a
/// block of adjacent channels, so each cache line they load is used fully. On
/// a device one thread per channel lets neighbouring threads coalesce instead.
/// NOTE: at n = 64 and T = 2^20 these strided host walks reach only 0.10 of a
/// copy's bandwidth; BENCHMARKS.md measures it and the whole-row alternative.
template <class Space>
struct DiagonalScanWidth {
  static constexpr int value = 16;
};
#ifdef KOKKOS_ENABLE_CUDA
template <>
struct DiagonalScanWidth<Kokkos::Cuda> {
  static constexpr int value = 1;
};
#endif

/// First logical step of chunk c; chunks have `chunk_length` steps, the last
/// one fewer when C does not divide T.
KOKKOS_INLINE_FUNCTION int chunk_begin(int c, int chunk_length, int length) {
  const long begin = static_cast<long>(c) * chunk_length;
  return begin < length ? static_cast<int>(begin) : length;
}

/// Physical time index of logical step `step`.
KOKKOS_INLINE_FUNCTION int physical_time(int step, int length, bool reverse) {
  return reverse ? length - 1 - step : step;
}

inline void check_chunks(int chunks, int length) {
  if (chunks < 1 || chunks > std::max(length, 1))
    throw std::invalid_argument("scan chunk count " + std::to_string(chunks) + " is outside [1, " +
                                std::to_string(std::max(length, 1)) + "] for sequence length " +
                                std::to_string(length));
}

}  // namespace detail

/// Picks the time chunks per sequence from the parallelism that is missing:
/// one chunk when batch × independent work items already reach the space's
/// concurrency, otherwise enough chunks to fill it. Composing b × b blocks
/// costs b^3 per step against b^2 for the sequential pass, so block scans
/// split time only when b is below the concurrency left per block.
template <class Space>
int auto_scan_chunks(const Space& space, int batch, int length, int state_dim, int block_size) {
  const long concurrency = space.concurrency();
  long work_items;
  if (block_size <= 1) {
    const int width = detail::DiagonalScanWidth<Space>::value;
    work_items = static_cast<long>(batch) * ((state_dim + width - 1) / width);
  } else {
    work_items = static_cast<long>(batch) * (state_dim / block_size);
  }
  if (work_items >= concurrency) return 1;
  if (block_size > 1 && block_size >= concurrency / std::max(work_items, 1L)) return 1;
  const long wanted = (concurrency + work_items - 1) / work_items;
  // Chunks shorter than a few steps cost more in phase 2 than they save.
  const long max_chunks = std::max(1, length / 8);
  return static_cast<int>(std::max(1L, std::min(wanted, max_chunks)));
}

/// Workspace of a scan, kept by the caller so iterations reuse it.
template <class Scalar, class Space>
struct ScanWorkspace {
  SequenceView<Scalar, Space> product;  // (batch, chunk, entries of A)
  SequenceView<Scalar, Space> product_next;
  SequenceView<Scalar, Space> offset;  // (batch, chunk, n)
  SequenceView<Scalar, Space> offset_next;
  SequenceView<Scalar, Space> carry;  // (batch, chunk, n)

  void reserve(int batch, int chunks, int state_dim, int product_entries, bool needs_next) {
    const auto matches = [&](const SequenceView<Scalar, Space>& v, int entries) {
      return v.extent(0) == static_cast<std::size_t>(batch) && v.extent(1) == static_cast<std::size_t>(chunks) &&
             v.extent(2) == static_cast<std::size_t>(entries);
    };
    if (!matches(product, product_entries)) {
      product = SequenceView<Scalar, Space>("scan_product", batch, chunks, product_entries);
      offset = SequenceView<Scalar, Space>("scan_offset", batch, chunks, state_dim);
      carry = SequenceView<Scalar, Space>("scan_carry", batch, chunks, state_dim);
    }
    if (needs_next && !matches(product_next, product_entries)) {
      product_next = SequenceView<Scalar, Space>("scan_product_next", batch, chunks, product_entries);
      offset_next = SequenceView<Scalar, Space>("scan_offset_next", batch, chunks, state_dim);
    }
  }

  /// Bytes the workspace needs, for memory estimates before allocating.
  static std::size_t bytes(int batch, int chunks, int state_dim, int block_size) {
    const std::size_t b = static_cast<std::size_t>(batch) * chunks;
    const std::size_t n = state_dim;
    const std::size_t entries = block_size <= 1 ? 3 * n : 2 * (n * block_size + n) + n;
    return b * entries * sizeof(Scalar);
  }
};

/// Diagonal affine scan, y_t[i] = a_t[i] y_prev[i] + b_t[i], in place over b.
/// An empty `a` means the constant coefficient `constant_a` for every step
/// (1 gives a prefix sum). An empty `y0` means zero.
template <class Space, class Scalar>
void diagonal_scan(const Space& space, const SequenceView<Scalar, Space>& a, const SequenceView<Scalar, Space>& b,
                   const StateView<Scalar, Space>& y0, int chunks, ScanWorkspace<Scalar, Space>& workspace,
                   TimeOrder order = TimeOrder::forward, Scalar constant_a = Scalar(1)) {
  const int batch = static_cast<int>(b.extent(0));
  const int length = static_cast<int>(b.extent(1));
  const int n = static_cast<int>(b.extent(2));
  if (length == 0 || n == 0 || batch == 0) return;
  detail::check_chunks(chunks, length);

  constexpr int width = detail::DiagonalScanWidth<Space>::value;
  const int blocks = (n + width - 1) / width;
  const int chunk_length = (length + chunks - 1) / chunks;
  const bool has_y0 = y0.extent(0) > 0;
  const bool constant = a.extent(0) == 0;
  const bool reverse = order == TimeOrder::reverse;
  workspace.reserve(batch, chunks, n, n, false);
  const auto product = workspace.product;
  const auto offset = workspace.offset;
  const auto carry = workspace.carry;

  // Phase 1: each chunk but the last composes its maps from the identity (1, 0).
  if (chunks > 1) {
    Kokkos::parallel_for(
        "parascan::diagonal_scan::reduce", Kokkos::RangePolicy<Space>(space, 0, batch * blocks * (chunks - 1)),
        KOKKOS_LAMBDA(const int item) {
          const int c = item % (chunks - 1);
          const int block = (item / (chunks - 1)) % blocks;
          const int s = item / ((chunks - 1) * blocks);
          const int i0 = block * width;
          const int count = n - i0 < width ? n - i0 : width;
          Scalar p[width];
          Scalar q[width];
          for (int k = 0; k < width; ++k) {
            p[k] = Scalar(1);
            q[k] = Scalar(0);
          }
          const int end = detail::chunk_begin(c + 1, chunk_length, length);
          for (int step = detail::chunk_begin(c, chunk_length, length); step < end; ++step) {
            const int t = detail::physical_time(step, length, reverse);
            const Scalar* bt = &b(s, t, i0);
            for (int k = 0; k < count; ++k) {
              const Scalar at = constant ? constant_a : a(s, t, i0 + k);
              p[k] = at * p[k];
              q[k] = at * q[k] + bt[k];
            }
          }
          for (int k = 0; k < count; ++k) {
            product(s, c, i0 + k) = p[k];
            offset(s, c, i0 + k) = q[k];
          }
        });
  }

  // Phase 2: start values of every chunk, in time order.
  Kokkos::parallel_for(
      "parascan::diagonal_scan::carry", Kokkos::RangePolicy<Space>(space, 0, batch * n), KOKKOS_LAMBDA(const int item) {
        const int i = item % n;
        const int s = item / n;
        Scalar y = has_y0 ? y0(s, i) : Scalar(0);
        for (int c = 0; c < chunks; ++c) {
          carry(s, c, i) = y;
          if (c + 1 < chunks) y = product(s, c, i) * y + offset(s, c, i);
        }
      });

  // Phase 3: every chunk reruns from its start value and writes y over b.
  Kokkos::parallel_for(
      "parascan::diagonal_scan::fixup", Kokkos::RangePolicy<Space>(space, 0, batch * blocks * chunks),
      KOKKOS_LAMBDA(const int item) {
        const int c = item % chunks;
        const int block = (item / chunks) % blocks;
        const int s = item / (chunks * blocks);
        const int i0 = block * width;
        const int count = n - i0 < width ? n - i0 : width;
        Scalar y[width];
        for (int k = 0; k < count; ++k) y[k] = carry(s, c, i0 + k);
        const int end = detail::chunk_begin(c + 1, chunk_length, length);
        for (int step = detail::chunk_begin(c, chunk_length, length); step < end; ++step) {
          const int t = detail::physical_time(step, length, reverse);
          Scalar* bt = &b(s, t, i0);
          for (int k = 0; k < count; ++k) {
            const Scalar at = constant ? constant_a : a(s, t, i0 + k);
            y[k] = at * y[k] + bt[k];
            bt[k] = y[k];
          }
        }
      });
}

/// Block-diagonal affine scan: n / bs independent bs × bs blocks, A_t stored
/// in the block layout (row i holds the bs entries of its block, so block k
/// is a contiguous row-major bs × bs matrix at offset k·bs²). bs = n is the
/// dense scan. In place over b; an empty `y0` means zero.
template <class Space, class Scalar>
void block_scan(const Space& space, const SequenceView<Scalar, Space>& a, const SequenceView<Scalar, Space>& b,
                const StateView<Scalar, Space>& y0, int block_size, int chunks,
                ScanWorkspace<Scalar, Space>& workspace, TimeOrder order = TimeOrder::forward) {
  const int batch = static_cast<int>(b.extent(0));
  const int length = static_cast<int>(b.extent(1));
  const int n = static_cast<int>(b.extent(2));
  if (length == 0 || n == 0 || batch == 0) return;
  detail::check_chunks(chunks, length);
  const int bs = block_size;
  if (bs < 1 || n % bs != 0)
    throw std::invalid_argument("block size " + std::to_string(bs) + " does not divide state size " +
                                std::to_string(n));
  if (a.extent(2) != static_cast<std::size_t>(n) * bs)
    throw std::invalid_argument("block scan expects " + std::to_string(n * bs) + " Jacobian entries per step, found " +
                                std::to_string(a.extent(2)));

  const int blocks = n / bs;
  const int square = bs * bs;
  const int chunk_length = (length + chunks - 1) / chunks;
  const bool has_y0 = y0.extent(0) > 0;
  const bool reverse = order == TimeOrder::reverse;
  workspace.reserve(batch, chunks, n, n * bs, true);
  const auto product = workspace.product;
  const auto product_next = workspace.product_next;
  const auto offset = workspace.offset;
  const auto offset_next = workspace.offset_next;
  const auto carry = workspace.carry;

  // Phase 1: (P, q) ← (A_t, b_t) ∘ (P, q) through each chunk but the last,
  // starting from the identity (I, 0). The left factor is the later step.
  if (chunks > 1) {
    Kokkos::parallel_for(
        "parascan::block_scan::reduce", Kokkos::RangePolicy<Space>(space, 0, batch * blocks * (chunks - 1)),
        KOKKOS_LAMBDA(const int item) {
          const int c = item % (chunks - 1);
          const int k = (item / (chunks - 1)) % blocks;
          const int s = item / ((chunks - 1) * blocks);
          Scalar* p = &product(s, c, k * square);
          Scalar* p_next = &product_next(s, c, k * square);
          Scalar* q = &offset(s, c, k * bs);
          Scalar* q_next = &offset_next(s, c, k * bs);
          for (int i = 0; i < bs; ++i) {
            q[i] = Scalar(0);
            for (int j = 0; j < bs; ++j) p[i * bs + j] = i == j ? Scalar(1) : Scalar(0);
          }
          const int end = detail::chunk_begin(c + 1, chunk_length, length);
          for (int step = detail::chunk_begin(c, chunk_length, length); step < end; ++step) {
            const int t = detail::physical_time(step, length, reverse);
            const Scalar* at = &a(s, t, k * square);
            const Scalar* bt = &b(s, t, k * bs);
            for (int i = 0; i < bs; ++i) {
              Scalar qi = bt[i];
              for (int l = 0; l < bs; ++l) qi += at[i * bs + l] * q[l];
              q_next[i] = qi;
              for (int j = 0; j < bs; ++j) p_next[i * bs + j] = Scalar(0);
              for (int l = 0; l < bs; ++l) {
                const Scalar ail = at[i * bs + l];
                for (int j = 0; j < bs; ++j) p_next[i * bs + j] += ail * p[l * bs + j];
              }
            }
            Scalar* swap = p;
            p = p_next;
            p_next = swap;
            swap = q;
            q = q_next;
            q_next = swap;
          }
          // The result must end in product/offset, whichever buffer contains it now.
          if (p != &product(s, c, k * square)) {
            for (int i = 0; i < square; ++i) product(s, c, k * square + i) = p[i];
            for (int i = 0; i < bs; ++i) offset(s, c, k * bs + i) = q[i];
          }
        });
  }

  // Phase 2: start values of every chunk, in time order.
  Kokkos::parallel_for(
      "parascan::block_scan::carry", Kokkos::RangePolicy<Space>(space, 0, batch * blocks), KOKKOS_LAMBDA(const int item) {
        const int k = item % blocks;
        const int s = item / blocks;
        for (int i = 0; i < bs; ++i) carry(s, 0, k * bs + i) = has_y0 ? y0(s, k * bs + i) : Scalar(0);
        for (int c = 0; c + 1 < chunks; ++c) {
          for (int i = 0; i < bs; ++i) {
            Scalar yi = offset(s, c, k * bs + i);
            for (int l = 0; l < bs; ++l) yi += product(s, c, k * square + i * bs + l) * carry(s, c, k * bs + l);
            carry(s, c + 1, k * bs + i) = yi;
          }
        }
      });

  // Phase 3: every chunk reruns from its start value; y_t overwrites b_t, and
  // the previous value is read from the row written one step earlier.
  Kokkos::parallel_for(
      "parascan::block_scan::fixup", Kokkos::RangePolicy<Space>(space, 0, batch * blocks * chunks),
      KOKKOS_LAMBDA(const int item) {
        const int c = item % chunks;
        const int k = (item / chunks) % blocks;
        const int s = item / (chunks * blocks);
        const int begin = detail::chunk_begin(c, chunk_length, length);
        const int end = detail::chunk_begin(c + 1, chunk_length, length);
        for (int step = begin; step < end; ++step) {
          const int t = detail::physical_time(step, length, reverse);
          const int t_previous = detail::physical_time(step - 1, length, reverse);
          const Scalar* at = &a(s, t, k * square);
          const Scalar* previous = step == begin ? &carry(s, c, k * bs) : &b(s, t_previous, k * bs);
          Scalar* bt = &b(s, t, k * bs);
          for (int i = 0; i < bs; ++i) {
            Scalar yi = bt[i];
            for (int l = 0; l < bs; ++l) yi += at[i * bs + l] * previous[l];
            bt[i] = yi;
          }
        }
      });
}

/// Dense affine scan: the block scan with one n × n block.
template <class Space, class Scalar>
void dense_scan(const Space& space, const SequenceView<Scalar, Space>& a, const SequenceView<Scalar, Space>& b,
                const StateView<Scalar, Space>& y0, int chunks, ScanWorkspace<Scalar, Space>& workspace,
                TimeOrder order = TimeOrder::forward) {
  block_scan(space, a, b, y0, static_cast<int>(b.extent(2)), chunks, workspace, order);
}

}  // namespace parascan
