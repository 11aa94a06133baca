// Per-pair arithmetic of the trajectory geometry (contour length, end-to-end
// distance, transverse distance, binning), shared by the CPU kernels in
// geometry.cpp and their CUDA twin. Everything is float64.
#pragma once

#include <cstdint>

#include "hd.hpp"

namespace anodiff {

// Squared distance |x_s - x_t|^2 from the Gram entries G_ss, G_tt, G_st of
// vectors centred on any common origin; rounding can push it below 0, so it
// is clamped at 0.
ANODIFF_HD double gram_sqdist(double g_ss, double g_tt, double g_st) {
    const double d = g_ss + g_tt - 2.0 * g_st;
    return d > 0.0 ? d : 0.0;
}

// Squared distance of x_u from the line through x_s and x_t, from the three
// squared distances d_su = |x_u-x_s|^2, d_ut = |x_t-x_u|^2 and d_st = |x_t-x_s|^2
// (inv_4dst = 1 / (4 d_st), d_st > 0):  h^2 = d_su - ((x_u-x_s)·(x_t-x_s))^2 / d_st
// with (x_u-x_s)·(x_t-x_s) = (d_su + d_st - d_ut) / 2. Clamped at 0.
ANODIFF_HD double chord_perp_sq(double d_su, double d_ut, double d_st, double inv_4dst) {
    const double a = d_su + d_st - d_ut;
    const double h = d_su - a * a * inv_4dst;
    return h > 0.0 ? h : 0.0;
}

// Bin of x among edges[0] < edges[1] < ... < edges[n_bins]: i with
// edges[i] <= x < edges[i+1], the last bin closed on the right (as
// numpy.histogram); -1 when x is outside [edges[0], edges[n_bins]] or NaN.
ANODIFF_HD std::int64_t bin_index(double x, const double* edges, std::int64_t n_bins) {
    if (!(x >= edges[0]) || !(x <= edges[n_bins])) return -1;
    std::int64_t lo = 0, hi = n_bins;  // invariant: edges[lo] <= x, answer in [lo, hi)
    while (hi - lo > 1) {
        const std::int64_t mid = lo + (hi - lo) / 2;
        if (edges[mid] <= x) lo = mid;
        else hi = mid;
    }
    return lo;
}

}  // namespace anodiff
