// Lévy alpha-stable laws: density, log-density, tabulated log-density for
// fast likelihoods, and a one-pass histogram for streaming fits.
//
// Parameterisation: Nolan's S0 (continuous in alpha and beta). A standard
// S0 variable Z0 with alpha != 1 is Z0 = Z1 + zeta, zeta = -beta tan(pi alpha/2),
// where Z1 has characteristic function exp(-|t|^alpha (1 - i beta tan(pi alpha/2) sgn t)).
// X = scale * Z0 + loc. For beta = 0, S0 = S1; alpha = 2 is N(loc, 2 scale^2),
// alpha = 1, beta = 0 is Cauchy(loc, scale).
//
// Density (standard, x != zeta, alpha != 1): Nolan (1997), Thm 1,
//   f(x) = alpha / (pi |alpha-1| (x-zeta)) * Int_{-theta0}^{pi/2} g e^{-g} dtheta,
//   g(theta) = (x-zeta)^{alpha/(alpha-1)} V(theta),
//   V = cos(alpha theta0)^{1/(alpha-1)} (cos th / sin(alpha(th0+th)))^{alpha/(alpha-1)}
//       cos(alpha th0 + (alpha-1) th) / cos th,      theta0 = atan(beta tan(pi alpha/2)) / alpha,
// f(x; alpha, beta) = f(-x; alpha, -beta) for x < zeta. The integrand is
// evaluated in the log domain, in coordinates measured from the nearer end of
// the theta interval (so both ends are resolved to full relative precision),
// split at its peak g = 1, in log-distance, by adaptive Gauss-Kronrod (7-15).
// Far tails use the Bergström series (x1 = x - zeta > 0)
//   f(x) = (1/pi) sum_k (-1)^{k+1} A^k Gamma(k alpha + 1)/k! sin(k alpha (pi/2 + theta0)) x1^{-k alpha - 1},
//   A = (1 + beta^2 tan^2(pi alpha/2))^{1/2},
// used only where its terms have fallen below 1e-17 of the sum.
#pragma once

#include <cstdint>
#include <vector>

namespace anodiff {
namespace levy {

// log f(x; alpha, beta, S0) of the standard law (scale 1, loc 0). -inf where the density is 0.
double stable_logpdf_std(double x, double alpha, double beta);

// out[i] = log f((x[i]-loc)/scale)/scale, the direct (quadrature) evaluation.
void stable_logpdf(const double* x, std::int64_t n, double alpha, double beta, double scale, double loc,
                   double* out, int n_threads);

// ---- tabulated log-density ----
// A table is a flat double array: a header (kTabHeader doubles) followed by
// panel coefficients (Chebyshev series of l(u) = log f(sinh u) and of its first
// two u-derivatives, kTabDeg+1 each, truncated where |c_k| < 1e-13), the tail
// series coefficients and each panel's series length.
constexpr int kTabDeg = 17;
constexpr int kTabHeader = 16;
constexpr int kTabMaxTerms = 80;

// Builds the table of the standard S0 law (alpha, beta) with panels of width du in u = asinh(x).
std::vector<double> build_table(double alpha, double beta, double du, int n_threads);

// l, dl/dx, d2l/dx2 of the standard log-density at x, from a table.
void table_eval_std(const double* table, double x, double* l, double* d1, double* d2);

// For K tables and data x (optional weights w, may be null), z = (x - loc)/scale:
// moments[k*kMoments + m] = sum_i w_i * {l_k, l'_k, l'_k z, l''_k, l''_k z, l''_k z^2, l_k^2, l_k x, l_k x^2}[m]
// (z-derivatives of the standard log-density l_k).
constexpr int kMoments = 9;
void table_moments(const double* const* tables, int K, const double* x, const double* w, std::int64_t n,
                   double loc, double scale, double* moments, int n_threads);

// Per point: l[k*n + i] = l_k(z_i), d1[k*n + i] = l'_k(z_i)  (standard law, not divided by scale).
void table_pointwise(const double* const* tables, int K, const double* x, std::int64_t n, double loc,
                     double scale, double* l, double* d1, int n_threads);

// ---- streaming histogram ----
// Bins of uniform width in u = asinh((x - center)/width) over [-u_max, u_max]:
// counts[0] = underflow, counts[1..nbins] the bins, counts[nbins+1] = overflow.
// Non-finite values are counted in *n_nonfinite and not binned. Adds to counts.
void asinh_histogram(const float* x, std::int64_t n, double center, double width, double u_max,
                     std::int64_t nbins, std::int64_t* counts, std::int64_t* n_nonfinite, int n_threads);
void asinh_histogram(const double* x, std::int64_t n, double center, double width, double u_max,
                     std::int64_t nbins, std::int64_t* counts, std::int64_t* n_nonfinite, int n_threads);

}  // namespace levy
}  // namespace anodiff
