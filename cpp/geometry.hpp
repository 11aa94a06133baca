// Pair measures of a window's path, from its Gram matrix.
//
// A window of P points x_0 … x_{P-1} (weight vectors centred on a common
// origin, e.g. the window's first row) is described by its Gram matrix
// G_st = x_s · x_t (P × P, float64, symmetric, row-major; only the full
// matrix is read) and by the contour position c_p = Σ_{t < t_p} |w(t+1) - w(t)|
// of each point, the path length from the window start (so the contour
// length of a pair is Δs(s,t) = c_t - c_s, every SGD step counted once).
// End-to-end distance Δr(s,t)^2 = G_ss + G_tt - 2 G_st.
//
// Every kernel is a pure function over pointers and sizes, sums in float64,
// threads over rows with per-thread partial sums (cyclic row assignment, so
// that the triangular work is balanced).
#pragma once

#include <cstdint>

namespace anodiff {

// Adds the squared distances of nearby points of a block to `out`:
//   out[p*band + k-1] += Σ_{i<n_cols} (x_i(row (p+k)·row_step) - x_i(row p·row_step))^2
// for p in [0, n_points), k in 1..band, p + k < n_points. Differences are
// formed in float64 from the stored values (exact for float32 input), so
// these distances do not suffer from the cancellation of G_ss + G_tt - 2 G_st.
void band_sqdist_accumulate(const float* data, std::int64_t n_points, std::int64_t row_step,
                            std::int64_t n_cols, std::int64_t row_stride, std::int64_t band,
                            double* out, int n_threads);
void band_sqdist_accumulate(const double* data, std::int64_t n_points, std::int64_t row_step,
                            std::int64_t n_cols, std::int64_t row_stride, std::int64_t band,
                            double* out, int n_threads);

// Binned pair sums over all pairs s < t of the window:
//  * by contour length Δs = contour[t] - contour[s] in s_edges (n_s bins):
//      s_sum_dr2[b] += Δr^2, s_sum_ds[b] += Δs, s_count[b] += 1;
//  * by end-to-end distance Δr in r_edges (n_r bins):
//      r_sum_dr[b] += Δr, r_count[b] += 1 and, when loss != nullptr,
//      r_sum_dl2[b] += (loss[s] - loss[t])^2.
// Pairs outside the edges are not counted. Outputs are added to.
void pair_bins(const double* G, std::int64_t P, const double* contour, const double* loss,
               const double* s_edges, std::int64_t n_s, const double* r_edges, std::int64_t n_r,
               double* s_sum_dr2, double* s_sum_ds, std::int64_t* s_count, double* r_sum_dr,
               double* r_sum_dl2, std::int64_t* r_count, int n_threads);

// Transverse distance of every pair s < t with t >= s + 2:
//   h(s,t) = max_{s<u<t} distance of x_u from the line through x_s, x_t
// (when x_s == x_t, the distance of x_u from x_s). Writes h(s,t) to
// H[s*P + t] for t >= s+2 and 0 elsewhere in the upper triangle (the lower
// triangle is left untouched). O(P^3/6) triples.
void transverse_matrix(const double* G, std::int64_t P, double* H, int n_threads);

// The same, binned by Δr(s,t) in r_edges (pairs with Δr = 0 or outside the
// edges are skipped): sum_h[b] += h, sum_h2[b] += h^2, sum_dr[b] += Δr,
// count[b] += 1. Outputs are added to.
void transverse_bins(const double* G, std::int64_t P, const double* r_edges, std::int64_t n_r,
                     double* sum_h, double* sum_h2, double* sum_dr, std::int64_t* count,
                     int n_threads);

}  // namespace anodiff
