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

// Gram matrix of a window's points centred on point 0, assembled in place
// from block-centred products (the default float32 path of `analyze`).
// Points are split into blocks of `block` consecutive points; block I has a
// centre point C_I (one of its own points) and z_s = x_s - C_I(s). Inputs
// (float64 sums over dimensions):
//   A (P x P, column-major, upper triangle i <= j read): A_ij = z_i . z_j
//     (float32 products: small entries, since each z spans half a block);
//   Q (P x (nb-1), row-major): Q_sm = z_s . (C_{m+1} - C_m), nb = ceil(P/block);
//   CC (nb x nb, row-major): CC_IJ = (C_I - x_0) . (C_J - x_0);
//   band_sq (P x band, row-major, or null): exact |x_{s+k} - x_s|^2, k = 1..band.
// Then, with I = I(s), J = I(t) and z_s . (C_I - C_J) = Σ_{m=J}^{I-1} Q_sm,
//   Δr²(s,t) = A_ss + A_tt - 2 A_st + 2 z_s.(C_I - C_J) + 2 z_t.(C_J - C_I)
//              + CC_II + CC_JJ - 2 CC_IJ,
// replaced by band_sq where t - s <= band, and
//   G_st = (Δr²(0,s) + Δr²(0,t) - Δr²(s,t)) / 2.
// A is overwritten with the full symmetric G (row- and column-major alike).
// Every rounding error of the float32 products is relative to |z|², never to
// |x_s - x_0|², which is why this is as accurate as it is.
void block_gram_assemble(double* A, std::int64_t P, std::int64_t block, const double* Q, const double* CC,
                         const double* band_sq, std::int64_t band, int n_threads);

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
