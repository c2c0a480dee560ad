// Cluster moments in fixed point: sums that do not depend on the order rows arrive in.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "kmeans_internal.hpp"

namespace icp::kmeans_detail {

namespace {

/// Largest |scaled value|: 2^50, so kReduceChunkRows (2^12) of them fit an int64 with a bit to
/// spare, and round_scaled's magic-number rounding (exact below 2^51) applies.
constexpr int kScaledBits = 50;
static_assert(kReduceChunkRows <= (std::size_t{1} << (62 - kScaledBits)));

/// 2^f with max_abs * 2^f < 2^kScaledBits (1 for an all-zero column). The product v * 2^f of
/// any v the scale was taken over is exact in float64: no overflow, and v is a float or a
/// product of two, far above float64's underflow after scaling.
double scale_for(double max_abs) noexcept {
  if (!(max_abs > 0.0) || !std::isfinite(max_abs)) return 1.0;
  int e = 0;
  (void)std::frexp(max_abs, &e);  // max_abs < 2^e
  return std::ldexp(1.0, kScaledBits - e);
}

/// The integer nearest to v (ties to even), for |v| < 2^51: adding 1.5 * 2^52 leaves the integer
/// in the low mantissa bits. Unlike std::llrint this vectorises without AVX-512.
inline std::int64_t round_scaled(double v) noexcept {
  constexpr double kMagic = 0x1.8p52;
  const double t = v + kMagic;
  std::int64_t bits = 0;
  std::memcpy(&bits, &t, sizeof bits);
  std::int64_t magic_bits = 0;
  std::memcpy(&magic_bits, &kMagic, sizeof magic_bits);
  return bits - magic_bits;
}

/// The integers one row adds for column value x (weight wi when `weighted`) and for its squared
/// norm: one definition for the chunk pass and for single rows, so removing a row takes away
/// exactly what adding it gave. wi * x is exact (two floats); the power-of-two scale is exact.
inline std::int64_t quantize(float x, double wi, bool weighted, double scale) noexcept {
  const double v = static_cast<double>(x);
  return round_scaled((weighted ? wi * v : v) * scale);
}
inline std::int64_t quantize_norm(const float* x, std::size_t d, double wi, bool weighted,
                                  const MomentScales& scales) noexcept {
  const double q = row_sq_norm(x, d);
  return round_scaled((weighted ? wi * q : q) * scales.norm);
}

/// 32-bit limbs of a two's-complement 128-bit value, so a sum of int64s (reducer.sum) can carry
/// them: limb sums stay exact for up to 2^31 processes and wrap back into the right int128.
constexpr int kLimbs = 4;

void to_limbs(MomentInt v, std::int64_t* out) noexcept {
  auto u = static_cast<MomentUint>(v);
  for (int l = 0; l < kLimbs; ++l) {
    out[l] = static_cast<std::int64_t>(static_cast<std::uint64_t>(u & 0xFFFFFFFFu));
    u >>= 32;
  }
}

MomentInt from_limbs(const std::int64_t* in) noexcept {
  MomentUint u = 0;
  for (int l = kLimbs - 1; l >= 0; --l) {
    u = (u << 32) + static_cast<MomentUint>(static_cast<std::uint64_t>(in[l]));
  }
  return static_cast<MomentInt>(u);
}

}  // namespace

MomentScales moment_scales(const ColumnMoments& m, bool weighted) {
  // With weights the summed values are w * v: bounded by max w * max |v| (a product of two
  // floats is exact; the norm product rounds, but monotonically, so it still bounds each fl(w v)).
  const double wmax = weighted ? m.max_weight : 1.0;
  MomentScales s;
  s.coord.resize(m.max_abs.size());
  for (std::size_t t = 0; t < s.coord.size(); ++t) s.coord[t] = scale_for(wmax * m.max_abs[t]);
  s.norm = scale_for(wmax * m.max_norm);
  s.weight = scale_for(wmax);
  return s;
}

MomentScales moment_scales(MatrixView xc, std::span<const float> weight, Reducer& reducer) {
  return moment_scales(column_moments(xc, reducer, weight), !weight.empty());
}

void ChunkMoments::assign(MatrixView xc, std::span<const std::int32_t> labels,
                          std::span<const float> w, std::size_t begin, std::size_t end,
                          std::size_t k, const MomentScales& scales,
                          std::span<const std::int64_t> row_norm) {
  const std::size_t d = xc.cols;
  coord.assign(k * d, 0);
  norm.assign(k, 0);
  counts.assign(k, 0);
  weight.assign(w.empty() ? 0 : k, 0);
  const bool weighted = !w.empty();
  const double* sc = scales.coord.data();
  for (std::size_t i = begin; i < end; ++i) {
    const auto label = static_cast<std::size_t>(labels[i]);
    const float* x = xc.row(i);
    const double wi = weighted ? static_cast<double>(w[i]) : 1.0;
    std::int64_t* dst = coord.data() + label * d;
    for (std::size_t t = 0; t < d; ++t) dst[t] += quantize(x[t], wi, weighted, sc[t]);
    norm[label] += row_norm.empty() ? quantize_norm(x, d, wi, weighted, scales) : row_norm[i];
    if (weighted) weight[label] += round_scaled(wi * scales.weight);
    ++counts[label];
  }
}

ClusterMoments::ClusterMoments(std::size_t k, std::size_t d, bool weighted)
    : k_(k),
      d_(d),
      weighted_(weighted),
      coord_(k * d, 0),
      norm_(k, 0),
      weight_(weighted ? k : 0, 0),
      counts_(k, 0) {}

void ClusterMoments::add_row(std::size_t label, const float* x, float w, const MomentScales& scales,
                             int sign) {
  // The same quantize calls as ChunkMoments::assign, so a row removed here takes away exactly
  // the integers a chunk pass added for it.
  MomentInt* dst = coord_.data() + label * d_;
  const double wi = static_cast<double>(w);
  for (std::size_t t = 0; t < d_; ++t) {
    dst[t] += sign * static_cast<MomentInt>(quantize(x[t], wi, weighted_, scales.coord[t]));
  }
  norm_[label] += sign * static_cast<MomentInt>(quantize_norm(x, d_, wi, weighted_, scales));
  if (weighted_) weight_[label] += sign * static_cast<MomentInt>(round_scaled(wi * scales.weight));
  counts_[label] += sign;
}

template <class Sums>
void ClusterMoments::add_sums(const Sums& coord, const Sums& norm, const Sums& weight,
                              const std::vector<std::int64_t>& counts) {
  for (std::size_t t = 0; t < coord_.size(); ++t) coord_[t] += coord[t];
  for (std::size_t j = 0; j < k_; ++j) {
    norm_[j] += norm[j];
    counts_[j] += counts[j];
  }
  for (std::size_t j = 0; j < weight_.size(); ++j) weight_[j] += weight[j];
}

void ClusterMoments::add(const ChunkMoments& chunk) {
  add_sums(chunk.coord, chunk.norm, chunk.weight, chunk.counts);
}

ClusterMoments& ClusterMoments::operator+=(const ClusterMoments& other) {
  add_sums(other.coord_, other.norm_, other.weight_, other.counts_);
  return *this;
}

void ClusterMoments::reduce(Reducer& reducer) {
  if (reducer.size() == 1) return;
  std::vector<MomentInt*> wide;
  for (MomentInt& v : coord_) wide.push_back(&v);
  for (MomentInt& v : norm_) wide.push_back(&v);
  for (MomentInt& v : weight_) wide.push_back(&v);
  std::vector<std::int64_t> limbs(wide.size() * kLimbs + k_);
  for (std::size_t t = 0; t < wide.size(); ++t) to_limbs(*wide[t], limbs.data() + t * kLimbs);
  std::copy(counts_.begin(), counts_.end(),
            limbs.begin() + static_cast<std::ptrdiff_t>(wide.size() * kLimbs));
  reducer.sum(std::span<std::int64_t>(limbs));
  for (std::size_t t = 0; t < wide.size(); ++t) *wide[t] = from_limbs(limbs.data() + t * kLimbs);
  std::copy_n(limbs.begin() + static_cast<std::ptrdiff_t>(wide.size() * kLimbs), k_,
              counts_.begin());
}

ClusterSums ClusterMoments::sums(const MomentScales& scales) const {
  ClusterSums out;
  out.k = k_;
  out.d = d_;
  out.sums.resize(k_ * d_);
  // int128 -> double rounds once (to nearest); the division by a power of two is exact.
  for (std::size_t j = 0; j < k_; ++j) {
    for (std::size_t t = 0; t < d_; ++t) {
      out.sums[j * d_ + t] = static_cast<double>(coord_[j * d_ + t]) / scales.coord[t];
    }
  }
  if (weighted_) {
    out.weight_sums.resize(k_);
    for (std::size_t j = 0; j < k_; ++j)
      out.weight_sums[j] = static_cast<double>(weight_[j]) / scales.weight;
  }
  out.counts = counts_;
  return out;
}

double ClusterMoments::inertia(MatrixView centres, const MomentScales& scales) const {
  using Wide = long double;
  Wide total = 0.0L;
  for (std::size_t j = 0; j < k_; ++j) {
    if (counts_[j] == 0) continue;
    const float* c = centres.row(j);
    Wide cs = 0.0L;
    Wide cc = 0.0L;
    for (std::size_t t = 0; t < d_; ++t) {
      const Wide ct = static_cast<Wide>(c[t]);
      cs += ct * (static_cast<Wide>(coord_[j * d_ + t]) / static_cast<Wide>(scales.coord[t]));
      cc += ct * ct;
    }
    const Wide w = weighted_ ? static_cast<Wide>(weight_[j]) / static_cast<Wide>(scales.weight)
                             : static_cast<Wide>(counts_[j]);
    const Wide q = static_cast<Wide>(norm_[j]) / static_cast<Wide>(scales.norm);
    const Wide term = q - 2.0L * cs + w * cc;
    if (term > 0.0L) total += term;
  }
  return static_cast<double>(total);
}

std::vector<std::int64_t> quantized_norms(MatrixView xc, std::span<const float> w,
                                          const MomentScales& scales) {
  std::vector<std::int64_t> out(xc.rows);
  const bool weighted = !w.empty();
#pragma omp parallel for schedule(static) if (xc.rows > kReduceChunkRows)
  for (std::ptrdiff_t s = 0; s < static_cast<std::ptrdiff_t>(xc.rows); ++s) {
    const auto i = static_cast<std::size_t>(s);
    const double wi = weighted ? static_cast<double>(w[i]) : 1.0;
    out[i] = quantize_norm(xc.row(i), xc.cols, wi, weighted, scales);
  }
  return out;
}

const MomentScales& ensure_scales(MatrixView xc, LloydState& state, Reducer& reducer) {
  if (!state.scales.ready()) state.scales = moment_scales(xc, state.weight, reducer);
  if (state.row_norm.size() != xc.rows)
    state.row_norm = quantized_norms(xc, state.weight, state.scales);
  return state.scales;
}

}  // namespace icp::kmeans_detail
