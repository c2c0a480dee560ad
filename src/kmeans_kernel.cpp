// Score micro-kernel: ||c_j||^2 - 2 x.c_j for a tile of rows against a panel of packed centres.
//
// Every dot product is one float32 FMA chain over t = 0 .. d-1 starting from zero, whatever the
// instruction set, tile shape or the position of the row in its block. That makes a score a
// function of (x_i, c_j) alone, so the bounded algorithms (Hamerly, Yinyang), which rescore single
// rows or single centres, pick exactly the centre Lloyd's blocked pass picks, and a plain scalar
// std::fma loop reproduces every bit (the tests compare against one).
//
// The vector width is chosen at build time: AVX-512F, else AVX2 + FMA, else a portable array of
// lanes evaluated with std::fma (same bits, much slower).

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "kmeans_internal.hpp"

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

namespace icp::kmeans_detail {

namespace {

#if defined(__AVX512F__)
using V = __m512;
inline V vzero() noexcept {
  return _mm512_setzero_ps();
}
inline V vload(const float* p) noexcept {
  return _mm512_loadu_ps(p);
}
inline V vbroadcast(const float* p) noexcept {
  return _mm512_set1_ps(*p);
}
inline V vfma(V a, V b, V c) noexcept {
  return _mm512_fmadd_ps(a, b, c);
}
inline V vscore(V norm, V dot) noexcept {
  return _mm512_sub_ps(norm, _mm512_add_ps(dot, dot));
}
inline void vstore(float* p, V v) noexcept {
  _mm512_storeu_ps(p, v);
}
using VI = __m512i;
using M = __mmask16;
inline VI iota_lanes(std::int32_t base) noexcept {
  return _mm512_add_epi32(_mm512_set1_epi32(base),
                          _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
}
inline M vless(V a, V b) noexcept {
  return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ);
}
inline V vselect(M m, V yes, V no) noexcept {
  return _mm512_mask_blend_ps(m, no, yes);
}
inline VI iselect(M m, VI yes, VI no) noexcept {
  return _mm512_mask_blend_epi32(m, no, yes);
}
inline void istore(std::int32_t* p, VI v) noexcept {
  _mm512_storeu_si512(p, v);
}
/// Index of the lexicographically smallest (score, index) over both vectors, without branches.
// GCC 12's _mm512_reduce_* helpers start from an undefined vector and trip -Wuninitialized
// (the same family of false positives as GCC PR 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
inline std::int32_t lex_argmin(V v0, VI i0, V v1, VI i1) noexcept {
  const M take = _mm512_cmp_ps_mask(v1, v0, _CMP_LT_OQ) |
                 (_mm512_cmp_ps_mask(v1, v0, _CMP_EQ_OQ) & _mm512_cmplt_epi32_mask(i1, i0));
  const V v = _mm512_mask_blend_ps(take, v0, v1);
  const VI i = _mm512_mask_blend_epi32(take, i0, i1);
  const M low = _mm512_cmp_ps_mask(v, _mm512_set1_ps(_mm512_reduce_min_ps(v)), _CMP_EQ_OQ);
  return _mm512_mask_reduce_min_epi32(low, i);
}
#pragma GCC diagnostic pop
#define ICP_HAVE_LEX_ARGMIN 1
// 32 registers: 8 rows x 2 vectors of accumulators, 2 centre vectors and a broadcast.
constexpr int kTileRows = 8;
#elif defined(__AVX2__) && defined(__FMA__)
using V = __m256;
inline V vzero() noexcept {
  return _mm256_setzero_ps();
}
inline V vload(const float* p) noexcept {
  return _mm256_loadu_ps(p);
}
inline V vbroadcast(const float* p) noexcept {
  return _mm256_broadcast_ss(p);
}
inline V vfma(V a, V b, V c) noexcept {
  return _mm256_fmadd_ps(a, b, c);
}
inline V vscore(V norm, V dot) noexcept {
  return _mm256_sub_ps(norm, _mm256_add_ps(dot, dot));
}
inline void vstore(float* p, V v) noexcept {
  _mm256_storeu_ps(p, v);
}
using VI = __m256i;
using M = __m256;
inline VI iota_lanes(std::int32_t base) noexcept {
  return _mm256_add_epi32(_mm256_set1_epi32(base), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
inline M vless(V a, V b) noexcept {
  return _mm256_cmp_ps(a, b, _CMP_LT_OQ);
}
inline V vselect(M m, V yes, V no) noexcept {
  return _mm256_blendv_ps(no, yes, m);
}
inline VI iselect(M m, VI yes, VI no) noexcept {
  return _mm256_blendv_epi8(no, yes, _mm256_castps_si256(m));
}
inline void istore(std::int32_t* p, VI v) noexcept {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v);
}
// 16 registers: 6 rows x 2 vectors of accumulators, 2 centre vectors and a broadcast.
constexpr int kTileRows = 6;
#else
struct V {
  float v[kScoreLanes];
};
inline V vzero() noexcept {
  return V{};
}
inline V vload(const float* p) noexcept {
  V r;
  std::memcpy(r.v, p, sizeof r.v);
  return r;
}
inline V vbroadcast(const float* p) noexcept {
  V r;
  for (float& x : r.v) x = *p;
  return r;
}
inline V vfma(V a, V b, V c) noexcept {
  for (std::size_t l = 0; l < kScoreLanes; ++l) c.v[l] = std::fma(a.v[l], b.v[l], c.v[l]);
  return c;
}
inline V vscore(V norm, V dot) noexcept {
  for (std::size_t l = 0; l < kScoreLanes; ++l) norm.v[l] -= dot.v[l] + dot.v[l];
  return norm;
}
inline void vstore(float* p, V v) noexcept {
  std::memcpy(p, v.v, sizeof v.v);
}
struct VI {
  std::int32_t v[kScoreLanes];
};
struct M {
  bool v[kScoreLanes];
};
inline VI iota_lanes(std::int32_t base) noexcept {
  VI r;
  for (std::size_t l = 0; l < kScoreLanes; ++l) r.v[l] = base + static_cast<std::int32_t>(l);
  return r;
}
inline M vless(V a, V b) noexcept {
  M m;
  for (std::size_t l = 0; l < kScoreLanes; ++l) m.v[l] = a.v[l] < b.v[l];
  return m;
}
inline V vselect(M m, V yes, V no) noexcept {
  for (std::size_t l = 0; l < kScoreLanes; ++l) no.v[l] = m.v[l] ? yes.v[l] : no.v[l];
  return no;
}
inline VI iselect(M m, VI yes, VI no) noexcept {
  for (std::size_t l = 0; l < kScoreLanes; ++l) no.v[l] = m.v[l] ? yes.v[l] : no.v[l];
  return no;
}
inline void istore(std::int32_t* p, VI v) noexcept {
  std::memcpy(p, v.v, sizeof v.v);
}
constexpr int kTileRows = 4;
#endif

static_assert(sizeof(V) == kScoreLanes * sizeof(float), "kScoreLanes must match the vector type");

/// R rows (stride ldx) against one packed panel, H of its two vectors of centres: a last panel
/// with at most kScoreLanes live centres (k = 10 is one vector of 16) skips the padding vector,
/// which halves the FMAs of a small-k step. Only the first H * kScoreLanes scores are written.
template <int R, int H>
inline void tile(const float* x, std::size_t ldx, const float* panel, const float* norm,
                 std::size_t d, float* out, std::size_t ldo) noexcept {
  static_assert(H == 1 || H == 2);
  V acc[R][H];
  for (int r = 0; r < R; ++r)
    for (int h = 0; h < H; ++h) acc[r][h] = vzero();
  for (std::size_t t = 0; t < d; ++t) {
    V cv[H];
    for (int h = 0; h < H; ++h) cv[h] = vload(panel + t * kPanelWidth + h * kScoreLanes);
    for (int r = 0; r < R; ++r) {
      const V xb = vbroadcast(x + static_cast<std::size_t>(r) * ldx + t);
      for (int h = 0; h < H; ++h) acc[r][h] = vfma(xb, cv[h], acc[r][h]);
    }
  }
  for (int h = 0; h < H; ++h) {
    const V nv = vload(norm + h * kScoreLanes);
    for (int r = 0; r < R; ++r)
      vstore(out + static_cast<std::size_t>(r) * ldo + h * kScoreLanes, vscore(nv, acc[r][h]));
  }
}

/// Vectors of panel p that hold a live centre: 1 when the last panel's centres fit in one.
inline int live_vectors(const PackedCentres& c, std::size_t p) noexcept {
  return p + 1 == c.panels && c.k - p * kPanelWidth <= kScoreLanes ? 1 : 2;
}

/// Running per-lane minimum of R rows across panels: lane l of slot h holds the smallest score
/// seen at centre index p * kPanelWidth + h * kScoreLanes + l and that index (strict <, so ties
/// keep the earlier panel, i.e. the lower index).
template <int R>
struct RunningMin {
  V val[R][2];
  VI idx[R][2];
};

template <int R, int H>
inline void tile_min(const float* x, std::size_t ldx, const float* panel, const float* norm,
                     std::size_t d, std::int32_t base, RunningMin<R>& best) noexcept {
  static_assert(H == 1 || H == 2);
  V acc[R][H];
  for (int r = 0; r < R; ++r)
    for (int h = 0; h < H; ++h) acc[r][h] = vzero();
  for (std::size_t t = 0; t < d; ++t) {
    V cv[H];
    for (int h = 0; h < H; ++h) cv[h] = vload(panel + t * kPanelWidth + h * kScoreLanes);
    for (int r = 0; r < R; ++r) {
      const V xb = vbroadcast(x + static_cast<std::size_t>(r) * ldx + t);
      for (int h = 0; h < H; ++h) acc[r][h] = vfma(xb, cv[h], acc[r][h]);
    }
  }
  // A skipped padding vector leaves its running minimum at +inf, which is what its scores were.
  for (int h = 0; h < H; ++h) {
    const V nv = vload(norm + h * kScoreLanes);
    const VI iv = iota_lanes(base + h * static_cast<std::int32_t>(kScoreLanes));
    for (int r = 0; r < R; ++r) {
      const V sv = vscore(nv, acc[r][h]);
      const M m = vless(sv, best.val[r][h]);
      best.val[r][h] = vselect(m, sv, best.val[r][h]);
      best.idx[r][h] = iselect(m, iv, best.idx[r][h]);
    }
  }
}

template <int R>
inline void argmin_tile(const float* x, std::size_t ldx, const PackedCentres& c,
                        std::int32_t* out) noexcept {
  RunningMin<R> best;
  const float inf = std::numeric_limits<float>::infinity();
  for (int r = 0; r < R; ++r) {
    best.val[r][0] = vbroadcast(&inf);
    best.val[r][1] = vbroadcast(&inf);
    best.idx[r][0] = iota_lanes(0);
    best.idx[r][1] = iota_lanes(static_cast<std::int32_t>(kScoreLanes));
  }
  for (std::size_t p = 0; p < c.panels; ++p) {
    const float* panel = c.data.data() + p * c.d * kPanelWidth;
    const float* norm = c.norm.data() + p * kPanelWidth;
    const auto base = static_cast<std::int32_t>(p * kPanelWidth);
    if (live_vectors(c, p) == 1)
      tile_min<R, 1>(x, ldx, panel, norm, c.d, base, best);
    else
      tile_min<R, 2>(x, ldx, panel, norm, c.d, base, best);
  }
#ifdef ICP_HAVE_LEX_ARGMIN
  for (int r = 0; r < R; ++r) {
    out[r] = lex_argmin(best.val[r][0], best.idx[r][0], best.val[r][1], best.idx[r][1]);
  }
#else
  float vals[kPanelWidth];
  std::int32_t idxs[kPanelWidth];
  for (int r = 0; r < R; ++r) {
    vstore(vals, best.val[r][0]);
    vstore(vals + kScoreLanes, best.val[r][1]);
    istore(idxs, best.idx[r][0]);
    istore(idxs + kScoreLanes, best.idx[r][1]);
    std::size_t pick = 0;
    for (std::size_t l = 1; l < kPanelWidth; ++l) {
      if (vals[l] < vals[pick] || (vals[l] == vals[pick] && idxs[l] < idxs[pick])) pick = l;
    }
    out[r] = idxs[pick];
  }
#endif
}

}  // namespace

void argmin_rows(const float* x, std::size_t rows, std::size_t ldx, const PackedCentres& c,
                 std::int32_t* out) noexcept {
  constexpr auto kR = static_cast<std::size_t>(kTileRows);
  std::size_t r = 0;
  for (; r + kR <= rows; r += kR) argmin_tile<kTileRows>(x + r * ldx, ldx, c, out + r);
  for (; r < rows; ++r) argmin_tile<1>(x + r * ldx, ldx, c, out + r);
}

float centre_norm(const float* c, std::size_t d) noexcept {
  double s = 0.0;
  for (std::size_t t = 0; t < d; ++t) s += static_cast<double>(c[t]) * c[t];
  return static_cast<float>(s);
}

PackedCentres pack_centres(MatrixView centroids) {
  PackedCentres p;
  p.k = centroids.rows;
  p.d = centroids.cols;
  p.panels = (p.k + kPanelWidth - 1) / kPanelWidth;
  p.data.assign(p.panels * p.d * kPanelWidth, 0.0f);
  // Padding slots score +inf (inf - 2 * 0), so a strict-< scan never picks them.
  p.norm.assign(p.panels * kPanelWidth, std::numeric_limits<float>::infinity());
  for (std::size_t j = 0; j < p.k; ++j) {
    const std::size_t panel = j / kPanelWidth;
    const std::size_t lane = j % kPanelWidth;
    const float* c = centroids.row(j);
    float* dst = p.data.data() + panel * p.d * kPanelWidth + lane;
    for (std::size_t t = 0; t < p.d; ++t) dst[t * kPanelWidth] = c[t];
    p.norm[j] = centre_norm(c, p.d);
  }
  return p;
}

template <int R>
inline void score_tile(const float* x, std::size_t ldx, const PackedCentres& c, float* out,
                       std::size_t ldo) noexcept {
  for (std::size_t p = 0; p < c.panels; ++p) {
    const float* panel = c.data.data() + p * c.d * kPanelWidth;
    const float* norm = c.norm.data() + p * kPanelWidth;
    if (live_vectors(c, p) == 1)
      tile<R, 1>(x, ldx, panel, norm, c.d, out + p * kPanelWidth, ldo);
    else
      tile<R, 2>(x, ldx, panel, norm, c.d, out + p * kPanelWidth, ldo);
  }
}

void score_rows(const float* x, std::size_t rows, std::size_t ldx, const PackedCentres& c,
                float* out, std::size_t ldo) noexcept {
  constexpr auto kR = static_cast<std::size_t>(kTileRows);
  std::size_t r = 0;
  for (; r + kR <= rows; r += kR) score_tile<kTileRows>(x + r * ldx, ldx, c, out + r * ldo, ldo);
  for (; r < rows; ++r) score_tile<1>(x + r * ldx, ldx, c, out + r * ldo, ldo);
}

float score_one(const float* x, const float* c, float norm, std::size_t d) noexcept {
  float dot = 0.0f;
  for (std::size_t t = 0; t < d; ++t) dot = std::fma(x[t], c[t], dot);
  return norm - (dot + dot);
}

}  // namespace icp::kmeans_detail
