// Host–device copies and the error measure shared by the scan tests.
#pragma once

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "parascan/scan.hpp"

namespace parascan::testing {

/// A (batch, length, entries) view in Space's memory holding `values`, row-major.
template <class Space>
SequenceView<double, Space> to_device(const std::vector<double>& values, int batch, int length, int entries) {
  SequenceView<double, Space> view("values", batch, length, entries);
  auto host = Kokkos::create_mirror_view(view);
  for (std::size_t i = 0; i < values.size(); ++i) host.data()[i] = values[i];
  Kokkos::deep_copy(view, host);
  return view;
}

template <class View>
std::vector<double> to_host(const View& view) {
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), view);
  return std::vector<double>(host.data(), host.data() + host.size());
}

/// Largest |got - expected| / (1 + |expected|); infinity if any entry is not finite.
inline double relative_error(const std::vector<double>& got, const std::vector<double>& expected) {
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double e = std::abs(got[i] - expected[i]) / (1 + std::abs(expected[i]));
    worst = std::isfinite(e) ? std::max(worst, e) : INFINITY;
  }
  return worst;
}

}  // namespace parascan::testing
