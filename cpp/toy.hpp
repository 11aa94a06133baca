// Per-step arithmetic of the simplified SGD model (anodiff.toy), shared by the
// CPU walkers (toy.cpp) and a CUDA kernel: every function is ANODIFF_HD, pure,
// and works on raw pointers.
//
// Grid convention: z[i * nx + j] is the loss at the node x = x0 + j*h,
// y = y0 + i*h (row i = y index, column j = x index), h = cell size in
// w-units. The landscape covers [x0, x0 + (nx-1) h] x [y0, y0 + (ny-1) h].
//
// Random numbers: a counter-based generator. The 64-bit key of walker k is
// splitmix64(seed ^ splitmix64(k + 1)); its n-th 64-bit word is
// splitmix64(key + n * 0x9E3779B97F4A7C15) (the SplitMix64 finaliser of Steele,
// Lea & Flood 2014 applied to a Weyl sequence). Step t uses words 2t and 2t+1,
// turned into two uniforms in (0, 1] (53 bits) and then into two independent
// standard normals by Box-Muller. A walker's numbers depend only on (seed, k,
// t), never on threads or on how walkers are grouped.
#pragma once

#include <cmath>
#include <cstdint>

#include "hd.hpp"

namespace anodiff {
namespace toy {

constexpr std::uint64_t kGolden = 0x9E3779B97F4A7C15ull;

ANODIFF_HD std::uint64_t splitmix64(std::uint64_t x) {
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 31;
    return x;
}

// Key of walker `k` (its global index) under `seed`.
ANODIFF_HD std::uint64_t walker_key(std::uint64_t seed, std::uint64_t k) {
    return splitmix64(seed ^ splitmix64(k + 1));
}

// n-th 64-bit word of the stream `key`.
ANODIFF_HD std::uint64_t stream_word(std::uint64_t key, std::uint64_t n) {
    return splitmix64(key + (n + 1) * kGolden);
}

// 53-bit uniform in (0, 1].
ANODIFF_HD double unit_open0(std::uint64_t word) {
    return (static_cast<double>(word >> 11) + 1.0) * (1.0 / 9007199254740992.0);
}

// Two independent N(0, 1) numbers for step t of the stream `key` (Box-Muller).
ANODIFF_HD void normal_pair(std::uint64_t key, std::uint64_t t, double* g0, double* g1) {
    const double u1 = unit_open0(stream_word(key, 2 * t));
    const double u2 = unit_open0(stream_word(key, 2 * t + 1));
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double a = 6.283185307179586476925 * u2;
    *g0 = r * std::cos(a);
    *g1 = r * std::sin(a);
}

// Numerical gradient at node (i, j) the way numpy.gradient / MATLAB gradient
// compute it: central differences (z[+1] - z[-1]) / 2h inside, one-sided
// differences (z[1] - z[0]) / h on the edges. Returns d/dx (along j) in *gx
// and d/dy (along i) in *gy, in loss units per w-unit.
ANODIFF_HD void node_gradient(const double* z, std::int64_t ny, std::int64_t nx, double h,
                              std::int64_t i, std::int64_t j, double* gx, double* gy) {
    const double* row = z + i * nx;
    if (nx < 2) *gx = 0.0;
    else if (j == 0) *gx = (row[1] - row[0]) / h;
    else if (j == nx - 1) *gx = (row[nx - 1] - row[nx - 2]) / h;
    else *gx = (row[j + 1] - row[j - 1]) / (2.0 * h);
    if (ny < 2) *gy = 0.0;
    else if (i == 0) *gy = (z[nx + j] - z[j]) / h;
    else if (i == ny - 1) *gy = (z[(ny - 1) * nx + j] - z[(ny - 2) * nx + j]) / h;
    else *gy = (z[(i + 1) * nx + j] - z[(i - 1) * nx + j]) / (2.0 * h);
}

// Cell of a position: fractional grid coordinates u = (x - x0)/h (columns),
// v = (y - y0)/h (rows). Returns false when (x, y) lies outside the landscape
// [0, nx-1] x [0, ny-1] (or is NaN); otherwise the lower-left node (*i, *j) of
// the cell holding it (clamped so that i+1, j+1 exist) and the offsets
// *fy, *fx in [0, 1].
ANODIFF_HD bool locate(double x, double y, std::int64_t ny, std::int64_t nx, double h, double x0,
                       double y0, std::int64_t* i, std::int64_t* j, double* fy, double* fx) {
    const double u = (x - x0) / h;
    const double v = (y - y0) / h;
    if (!(u >= 0.0 && u <= static_cast<double>(nx - 1) && v >= 0.0 && v <= static_cast<double>(ny - 1)))
        return false;
    std::int64_t jj = static_cast<std::int64_t>(u);
    std::int64_t ii = static_cast<std::int64_t>(v);
    if (jj > nx - 2) jj = nx - 2;
    if (ii > ny - 2) ii = ny - 2;
    *i = ii;
    *j = jj;
    *fx = u - static_cast<double>(jj);
    *fy = v - static_cast<double>(ii);
    return true;
}

// Bilinear interpolation of the node field f (ny x nx) inside cell (i, j) at
// offsets (fy, fx) in [0, 1].
ANODIFF_HD double bilinear(const double* f, std::int64_t nx, std::int64_t i, std::int64_t j, double fy,
                           double fx) {
    const double* r0 = f + i * nx + j;
    const double* r1 = r0 + nx;
    const double top = r0[0] + fx * (r0[1] - r0[0]);
    const double bot = r1[0] + fx * (r1[1] - r1[0]);
    return top + fy * (bot - top);
}

// Same for an interleaved 2-component field g[(i * nx + j) * 2 + c] (the
// gradient: c = 0 for d/dx, 1 for d/dy; both components share cache lines).
ANODIFF_HD void bilinear2(const double* g, std::int64_t nx, std::int64_t i, std::int64_t j, double fy,
                          double fx, double* gx, double* gy) {
    const double* r0 = g + (i * nx + j) * 2;
    const double* r1 = r0 + nx * 2;
    const double tx = r0[0] + fx * (r0[2] - r0[0]);
    const double ty = r0[1] + fx * (r0[3] - r0[1]);
    const double bx = r1[0] + fx * (r1[2] - r1[0]);
    const double by = r1[1] + fx * (r1[3] - r1[1]);
    *gx = tx + fy * (bx - tx);
    *gy = ty + fy * (by - ty);
}

// One SGD step w <- w - eta * g + eta * sigma * (g0, g1) on the interleaved
// gradient field `grad` (ny x nx x 2). Returns false (and leaves *x, *y
// untouched) when w lies outside the landscape; otherwise writes the
// interpolated gradient to *gx, *gy and the new position to *x, *y (which may
// lie outside: the caller stops the walker there).
ANODIFF_HD bool sgd_step(const double* grad, std::int64_t ny, std::int64_t nx, double h, double x0, double y0,
                         double eta, double sigma, double g0, double g1, double* x, double* y, double* gx,
                         double* gy) {
    std::int64_t i, j;
    double fy, fx;
    if (!locate(*x, *y, ny, nx, h, x0, y0, &i, &j, &fy, &fx)) return false;
    bilinear2(grad, nx, i, j, fy, fx, gx, gy);
    *x = *x - eta * *gx + eta * sigma * g0;
    *y = *y - eta * *gy + eta * sigma * g1;
    return true;
}

}  // namespace toy

// Central-difference gradient of the whole grid, interleaved:
// grad[(i * nx + j) * 2 + 0] = dL/dx, [.. + 1] = dL/dy at node (i, j).
void toy_gradient_grid(const double* z, std::int64_t ny, std::int64_t nx, double h, double* grad,
                       int n_threads);

// Runs n_walkers independent walkers for n_steps SGD steps on the
// interleaved gradient field `grad` (from toy_gradient_grid). Walker k (global index
// walker_offset + k for the random stream) starts at starts[2k], starts[2k+1].
// Outputs, row-major:
//   traj  (n_walkers, n_steps + 1, 2): w_0 … w_T; a walker whose step t takes
//         it outside the landscape has that position in row t+1 and NaN after;
//   grads (n_walkers, n_steps, 2): the gradient used at step t (NaN once
//         stopped); may be null;
//   loss  (n_walkers, n_steps + 1): L(w_t) by bilinear interpolation of z
//         (NaN outside the landscape and after leaving); may be null (then z
//         may be null too);
//   exit_step (n_walkers,): the row at which the walker left, -1 if it stayed.
// Threads over blocks of walkers; inside a block all walkers advance one
// step at a time, so that their (independent) grid reads overlap in memory.
// Results do not depend on n_threads.
void toy_walk(const double* grad, const double* z, std::int64_t ny, std::int64_t nx, double h, double x0,
              double y0, const double* starts, std::int64_t n_walkers, std::int64_t n_steps, double eta,
              double sigma, std::uint64_t seed, std::uint64_t walker_offset, double* traj, double* grads,
              double* loss, std::int64_t* exit_step, int n_threads);

}  // namespace anodiff
