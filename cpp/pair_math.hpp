// Per-pair arithmetic of the window geometry, shared by the CPU engine and the
// CUDA kernels (cuda/kernels.cu). Every function here is ANODIFF_HD: plain
// inline C++ for the host compiler, __host__ __device__ under nvcc. The CUDA
// kernels only add launch geometry and reductions around these functions, so
// testing them on the CPU (tests/test_gpu.py via anodiff._core) tests the
// arithmetic of the GPU path.
//
// Conventions (DESIGN.md, numerical contract). A window holds T points
// x(t) = w(t_w + t) - w(t_w), t = 0..T-1 (centred on its first row).
//   G[i*T + j] = x(i) . x(j)            row-major, symmetric, float64 (the Gram matrix)
//   P[t]       = sum_{k<t} |x(k+1) - x(k)|   (contour length from the start, P[0] = 0)
//   L[t]       = loss at step t_w + t
// Pair measures for 0 <= s < t < T:
//   dr2(s,t)   = |x(t) - x(s)|^2 = G_ss + G_tt - 2 G_st          (end-to-end, squared)
//   ds(s,t)    = P[t] - P[s]                                      (contour length)
//   h2(s,t)    = max_{s<u<t} |x(u) - line(x(s), x(t))|^2          (transverse distance, squared)
//   msl(s,t)   = (L[t] - L[s])^2                                  (squared loss difference)
// Binned curves use logarithmic bins [lo * (hi/lo)^(k/n), lo * (hi/lo)^((k+1)/n)).
//
// NOTE for the CPU pair kernels (branch `analyze`): include this header and
// call these functions, so that the two engines agree by construction.
#pragma once

#include <cmath>
#include <cstdint>

#include "geometry_hd.hpp"
#include "hd.hpp"

namespace anodiff {
namespace pair {

// |x(t) - x(s)|^2 from the Gram matrix; clamped at 0 (rounding of equal points).
ANODIFF_HD double delta_r2(const double* G, std::int64_t T, std::int64_t s, std::int64_t t) {
    return gram_sqdist(G[s * T + s], G[t * T + t], G[s * T + t]);  // the CPU kernels' formula
}

// (x(t) - x(s)) . (x(u) - x(s)) from the Gram matrix.
ANODIFF_HD double chord_dot(const double* G, std::int64_t T, std::int64_t s, std::int64_t t,
                            std::int64_t u) {
    return G[t * T + u] - G[t * T + s] - G[s * T + u] + G[s * T + s];
}

// Squared distance of x(u) from the straight line through x(s) and x(t):
//   |b|^2 - (a.b)^2 / |a|^2,  a = x(t) - x(s), b = x(u) - x(s).
// When x(s) == x(t) (no direction) it is the distance from the point x(s).
ANODIFF_HD double line_distance2(const double* G, std::int64_t T, std::int64_t s, std::int64_t t,
                                 std::int64_t u) {
    const double a2 = delta_r2(G, T, s, t);
    const double b2 = delta_r2(G, T, s, u);
    if (!(a2 > 0.0)) return b2;
    const double ab = chord_dot(G, T, s, t, u);
    const double v = b2 - ab * ab / a2;
    return v > 0.0 ? v : 0.0;
}

// Squared transverse distance of the pair (s, t): the largest squared distance
// of an intermediate point x(u), s < u < t, from the line through x(s), x(t).
// 0 when t - s < 2 (no intermediate point).
ANODIFF_HD double transverse_distance2(const double* G, std::int64_t T, std::int64_t s,
                                       std::int64_t t) {
    double best = 0.0;
    for (std::int64_t u = s + 1; u < t; ++u) {
        const double v = line_distance2(G, T, s, t, u);
        best = v > best ? v : best;
    }
    return best;
}

// Contour length between steps s and t from the prefix sums P of step lengths.
ANODIFF_HD double contour_length(const double* P, std::int64_t s, std::int64_t t) {
    return P[t] - P[s];
}

// Squared loss difference of the pair (the MSL summand).
ANODIFF_HD double msl_term(const double* L, std::int64_t s, std::int64_t t) {
    const double d = L[t] - L[s];
    return d * d;
}

// Logarithmic bins: n bins over [lo, hi), lo > 0.
struct LogBins {
    double log_lo;
    double inv_dlog;  // n / (log hi - log lo)
    std::int64_t n;
};

ANODIFF_HD LogBins make_log_bins(double lo, double hi, std::int64_t n) {
    LogBins b;
    b.log_lo = std::log(lo);
    b.inv_dlog = static_cast<double>(n) / (std::log(hi) - b.log_lo);
    b.n = n;
    return b;
}

// Bin of x, or -1 when x is outside [lo, hi), not positive or NaN.
ANODIFF_HD std::int64_t log_bin_index(double x, const LogBins& b) {
    if (!(x > 0.0)) return -1;
    const double v = (std::log(x) - b.log_lo) * b.inv_dlog;
    if (!(v >= 0.0) || !(v < static_cast<double>(b.n))) return -1;
    const std::int64_t k = static_cast<std::int64_t>(v);
    return k < b.n ? k : b.n - 1;
}

// Linear bins for the Levy streaming histogram: n bins over [lo, hi).
struct LinearBins {
    double lo;
    double hi;
    double inv_width;  // n / (hi - lo)
    std::int64_t n;
};

ANODIFF_HD LinearBins make_linear_bins(double lo, double hi, std::int64_t n) {
    LinearBins b;
    b.lo = lo;
    b.hi = hi;
    b.inv_width = static_cast<double>(n) / (hi - lo);
    b.n = n;
    return b;
}

// Slots of a linear histogram: 0..n-1 the bins, then these three.
constexpr std::int64_t kUnderflowSlot = 0;  // offset after the n bins: x < lo (and -inf)
constexpr std::int64_t kOverflowSlot = 1;   // x >= hi (and +inf)
constexpr std::int64_t kNanSlot = 2;        // NaN

// Slot of x in an array of n + 3 counters: [bins..., underflow, overflow, nan].
// The bin is floor((x - lo) * n / (hi - lo)), clamped to n - 1 for x just
// below hi where rounding would give n.
ANODIFF_HD std::int64_t linear_slot(double x, const LinearBins& b) {
    if (x != x) return b.n + kNanSlot;
    if (x < b.lo) return b.n + kUnderflowSlot;
    if (x >= b.hi) return b.n + kOverflowSlot;
    const std::int64_t k = static_cast<std::int64_t>((x - b.lo) * b.inv_width);
    return k < b.n ? k : b.n - 1;
}

// Rows of the binned pair curves.
// Binned by contour length ds (S rows, n_s bins each):
constexpr int kS_count = 0;    // number of pairs
constexpr int kS_sum_ds = 1;   // sum of ds
constexpr int kS_sum_dr2 = 2;  // sum of dr^2
constexpr int kSRows = 3;
// Binned by end-to-end distance dr = sqrt(dr2) (R rows, n_r bins each):
constexpr int kR_count = 0;     // number of pairs
constexpr int kR_sum_dr = 1;    // sum of dr
constexpr int kR_sum_msl = 2;   // sum of (L[t] - L[s])^2 (0 when no loss is given)
constexpr int kR_tr_count = 3;  // pairs with t - s >= 2 (those with a transverse distance)
constexpr int kR_tr_sum_dr = 4; // sum of dr over those pairs
constexpr int kR_tr_sum_h = 5;  // sum of the transverse distance h = sqrt(h2)
constexpr int kRRows = 6;

// Contribution of one pair (s < t) to the binned curves. `add(array, row, bin, value)`
// receives array 0 for the ds-binned rows (S) and 1 for the dr-binned rows (R).
// P may not be null; L may be null (no MSL); `transverse` turns the O(t-s)
// transverse scan on or off.
template <typename Add>
ANODIFF_HD void pair_contribution(const double* G, std::int64_t T, const double* P, const double* L,
                                  std::int64_t s, std::int64_t t, const LogBins& s_bins,
                                  const LogBins& r_bins, bool transverse, Add& add) {
    const double dr2 = delta_r2(G, T, s, t);
    const double ds = contour_length(P, s, t);
    const std::int64_t ks = log_bin_index(ds, s_bins);
    if (ks >= 0) {
        add(0, kS_count, ks, 1.0);
        add(0, kS_sum_ds, ks, ds);
        add(0, kS_sum_dr2, ks, dr2);
    }
    const double dr = std::sqrt(dr2);
    const std::int64_t kr = log_bin_index(dr, r_bins);
    if (kr < 0) return;
    add(1, kR_count, kr, 1.0);
    add(1, kR_sum_dr, kr, dr);
    if (L != nullptr) add(1, kR_sum_msl, kr, msl_term(L, s, t));
    if (transverse && t - s >= 2) {
        add(1, kR_tr_count, kr, 1.0);
        add(1, kR_tr_sum_dr, kr, dr);
        add(1, kR_tr_sum_h, kr, std::sqrt(transverse_distance2(G, T, s, t)));
    }
}

// Host reference: all pairs of a window, serially, into S (kSRows x n_s) and
// R (kRRows x n_r), both row-major and added to (not overwritten).
struct HostAdd {
    double* S;
    double* R;
    std::int64_t n_s;
    std::int64_t n_r;
    ANODIFF_HD void operator()(int array, int row, std::int64_t bin, double v) const {
        if (array == 0) S[row * n_s + bin] += v;
        else R[row * n_r + bin] += v;
    }
};

inline void pair_curves_serial(const double* G, std::int64_t T, const double* P, const double* L,
                               const LogBins& s_bins, const LogBins& r_bins, bool transverse,
                               double* S, double* R) {
    HostAdd add{S, R, s_bins.n, r_bins.n};
    for (std::int64_t s = 0; s < T; ++s)
        for (std::int64_t t = s + 1; t < T; ++t)
            pair_contribution(G, T, P, L, s, t, s_bins, r_bins, transverse, add);
}

}  // namespace pair
}  // namespace anodiff
