// Chunked affine scans: y_t = A_t y_{t-1} + b_t for t = 0 .. T-1 with
// y_{-1} = y0, or, in reverse, y_t = A_t y_{t+1} + b_t with y_T = y0.
//
// Affine maps compose as (A2, b2) ∘ (A1, b1) = (A2 A1, A2 b1 + b2). That is
// associative but not commutative, and Kokkos::parallel_scan assumes a
// commutative join (its Serial backend never calls join at all), so parascan
// orders the composition itself over C time chunks:
//   1. reduce: chunk 0 runs its recurrence from y0, writing y_t over b_t and
//      its last value as chunk 1's start; every other chunk but the last
//      composes its own maps from the identity (I, 0), giving (P_c, q_c) =
//      the chunk's product and its response to a zero start; all in parallel;
//   2. carry: one pass over the chunks in time order computes each chunk's
//      start value, carry_{c+1} = P_c carry_c + q_c for c >= 1;
//   3. fix-up: chunks 1 .. C-1 rerun their recurrence from their carry, in
//      parallel, writing y_t over b_t.
// Phases 1 and 3 both have C - 1 chunks of work, so C = F + 1 chunks keep F
// workers busy in both. No phase divides by a product of A, so decays that
// underflow to zero give zeros, never NaN. C = 1 is one sequential pass.
//
// A work item walks time over a contiguous range of rows (channels, or whole
// blocks) of one sequence. On a host the range is the whole row, and time
// chunks supply the parallelism that a small batch lacks. Two threads sharing
// each row (halves of 32 floats or more) reached only 0.25-0.35 of a copy's
// bandwidth, against 0.9 for whole rows in 3 chunks; 16-float ranges reached
// 0.10 (BENCHMARKS.md). On a device, one row (or block) per thread lets
// neighbouring threads coalesce instead.
//
// "Time order" below means the order of the recurrence: increasing t
// forward, decreasing t in reverse. Chunk 0 is always the first in that order.
#pragma once

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace parascan {

/// Time-major buffers: (batch, time, entries per step), contiguous per step.
template <class Scalar, class Space>
using SequenceView = Kokkos::View<Scalar***, Kokkos::LayoutRight, typename Space::memory_space>;

/// Initial values y0: (batch, state).
template <class Scalar, class Space>
using StateView = Kokkos::View<Scalar**, Kokkos::LayoutRight, typename Space::memory_space>;

enum class TimeOrder { forward, reverse };

namespace detail {

template <class Space>
constexpr bool runs_on_host = std::is_same<typename Space::memory_space, Kokkos::HostSpace>::value;

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

/// Distance, in steps, at which a reverse host walk requests its rows. The
/// development machine's prefetchers follow descending streams poorly. From
/// memory the reverse diagonal scan ran at 15 GB/s against 38 forward, and at
/// 34 with these requests (T = 2^20, n = 64). 32 steps measured the same as 8.
constexpr int kReversePrefetchSteps = 8;

/// Requests `count` values from p on into the cache. Does nothing on a device.
template <class Scalar>
KOKKOS_INLINE_FUNCTION void prefetch(const Scalar* p, long count) {
#if defined(__GNUC__) && !defined(__CUDA_ARCH__)
  const char* bytes = reinterpret_cast<const char*>(p);
  for (long offset = 0; offset < count * static_cast<long>(sizeof(Scalar)); offset += 64)
    __builtin_prefetch(bytes + offset);
#else
  (void)p;
  (void)count;
#endif
}

inline void check_chunks(int chunks, int length) {
  if (chunks < 1 || chunks > std::max(length, 1))
    throw std::invalid_argument("scan chunk count " + std::to_string(chunks) + " is outside [1, " +
                                std::to_string(std::max(length, 1)) + "] for sequence length " +
                                std::to_string(length));
}

/// y[k] = a[k] prev[k] + y[k] over `count` rows; a null `a` means `constant_a`.
/// prev and y are different time steps, so the pointers never overlap.
template <class Scalar>
KOKKOS_INLINE_FUNCTION void diagonal_step(const Scalar* KOKKOS_RESTRICT a, Scalar constant_a,
                                          const Scalar* KOKKOS_RESTRICT prev, Scalar* KOKKOS_RESTRICT y, int count) {
  if (a) {
    for (int k = 0; k < count; ++k) y[k] = a[k] * prev[k] + y[k];
  } else {
    for (int k = 0; k < count; ++k) y[k] = constant_a * prev[k] + y[k];
  }
}

/// (p, q) ← (a, b) ∘ (p, q) over `count` rows of a diagonal map.
template <class Scalar>
KOKKOS_INLINE_FUNCTION void diagonal_compose(const Scalar* KOKKOS_RESTRICT a, Scalar constant_a,
                                             const Scalar* KOKKOS_RESTRICT b, Scalar* KOKKOS_RESTRICT p,
                                             Scalar* KOKKOS_RESTRICT q, int count) {
  if (a) {
    for (int k = 0; k < count; ++k) {
      p[k] = a[k] * p[k];
      q[k] = a[k] * q[k] + b[k];
    }
  } else {
    for (int k = 0; k < count; ++k) {
      p[k] = constant_a * p[k];
      q[k] = constant_a * q[k] + b[k];
    }
  }
}

/// y[i] += Σ_l A[i, l] prev[l] over `rows` rows of bs × bs blocks; row i of a
/// holds the bs entries of its block. BS > 0 fixes bs at compile time so the
/// inner loop unrolls; BS = 0 reads it from `bs`.
template <int BS, class Scalar>
KOKKOS_INLINE_FUNCTION void block_step(const Scalar* KOKKOS_RESTRICT a, const Scalar* KOKKOS_RESTRICT prev,
                                       Scalar* KOKKOS_RESTRICT y, int rows, int runtime_bs) {
  const int bs = BS > 0 ? BS : runtime_bs;
  for (int first = 0; first < rows; first += bs) {
    for (int i = first; i < first + bs; ++i) {
      Scalar yi = y[i];
      for (int l = 0; l < bs; ++l) yi += a[i * bs + l] * prev[first + l];
      y[i] = yi;
    }
  }
}

/// p_next = A p and q_next = A q + b over `rows` rows of bs × bs blocks; p
/// and p_next hold the blocks' products in the layout of A.
template <int BS, class Scalar>
KOKKOS_INLINE_FUNCTION void block_compose(const Scalar* KOKKOS_RESTRICT a, const Scalar* KOKKOS_RESTRICT b,
                                          const Scalar* KOKKOS_RESTRICT p, const Scalar* KOKKOS_RESTRICT q,
                                          Scalar* KOKKOS_RESTRICT p_next, Scalar* KOKKOS_RESTRICT q_next, int rows,
                                          int runtime_bs) {
  const int bs = BS > 0 ? BS : runtime_bs;
  for (int first = 0; first < rows; first += bs) {
    for (int i = first; i < first + bs; ++i) {
      Scalar qi = b[i];
      for (int l = 0; l < bs; ++l) qi += a[i * bs + l] * q[first + l];
      q_next[i] = qi;
      for (int j = 0; j < bs; ++j) {
        Scalar pij = Scalar(0);
        for (int l = 0; l < bs; ++l) pij += a[i * bs + l] * p[(first + l) * bs + j];
        p_next[i * bs + j] = pij;
      }
    }
  }
}

}  // namespace detail

/// Division of each sequence's rows among a scan's work items: `groups`
/// ranges of `group_rows` rows (whole blocks).
struct ScanRowGroups {
  int groups;
  int group_rows;
};

/// One range of whole rows on a host (see the file comment), one row or one
/// block per work item on a device.
template <class Space>
ScanRowGroups scan_row_groups(int state_dim, int block_size) {
  const int bs = std::max(block_size, 1);
  if (detail::runs_on_host<Space>) return {1, state_dim};
  return {state_dim / bs, bs};
}

/// Picks the time chunks per sequence from the parallelism that is missing:
/// one chunk when batch × row ranges already reach the space's concurrency,
/// otherwise F + 1 chunks for F = the missing factor (phases 1 and 3 each run
/// C - 1 chunks). Composing b × b blocks costs b^3 per step against b^2 for
/// the sequential pass, so block scans split time only when b is at most F.
/// On 2 threads, block 8 in 3 chunks ran at a quarter of one thread's speed.
template <class Space>
int auto_scan_chunks(const Space& space, int batch, int length, int state_dim, int block_size) {
  const long concurrency = space.concurrency();
  const int bs = std::max(block_size, 1);
  const ScanRowGroups layout = scan_row_groups<Space>(state_dim, bs);
  const long work_items = static_cast<long>(batch) * layout.groups;
  if (work_items >= concurrency) return 1;
  const long missing = (concurrency + work_items - 1) / work_items;
  if (bs > missing) return 1;
  // Chunks shorter than a few steps cost more in phase 2 than they save, and
  // two chunks run one after the other.
  const long chunks = std::min(missing + 1, static_cast<long>(std::max(1, length / 8)));
  return chunks < 3 ? 1 : static_cast<int>(chunks);
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

namespace detail {

/// The maps of a diagonal scan: a_t per row, or one constant for all.
template <class Scalar, class Space>
struct DiagonalMaps {
  static constexpr bool double_buffered = false;
  SequenceView<Scalar, Space> a;
  Scalar constant_a;
  bool constant;

  int block_size() const { return 1; }

  KOKKOS_INLINE_FUNCTION const Scalar* rows(int s, int t, int first) const {
    return constant ? nullptr : &a(s, t, first);
  }
  KOKKOS_INLINE_FUNCTION void prefetch_maps(int s, int t, int first, int count) const {
    if (!constant) prefetch(&a(s, t, first), count);
  }
  KOKKOS_INLINE_FUNCTION void step(int s, int t, int first, int count, const Scalar* prev, Scalar* y) const {
    diagonal_step(rows(s, t, first), constant_a, prev, y, count);
  }
  KOKKOS_INLINE_FUNCTION void compose(int s, int t, int first, int count, const Scalar* b, Scalar* p, Scalar* q,
                                      Scalar*, Scalar*) const {
    diagonal_compose(rows(s, t, first), constant_a, b, p, q, count);
  }
};

/// The maps of a block-diagonal scan; BS > 0 fixes the block size at compile time.
template <int BS, class Scalar, class Space>
struct BlockMaps {
  static constexpr bool double_buffered = true;
  SequenceView<Scalar, Space> a;
  int bs;

  int block_size() const { return bs; }

  KOKKOS_INLINE_FUNCTION void prefetch_maps(int s, int t, int first, int count) const {
    prefetch(&a(s, t, first * bs), static_cast<long>(count) * bs);
  }
  KOKKOS_INLINE_FUNCTION void step(int s, int t, int first, int count, const Scalar* prev, Scalar* y) const {
    block_step<BS>(&a(s, t, first * bs), prev, y, count, bs);
  }
  KOKKOS_INLINE_FUNCTION void compose(int s, int t, int first, int count, const Scalar* b, const Scalar* p,
                                      const Scalar* q, Scalar* p_next, Scalar* q_next) const {
    block_compose<BS>(&a(s, t, first * bs), b, p, q, p_next, q_next, count, bs);
  }
};

/// The three phases of the file comment for any maps that provide `step`
/// (y ← A_t prev + y over a range of rows) and `compose` ((P, q) ← (A_t, b_t) ∘ (P, q)).
template <class Space, class Scalar, class Maps>
void affine_scan(const Space& space, const Maps& maps, const SequenceView<Scalar, Space>& b,
                 const StateView<Scalar, Space>& y0, int chunks, ScanWorkspace<Scalar, Space>& workspace,
                 TimeOrder order) {
  const int batch = static_cast<int>(b.extent(0));
  const int length = static_cast<int>(b.extent(1));
  const int n = static_cast<int>(b.extent(2));
  const int bs = maps.block_size();
  const ScanRowGroups layout = scan_row_groups<Space>(n, bs);
  const int groups = layout.groups;
  const int group_rows = layout.group_rows;
  const int chunk_length = (length + chunks - 1) / chunks;
  const bool has_y0 = y0.extent(0) > 0;
  const bool reverse = order == TimeOrder::reverse;
  // Reverse host walks request the rows of step + kReversePrefetchSteps (see there).
  const bool prefetching = runs_on_host<Space> && reverse;
  const auto prefetch_step = KOKKOS_LAMBDA(int s, int step, int end, int first, int count) {
    if (!prefetching || step + kReversePrefetchSteps >= end) return;
    const int t = physical_time(step + kReversePrefetchSteps, length, reverse);
    prefetch(&b(s, t, first), count);
    maps.prefetch_maps(s, t, first, count);
  };
  workspace.reserve(batch, chunks, n, n * bs, Maps::double_buffered);
  const auto product = workspace.product;
  const auto product_next = workspace.product_next;
  const auto offset = workspace.offset;
  const auto offset_next = workspace.offset_next;
  const auto carry = workspace.carry;
  // Chunks 0 .. C-2 in phase 1; chunk 0 alone when C = 1.
  const int phase1_chunks = std::max(chunks - 1, 1);

  // Phase 1: chunk 0 from y0, the others to (P_c, q_c).
  Kokkos::parallel_for(
      "parascan::scan::reduce", Kokkos::RangePolicy<Space>(space, 0, batch * groups * phase1_chunks),
      KOKKOS_LAMBDA(const int item) {
        const int c = item % phase1_chunks;
        const int g = (item / phase1_chunks) % groups;
        const int s = item / (phase1_chunks * groups);
        const int first = g * group_rows;
        const int count = n - first < group_rows ? n - first : group_rows;
        const int begin = chunk_begin(c, chunk_length, length);
        const int end = chunk_begin(c + 1, chunk_length, length);
        if (c == 0) {
          Scalar* start = &carry(s, 0, first);
          for (int k = 0; k < count; ++k) start[k] = has_y0 ? y0(s, first + k) : Scalar(0);
          const Scalar* prev = start;
          for (int step = begin; step < end; ++step) {
            prefetch_step(s, step, end, first, count);
            Scalar* y = &b(s, physical_time(step, length, reverse), first);
            maps.step(s, physical_time(step, length, reverse), first, count, prev, y);
            prev = y;
          }
          if (chunks > 1)
            for (int k = 0; k < count; ++k) carry(s, 1, first + k) = prev[k];
          return;
        }
        Scalar* p = &product(s, c, first * bs);
        Scalar* q = &offset(s, c, first);
        for (int i = 0; i < count; ++i) {
          q[i] = Scalar(0);
          const int block_first = (i / bs) * bs;
          for (int j = 0; j < bs; ++j) p[i * bs + j] = block_first + j == i ? Scalar(1) : Scalar(0);
        }
        Scalar* p_next = Maps::double_buffered ? &product_next(s, c, first * bs) : p;
        Scalar* q_next = Maps::double_buffered ? &offset_next(s, c, first) : q;
        for (int step = begin; step < end; ++step) {
          prefetch_step(s, step, end, first, count);
          const int t = physical_time(step, length, reverse);
          maps.compose(s, t, first, count, &b(s, t, first), p, q, p_next, q_next);
          if (Maps::double_buffered) {
            Scalar* swap = p;
            p = p_next;
            p_next = swap;
            swap = q;
            q = q_next;
            q_next = swap;
          }
        }
        // The result must end in product/offset, whichever buffer contains it now.
        if (p != &product(s, c, first * bs)) {
          for (int i = 0; i < count * bs; ++i) product(s, c, first * bs + i) = p[i];
          for (int i = 0; i < count; ++i) offset(s, c, first + i) = q[i];
        }
      });
  if (chunks == 1) return;

  // Phase 2: start values of chunks 2 .. C-1, in time order, one block per item.
  if (chunks > 2) {
    Kokkos::parallel_for(
        "parascan::scan::carry", Kokkos::RangePolicy<Space>(space, 0, batch * (n / bs)), KOKKOS_LAMBDA(const int item) {
          const int first = (item % (n / bs)) * bs;
          const int s = item / (n / bs);
          for (int c = 1; c + 1 < chunks; ++c) {
            for (int i = first; i < first + bs; ++i) {
              Scalar yi = offset(s, c, i);
              for (int l = 0; l < bs; ++l) yi += product(s, c, i * bs + l) * carry(s, c, first + l);
              carry(s, c + 1, i) = yi;
            }
          }
        });
  }

  // Phase 3: chunks 1 .. C-1 rerun from their start values. Item j takes
  // chunk j, and item 0 the last chunk, so that with one item per thread the
  // thread that reduced chunk c in phase 1 also fixes it: its rows are still
  // in that core's cache, where writing them from another core first had to
  // take them over line by line (4 times slower in cache at T = 2^14).
  Kokkos::parallel_for(
      "parascan::scan::fixup", Kokkos::RangePolicy<Space>(space, 0, batch * groups * (chunks - 1)),
      KOKKOS_LAMBDA(const int item) {
        const int j = item % (chunks - 1);
        const int c = j == 0 ? chunks - 1 : j;
        const int g = (item / (chunks - 1)) % groups;
        const int s = item / ((chunks - 1) * groups);
        const int first = g * group_rows;
        const int count = n - first < group_rows ? n - first : group_rows;
        const Scalar* prev = &carry(s, c, first);
        const int end = chunk_begin(c + 1, chunk_length, length);
        for (int step = chunk_begin(c, chunk_length, length); step < end; ++step) {
          prefetch_step(s, step, end, first, count);
          Scalar* y = &b(s, physical_time(step, length, reverse), first);
          maps.step(s, physical_time(step, length, reverse), first, count, prev, y);
          prev = y;
        }
      });
}

}  // namespace detail

/// Diagonal affine scan, y_t[i] = a_t[i] y_prev[i] + b_t[i], in place over b.
/// An empty `a` means the constant coefficient `constant_a` for every step
/// (1 gives a prefix sum). An empty `y0` means zero.
template <class Space, class Scalar>
void diagonal_scan(const Space& space, const SequenceView<Scalar, Space>& a, const SequenceView<Scalar, Space>& b,
                   const StateView<Scalar, Space>& y0, int chunks, ScanWorkspace<Scalar, Space>& workspace,
                   TimeOrder order = TimeOrder::forward, Scalar constant_a = Scalar(1)) {
  if (b.extent(0) == 0 || b.extent(1) == 0 || b.extent(2) == 0) return;
  detail::check_chunks(chunks, static_cast<int>(b.extent(1)));
  const detail::DiagonalMaps<Scalar, Space> maps{a, constant_a, a.extent(0) == 0};
  detail::affine_scan(space, maps, b, y0, chunks, workspace, order);
}

/// Block-diagonal affine scan: n / bs independent bs × bs blocks, A_t stored
/// in the block layout (row i holds the bs entries of its block, so block k
/// is a contiguous row-major bs × bs matrix at offset k·bs²). bs = n is the
/// dense scan. In place over b; an empty `y0` means zero.
template <class Space, class Scalar>
void block_scan(const Space& space, const SequenceView<Scalar, Space>& a, const SequenceView<Scalar, Space>& b,
                const StateView<Scalar, Space>& y0, int block_size, int chunks,
                ScanWorkspace<Scalar, Space>& workspace, TimeOrder order = TimeOrder::forward) {
  const int length = static_cast<int>(b.extent(1));
  const int n = static_cast<int>(b.extent(2));
  if (length == 0 || n == 0 || b.extent(0) == 0) return;
  detail::check_chunks(chunks, length);
  const int bs = block_size;
  if (bs < 1 || n % bs != 0)
    throw std::invalid_argument("block size " + std::to_string(bs) + " does not divide state size " +
                                std::to_string(n));
  if (a.extent(2) != static_cast<std::size_t>(n) * bs)
    throw std::invalid_argument("block scan expects " + std::to_string(n * bs) + " Jacobian entries per step, found " +
                                std::to_string(a.extent(2)));
  // Block 2 (ParaRNN's GRU and LSTM pairs) unrolls; other sizes loop over bs.
  if (bs == 2) {
    detail::affine_scan(space, detail::BlockMaps<2, Scalar, Space>{a, bs}, b, y0, chunks, workspace, order);
  } else {
    detail::affine_scan(space, detail::BlockMaps<0, Scalar, Space>{a, bs}, b, y0, chunks, workspace, order);
  }
}

/// Dense affine scan: the block scan with one n × n block.
template <class Space, class Scalar>
void dense_scan(const Space& space, const SequenceView<Scalar, Space>& a, const SequenceView<Scalar, Space>& b,
                const StateView<Scalar, Space>& y0, int chunks, ScanWorkspace<Scalar, Space>& workspace,
                TimeOrder order = TimeOrder::forward) {
  block_scan(space, a, b, y0, static_cast<int>(b.extent(2)), chunks, workspace, order);
}

}  // namespace parascan
