// Lévy alpha-stable density (Nolan S0), its tabulation, and a streaming histogram.
// See levy.hpp for the formulas.
#include "levy.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "parallel.hpp"

namespace anodiff {
namespace levy {

namespace {

constexpr double kPi = 3.141592653589793238462643383279502884;
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// relative tolerance of the adaptive quadrature of the density integral
constexpr double kQuadRtol = 1e-11;

// Gauss-Kronrod 7-15 (QUADPACK qk15) on [-1, 1].
constexpr double kXgk[8] = {0.991455371120812639206854697526329, 0.949107912342758524526189684047851,
                            0.864864423359769072789712788640926, 0.741531185599394439863864773280788,
                            0.586087235467691130294144845693013, 0.405845151377397166906606412076961,
                            0.207784955007898467600689403773245, 0.0};
constexpr double kWgk[8] = {0.022935322010529224963732008058970, 0.063092092629978553290700663189204,
                            0.104790010322250183839876322541518, 0.140653259715525918745189590510238,
                            0.169004726639267902826583426598550, 0.190350578064785409913256402421014,
                            0.204432940075298892414161999234649, 0.209482141084727828012999174891714};
constexpr double kWg[4] = {0.129484966168869693270611432679082, 0.279705391489276667901467771423780,
                           0.381830050505118944950369775488975, 0.417959183673469387755102040816327};

struct Seg {
    double a, b, val, err;
};

template <typename F>
Seg gk15(const F& f, double a, double b) {
    const double c = 0.5 * (a + b), h = 0.5 * (b - a);
    const double fc = f(c);
    double rk = fc * kWgk[7], rg = fc * kWg[3];
    for (int j = 0; j < 7; ++j) {
        const double f1 = f(c - h * kXgk[j]), f2 = f(c + h * kXgk[j]);
        rk += kWgk[j] * (f1 + f2);
        if (j % 2 == 1) rg += kWg[j / 2] * (f1 + f2);
    }
    return {a, b, rk * h, std::fabs((rk - rg) * h)};
}

// Adaptive integration of f over the union of [edges[i], edges[i+1]] ranges given as pairs.
template <typename F>
double adaptive(const F& f, const std::vector<std::pair<double, double>>& ranges, double rtol) {
    std::vector<Seg> segs;
    segs.reserve(256);
    for (auto& r : ranges) {
        if (!(r.second > r.first)) continue;
        segs.push_back(gk15(f, r.first, r.second));
    }
    for (int iter = 0; iter < 400; ++iter) {
        double tot = 0, err = 0;
        std::size_t worst = 0;
        for (std::size_t i = 0; i < segs.size(); ++i) {
            tot += segs[i].val;
            err += segs[i].err;
            if (segs[i].err > segs[worst].err) worst = i;
        }
        if (segs.empty() || err <= rtol * std::fabs(tot) || err == 0) break;
        const Seg s = segs[worst];
        const double m = 0.5 * (s.a + s.b);
        segs[worst] = gk15(f, s.a, m);
        segs.push_back(gk15(f, m, s.b));
    }
    double tot = 0;
    for (auto& s : segs) tot += s.val;
    return tot;
}

// log of Int_0^L g e^{-g} dtheta where logg(end, d) gives log g at distance d from
// end 0 (theta = lower end) or end 1 (theta = upper end); log g is monotone in theta.
// Each half [0, L/2] is integrated in s = log d; around the peak (g = 1, or the
// half's end nearest to it) break points are placed at geometric multiples of the
// local width 1/|d log g / ds| so that adaptive Gauss-Kronrod sees the peak.
template <typename G>
double log_integral(const G& logg, double L) {
    const double M = 0.5 * L, logM = std::log(M);
    const double S = 50.0;
    const double lo = logM - S, hi = logM;
    auto lgs = [&](int e, double s) { return logg(e, std::exp(s)); };
    auto logh = [&](int e, double s) {
        const double lg = lgs(e, s);
        if (std::isnan(lg) || lg == kInf) return -kInf;
        return s + lg - std::exp(lg);
    };
    struct Half {
        double focus, width;
    } halves[2];
    double shift = -kInf;
    const double lgM = logg(0, M);
    for (int e = 0; e < 2; ++e) {
        const double lt = lgs(e, lo);
        double focus;
        if ((lt > 0) != (lgM > 0) && std::isfinite(lgM)) {
            // Illinois (regula falsi) on lg(s) = 0 with bisection safeguard
            double a = lo, b = hi, fa = lt, fb = lgM;
            if (!std::isfinite(fa)) {
                // move a inwards until finite
                for (int it = 0; it < 200 && !std::isfinite(fa); ++it) {
                    a = 0.5 * (a + b);
                    fa = lgs(e, a);
                }
            }
            int side = 0;
            for (int it = 0; it < 100 && (b - a) > 1e-13 * (1 + std::fabs(a)); ++it) {
                double m = (std::isfinite(fa) && std::isfinite(fb) && fa != fb) ? (a * fb - b * fa) / (fb - fa)
                                                                                  : 0.5 * (a + b);
                if (!(m > a && m < b) || it % 8 == 7) m = 0.5 * (a + b);
                const double fm = lgs(e, m);
                if (fm == 0) {
                    a = b = m;
                    break;
                }
                if ((fm > 0) == (fa > 0)) {
                    a = m;
                    fa = fm;
                    if (side == -1) fb *= 0.5;
                    side = -1;
                } else {
                    b = m;
                    fb = fm;
                    if (side == 1) fa *= 0.5;
                    side = 1;
                }
            }
            focus = 0.5 * (a + b);
        } else {
            // no root in this half: the peak is at the end where log g is nearest 0
            focus = (std::fabs(lt) < std::fabs(lgM) && std::isfinite(lt)) ? lo : hi;
        }
        const double h = 1e-6;
        const double sl = std::fabs((lgs(e, focus + h) - lgs(e, focus - h)) / (2 * h));
        const double width = 1.0 / std::max(1.0, std::isfinite(sl) ? sl : 1.0);
        halves[e] = {focus, width};
        shift = std::max(shift, logh(e, focus));
        shift = std::max(shift, logh(e, hi));
    }
    if (shift == -kInf) return -kInf;
    double total = 0;
    for (int e = 0; e < 2; ++e) {
        std::vector<double> br{lo, hi};
        const double f0 = halves[e].focus, w = halves[e].width;
        if (f0 > lo && f0 < hi) br.push_back(f0);
        for (double c = 0.5; c < 2 * S; c *= 3) {
            if (f0 + c * w < hi) br.push_back(f0 + c * w);
            if (f0 - c * w > lo) br.push_back(f0 - c * w);
        }
        std::sort(br.begin(), br.end());
        std::vector<std::pair<double, double>> ranges;
        for (std::size_t i = 0; i + 1 < br.size(); ++i) ranges.push_back({br[i], br[i + 1]});
        auto f = [&](double s) {
            const double v = logh(e, s) - shift;
            return v < -745 ? 0.0 : std::exp(v);
        };
        total += adaptive(f, ranges, kQuadRtol);
    }
    if (!(total > 0)) return -kInf;
    return shift + std::log(total);
}

double log_gauss(double x) { return -0.25 * x * x - 0.5 * std::log(4 * kPi); }
double log_cauchy(double x) { return -std::log(kPi) - std::log1p(x * x); }

// Log-density at zeta (x1 = 0), Nolan: Gamma(1 + 1/alpha) cos(theta0) / (pi (1+zeta^2)^{1/(2 alpha)}).
double log_at_zeta(double alpha, double theta0, double zeta) {
    return std::lgamma(1 + 1 / alpha) + std::log(std::cos(theta0)) - std::log(kPi) -
           std::log1p(zeta * zeta) / (2 * alpha);
}

// alpha != 1, x1 = x - zeta > 0.
double log_integral_density(double x1, double alpha, double beta) {
    const double xi = std::atan(beta * std::tan(kPi * alpha / 2));  // alpha * theta0
    const double theta0 = xi / alpha;
    const double L = kPi / 2 + theta0;
    const double cxi = std::cos(xi), sxi = std::sin(xi);
    const double sinaL = cxi * std::sin(kPi * alpha / 2) * (1 + beta);
    const double cosaL = std::cos(kPi * alpha / 2) * cxi - std::sin(kPi * alpha / 2) * sxi;
    const double p = alpha / (alpha - 1);
    const double lx = p * std::log(x1);
    const double lc0 = std::log(cxi) / (alpha - 1);
    // cos(theta0), sin(theta0) to full relative precision: for alpha < 1, theta0 = pi/2 - eta with
    // eta = atan((1-beta) T / (1 + beta T^2)) / alpha, T = tan(pi alpha/2) (exact 0 for beta = 1).
    double cth0 = std::cos(theta0), sth0 = std::sin(theta0);
    if (alpha < 1) {
        const double T = std::tan(kPi * alpha / 2);
        const double eta = std::atan2((1 - beta) * T, 1 + beta * T * T) / alpha;
        cth0 = std::sin(eta);
        sth0 = std::cos(eta);
    }
    auto logg = [&](int e, double d) {
        double psi, saps, sphi, c;
        if (e == 0) {
            psi = d;
            saps = std::sin(alpha * d);
            // sin(L - d) with sin L = cos(theta0), cos L = -sin(theta0)
            sphi = cth0 * std::cos(d) + sth0 * std::sin(d);
            c = cth0 * std::cos((alpha - 1) * d) - sth0 * std::sin((alpha - 1) * d);
        } else {
            psi = L - d;
            saps = sinaL * std::cos(alpha * d) - cosaL * std::sin(alpha * d);
            sphi = std::sin(d);
            c = std::cos(theta0 + (alpha - 1) * psi);
        }
        if (!(c > 0) || !(sphi > 0) || !(saps > 0)) {
            // at an end point: V -> 0 or infinity
            if (!(c > 0)) return -kInf;
            return (sphi <= 0) == (p > 0) ? -kInf : kInf;
        }
        return lx + lc0 + p * (std::log(sphi) - std::log(saps)) + std::log(c) - std::log(sphi);
    };
    const double li = log_integral(logg, L);
    return std::log(alpha / (kPi * std::fabs(alpha - 1) * x1)) + li;
}

// alpha == 1, beta > 0 (S1 = S0 at scale 1).
double log_integral_density_a1(double x, double beta) {
    const double L = kPi;
    const double base = -kPi * x / (2 * beta) + std::log(2 / kPi);
    auto logg = [&](int e, double d) {
        double theta, cth, sth;
        if (e == 0) {
            theta = -kPi / 2 + d;
            cth = std::sin(d);
            sth = -std::cos(d);
        } else {
            theta = kPi / 2 - d;
            cth = std::sin(d);
            sth = std::cos(d);
        }
        const double a = kPi / 2 + beta * theta;
        if (!(cth > 0) || !(a > 0)) return e == 0 ? -kInf : kInf;
        return base + std::log(a) - std::log(cth) + a * (sth / cth) / beta;
    };
    return -std::log(2 * beta) + log_integral(logg, L);
}

struct TailSeries {
    int n_terms = 0;
    double x_ref = kInf;  // series used for x1 >= x_ref
    double b[kTabMaxTerms] = {};  // f(x1) = (1/x1) sum_k b_k (x_ref/x1)^{k alpha}
};

// Bergström series for the right tail of the standard (alpha, beta) law, alpha != 1,
// in x1 = x - zeta. Tries x_ref candidates and keeps the smallest that converges.
TailSeries make_tail(double alpha, double beta, double x_min, double x_max) {
    TailSeries t;
    if (alpha == 2 || alpha == 1) return t;
    const double xi = std::atan(beta * std::tan(kPi * alpha / 2));
    const double aL = alpha * kPi / 2 + xi;
    const double logA = -std::log(std::cos(xi));
    for (double xr = x_min; xr <= x_max; xr *= 1.25) {
        const double lx = std::log(xr);
        double sum = 0, prev_m = kInf;
        int K = 0;
        bool ok = false;
        double m[kTabMaxTerms], s[kTabMaxTerms];
        for (int k = 1; k <= kTabMaxTerms; ++k) {
            const double lm = k * logA + std::lgamma(k * alpha + 1) - std::lgamma(k + 1.0) - k * alpha * lx;
            const double mk = std::exp(lm);
            const double sk = ((k % 2) ? 1.0 : -1.0) * std::sin(k * aL) / kPi;
            m[k - 1] = mk;
            s[k - 1] = sk;
            if (mk > prev_m) break;  // asymptotic series started to diverge
            prev_m = mk;
            sum += mk * sk;
            K = k;
            if (mk <= 1e-17 * std::fabs(sum) && k >= 2) {
                ok = true;
                break;
            }
        }
        if (ok && std::fabs(sum) > 0) {
            t.n_terms = K;
            t.x_ref = xr;
            for (int k = 0; k < K; ++k) t.b[k] = m[k] * s[k];
            return t;
        }
    }
    return t;
}

// l, dl/dx1, d2l/dx1^2 from a tail series at x1 >= x_ref.
void tail_eval(const double* b, int K, double alpha, double x_ref, double x1, double* l, double* d1, double* d2) {
    const double r = std::pow(x_ref / x1, alpha);
    double s0 = 0, s1 = 0, s2 = 0;
    for (int k = K; k >= 1; --k) {
        const double ka = k * alpha;
        const double bk = b[k - 1];
        s0 = s0 * r + bk;
        s1 = s1 * r + bk * (ka + 1);
        s2 = s2 * r + bk * (ka + 1) * (ka + 2);
    }
    // sums above are sum_k c_k r^{k-1}; the common factor r/x1 cancels in ratios.
    const double f = s0;  // proportional to f * x1 / r
    *l = std::log(r * s0 / x1);
    const double fp = -s1 / x1;          // f'/f * f  (same proportionality)
    const double fpp = s2 / (x1 * x1);   // f''
    *d1 = fp / f;
    *d2 = fpp / f - (fp / f) * (fp / f);
}

}  // namespace

double stable_logpdf_std(double x, double alpha, double beta) {
    if (std::isnan(x) || std::isnan(alpha) || std::isnan(beta)) return kNaN;
    if (!(alpha > 0 && alpha <= 2) || !(beta >= -1 && beta <= 1)) return kNaN;
    if (alpha == 2) return std::isinf(x) ? -kInf : log_gauss(x);
    if (std::isinf(x)) return -kInf;
    if (beta == 0 && std::fabs(alpha - 1) < 1e-10) return log_cauchy(x);
    if (alpha == 1) {
        if (beta < 0) {
            x = -x;
            beta = -beta;
        }
        return log_integral_density_a1(x, beta);
    }
    double zeta = -beta * std::tan(kPi * alpha / 2);
    if (x < zeta) {
        x = -x;
        beta = -beta;
        zeta = -zeta;
    }
    const double x1 = x - zeta;
    const double theta0 = std::atan(beta * std::tan(kPi * alpha / 2)) / alpha;
    if (x1 <= 1e-14 * std::max(1.0, std::fabs(zeta))) {
        if (alpha < 1 && std::fabs(beta) == 1) return -kInf;  // end of the support
        return log_at_zeta(alpha, theta0, zeta);
    }
    // far tail: Bergström series where it has converged
    if (x1 > 8) {
        TailSeries t = make_tail(alpha, beta, x1, x1);
        if (t.n_terms > 0) {
            double l, d1, d2;
            tail_eval(t.b, t.n_terms, alpha, t.x_ref, x1, &l, &d1, &d2);
            if (std::isfinite(l)) return l;
        }
    }
    return log_integral_density(x1, alpha, beta);
}

void stable_logpdf(const double* x, std::int64_t n, double alpha, double beta, double scale, double loc,
                   double* out, int n_threads) {
    const double ls = std::log(scale);
    parallel_for_chunks(n_threads, n, [&](int, std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; ++i) out[i] = stable_logpdf_std((x[i] - loc) / scale, alpha, beta) - ls;
    });
}

// ---------------- table ----------------
// header: 0 alpha, 1 beta, 2 u_lo, 3 du, 4 n_panels, 5 kind (0 table, 1 gauss, 2 cauchy),
//         6 zeta, 7 x_ref right, 8 n_terms right, 9 x_ref left, 10 n_terms left, 11 panel offset,
//         12 right-series offset, 13 left-series offset
namespace {
constexpr int kNc = kTabDeg + 1;

// Chebyshev coefficients of values at first-kind nodes, then derivative series (scaled by 2/du).
int cheb_panel(const double* vals, double du, double* out /* 3*kNc */) {
    double* c = out;
    for (int k = 0; k < kNc; ++k) {
        double s = 0;
        for (int j = 0; j < kNc; ++j) s += vals[j] * std::cos(kPi * k * (j + 0.5) / kNc);
        c[k] = s * 2.0 / kNc;
    }
    c[0] *= 0.5;
    // truncate the negligible tail of the series (|c_k| < 1e-13): cheaper look-ups, same accuracy
    int m = kNc;
    while (m > 4 && std::fabs(c[m - 1]) < 1e-13) --m;
    for (int k = m; k < kNc; ++k) c[k] = 0.0;
    auto deriv = [&](const double* a, double* d) {
        // derivative of sum a_k T_k(t), t in [-1,1], times (2/du) for d/du
        double tmp[kNc + 2] = {};
        for (int k = kNc - 1; k >= 1; --k) tmp[k - 1] = tmp[k + 1] + 2.0 * k * a[k];
        tmp[0] *= 0.5;
        for (int k = 0; k < kNc; ++k) d[k] = tmp[k] * (2.0 / du);
    };
    deriv(c, out + kNc);
    deriv(out + kNc, out + 2 * kNc);
    return m;
}

}  // namespace

std::vector<double> build_table(double alpha, double beta, double du, int n_threads) {
    std::vector<double> tab(kTabHeader, 0.0);
    tab[0] = alpha;
    tab[1] = beta;
    if (alpha == 2) {
        tab[5] = 1;
        return tab;
    }
    if (beta == 0 && std::fabs(alpha - 1) < 1e-10) {
        tab[5] = 2;
        return tab;
    }
    const double zeta = (alpha == 1) ? 0.0 : -beta * std::tan(kPi * alpha / 2);
    TailSeries right = make_tail(alpha, beta, 4.0, 1e12);
    TailSeries left = (beta == 0) ? right : make_tail(alpha, -beta, 4.0, 1e12);
    // table covers x in [zeta - x_ref_left, zeta + x_ref_right] (capped at 1e12) in u = asinh(x)
    const double xr = std::min(right.n_terms ? right.x_ref : 1e12, 1e12);
    const double xl = std::min(left.n_terms ? left.x_ref : 1e12, 1e12);
    const double U = std::max(std::asinh(zeta + xr), std::asinh(-(zeta - xl))) + 1e-9;
    const int half = static_cast<int>(std::ceil(U / du));
    const int np = 2 * half;
    const double u_lo = -half * du;
    tab[2] = u_lo;
    tab[3] = du;
    tab[4] = np;
    tab[5] = 0;
    tab[6] = zeta;
    tab[7] = right.x_ref;
    tab[8] = right.n_terms;
    tab[9] = left.x_ref;
    tab[10] = left.n_terms;
    const std::int64_t off_p = kTabHeader, off_r = off_p + std::int64_t(np) * 3 * kNc, off_l = off_r + kTabMaxTerms;
    const std::int64_t off_m = off_l + kTabMaxTerms;
    tab[11] = off_p;
    tab[12] = off_r;
    tab[13] = off_l;
    tab[14] = off_m;
    tab.resize(off_m + np, 0.0);
    for (int k = 0; k < kTabMaxTerms; ++k) {
        tab[off_r + k] = right.b[k];
        tab[off_l + k] = left.b[k];
    }
    // node values
    const bool sym = (beta == 0);
    std::vector<double> vals(std::size_t(np) * kNc, 0.0);
    const int p0 = sym ? half : 0;
    const std::int64_t n_nodes = std::int64_t(np - p0) * kNc;
    parallel_for_chunks(n_threads, n_nodes, [&](int, std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; ++i) {
            const int p = p0 + static_cast<int>(i / kNc), j = static_cast<int>(i % kNc);
            const double t = std::cos(kPi * (j + 0.5) / kNc);
            const double u = u_lo + (p + 0.5 * (t + 1)) * du;
            vals[std::size_t(p) * kNc + j] = stable_logpdf_std(std::sinh(u), alpha, beta);
        }
    });
    if (sym)
        for (int p = 0; p < half; ++p)
            for (int j = 0; j < kNc; ++j) vals[std::size_t(p) * kNc + j] = vals[std::size_t(np - 1 - p) * kNc + (kNc - 1 - j)];
    for (int p = 0; p < np; ++p)
        tab[off_m + p] = cheb_panel(&vals[std::size_t(p) * kNc], du, &tab[off_p + std::int64_t(p) * 3 * kNc]);
    return tab;
}

void table_eval_std(const double* tab, double x, double* l, double* d1, double* d2) {
    const int kind = static_cast<int>(tab[5]);
    if (kind == 1) {
        *l = log_gauss(x);
        *d1 = -0.5 * x;
        *d2 = -0.5;
        return;
    }
    if (kind == 2) {
        const double q = 1 + x * x;
        *l = log_cauchy(x);
        *d1 = -2 * x / q;
        *d2 = -2 * (1 - x * x) / (q * q);
        return;
    }
    const double alpha = tab[0], zeta = tab[6];
    const double x1 = x - zeta;
    const int nr = static_cast<int>(tab[8]), nl = static_cast<int>(tab[10]);
    if (nr > 0 && x1 >= tab[7]) {
        tail_eval(tab + static_cast<std::int64_t>(tab[12]), nr, alpha, tab[7], x1, l, d1, d2);
        return;
    }
    if (nl > 0 && -x1 >= tab[9]) {
        tail_eval(tab + static_cast<std::int64_t>(tab[13]), nl, alpha, tab[9], -x1, l, d1, d2);
        *d1 = -*d1;
        return;
    }
    const double u_lo = tab[2], du = tab[3];
    const int np = static_cast<int>(tab[4]);
    const double ch2 = 1 + x * x, ch = std::sqrt(ch2), ax = std::fabs(x);
    const double u = std::copysign(ax < 0.5 ? std::log1p(ax + ax * ax / (1.0 + ch)) : std::log(ax + ch), x);
    int p = static_cast<int>(std::floor((u - u_lo) / du));
    p = std::min(std::max(p, 0), np - 1);
    const double t = 2 * (u - (u_lo + p * du)) / du - 1;
    const double* c = tab + static_cast<std::int64_t>(tab[11]) + std::int64_t(p) * 3 * kNc;
    const int m = static_cast<int>(tab[static_cast<std::int64_t>(tab[14]) + p]);
    // fused Clenshaw of the three series (value, d/du, d2/du2): independent chains interleave
    double a1 = 0, a2 = 0, b1 = 0, b2 = 0, e1 = 0, e2 = 0;
    const double t2 = 2 * t;
    const double* c1 = c + kNc;
    const double* c2 = c + 2 * kNc;
    for (int k = m - 1; k >= 1; --k) {
        const double a0 = c[k] + t2 * a1 - a2;
        const double b0 = c1[k] + t2 * b1 - b2;
        const double e0 = c2[k] + t2 * e1 - e2;
        a2 = a1;
        a1 = a0;
        b2 = b1;
        b1 = b0;
        e2 = e1;
        e1 = e0;
    }
    const double lu = c[0] + t * a1 - a2, lu1 = c1[0] + t * b1 - b2, lu2 = c2[0] + t * e1 - e2;
    *l = lu;
    *d1 = lu1 / ch;
    *d2 = (lu2 - lu1 * x / ch) / ch2;
}

void table_moments(const double* const* tables, int K, const double* x, const double* w, std::int64_t n,
                   double loc, double scale, double* moments, int n_threads) {
    const int workers = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(n_threads, n / 4096 + 1)));
    constexpr int kM = kMoments;
    std::vector<double> part(std::size_t(workers) * K * kM, 0.0);
    const double inv = 1.0 / scale;
    parallel_for_chunks(workers, n, [&](int wk, std::int64_t b, std::int64_t e) {
        double* acc = &part[std::size_t(wk) * K * kM];
        for (std::int64_t i = b; i < e; ++i) {
            const double xi = x[i];
            const double z = (xi - loc) * inv;
            const double wi = w ? w[i] : 1.0;
            if (wi == 0) continue;
            for (int k = 0; k < K; ++k) {
                double l, d1, d2;
                table_eval_std(tables[k], z, &l, &d1, &d2);
                double* a = acc + k * kM;
                const double wl = wi * l;
                a[0] += wl;
                a[1] += wi * d1;
                a[2] += wi * d1 * z;
                a[3] += wi * d2;
                a[4] += wi * d2 * z;
                a[5] += wi * d2 * z * z;
                a[6] += wl * l;
                a[7] += wl * xi;
                a[8] += wl * xi * xi;
            }
        }
    });
    for (int m = 0; m < K * kM; ++m) {
        double s = 0;
        for (int wk = 0; wk < workers; ++wk) s += part[std::size_t(wk) * K * kM + m];
        moments[m] = s;
    }
}

void table_pointwise(const double* const* tables, int K, const double* x, std::int64_t n, double loc,
                     double scale, double* l, double* d1, int n_threads) {
    const double inv = 1.0 / scale;
    parallel_for_chunks(n_threads, n, [&](int, std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; ++i) {
            const double z = (x[i] - loc) * inv;
            for (int k = 0; k < K; ++k) {
                double lv, dv, d2;
                table_eval_std(tables[k], z, &lv, &dv, &d2);
                l[std::int64_t(k) * n + i] = lv;
                d1[std::int64_t(k) * n + i] = dv;
            }
        }
    });
}

namespace {
template <typename T>
void histogram_impl(const T* x, std::int64_t n, double center, double width, double u_max, std::int64_t nbins,
                    std::int64_t* counts, std::int64_t* n_nonfinite, int n_threads) {
    const int workers = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(n_threads, n / 65536 + 1)));
    std::vector<std::vector<std::int64_t>> local(workers, std::vector<std::int64_t>(nbins + 2, 0));
    std::vector<std::int64_t> bad(workers, 0);
    const double inv_w = 1.0 / width, scale = nbins / (2 * u_max);
    parallel_for_chunks(workers, n, [&](int wk, std::int64_t b, std::int64_t e) {
        std::int64_t* c = local[wk].data();
        std::int64_t nb = 0;
        for (std::int64_t i = b; i < e; ++i) {
            const double v = static_cast<double>(x[i]);
            if (!std::isfinite(v)) {
                ++nb;
                continue;
            }
            const double y = (v - center) * inv_w, t = std::fabs(y);
            // asinh(y) = sign(y) log(t + sqrt(t^2 + 1)); log1p form keeps small |y| accurate
            const double a = t < 0.5 ? std::log1p(t + t * t / (1.0 + std::sqrt(t * t + 1.0)))
                                     : std::log(t + std::sqrt(t * t + 1.0));
            const double u = std::copysign(a, y);
            const double pos = (u + u_max) * scale;
            std::int64_t j;
            if (pos < 0) j = 0;
            else if (pos >= static_cast<double>(nbins)) j = nbins + 1;
            else j = static_cast<std::int64_t>(pos) + 1;
            ++c[j];
        }
        bad[wk] += nb;
    });
    for (int wk = 0; wk < workers; ++wk) {
        for (std::int64_t j = 0; j < nbins + 2; ++j) counts[j] += local[wk][j];
        *n_nonfinite += bad[wk];
    }
}
}  // namespace

void asinh_histogram(const float* x, std::int64_t n, double center, double width, double u_max, std::int64_t nbins,
                     std::int64_t* counts, std::int64_t* n_nonfinite, int n_threads) {
    histogram_impl(x, n, center, width, u_max, nbins, counts, n_nonfinite, n_threads);
}
void asinh_histogram(const double* x, std::int64_t n, double center, double width, double u_max,
                     std::int64_t nbins, std::int64_t* counts, std::int64_t* n_nonfinite, int n_threads) {
    histogram_impl(x, n, center, width, u_max, nbins, counts, n_nonfinite, n_threads);
}

}  // namespace levy
}  // namespace anodiff
