// Batched complex FFT over B independent lanes, float64, split re/im storage.
//
// Element (n, lane) of a length-N transform lives at index n*B + lane, so every
// butterfly is a loop over B (or s*B) contiguous doubles and vectorises across
// columns. Stockham autosort (no bit reversal): radix-4 stages, with one
// radix-2 stage when log2(N) is odd. Only the forward transform
// X_k = sum_n x_n exp(-2 pi i n k / N) is provided; inverse transforms are
// taken as conj(FFT(conj(.)))/N by the callers.
//
// This header is included by one translation unit per instruction set
// (generic, AVX2+FMA, AVX-512); ANODIFF_ARCH_NS names the namespace.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace anodiff {

// Plain view of a plan for the per-architecture code, which must not
// instantiate std:: templates (their out-of-line copies would be merged by the
// linker with copies compiled for other instruction sets).
struct FftPlanView {
    std::int64_t n;
    int n_stages;
    const int* radix;
    const double* const* twiddles;
};

// Twiddle tables for every stage of a length-N Stockham transform.
struct FftPlan {
    std::int64_t n = 0;
    // For each radix-4 stage: w1, w2, w3 (re, im) for p = 0..m-1.
    std::vector<std::vector<double>> stage_twiddles;
    std::vector<int> stage_radix;
    std::vector<const double*> twiddle_ptrs;

    explicit FftPlan(std::int64_t n_);
    FftPlanView view() const {
        return FftPlanView{n, static_cast<int>(stage_radix.size()), stage_radix.data(), twiddle_ptrs.data()};
    }
};



inline FftPlan::FftPlan(std::int64_t n_) : n(n_) {
    std::int64_t len = n;
    while (len > 1) {
        const int radix = (len % 8 == 0) ? 8 : (len % 4 == 0) ? 4 : 2;
        stage_radix.push_back(radix);
        const std::int64_t m = len / radix;
        std::vector<double> tw;
        if (radix == 8) {
            tw.resize(static_cast<std::size_t>(14 * m));
            for (std::int64_t p = 0; p < m; ++p) {
                for (int k = 1; k < 8; ++k) {
                    const long double theta = -2.0L * 3.14159265358979323846264338327950288L *
                                              static_cast<long double>(p * k) / static_cast<long double>(len);
                    tw[14 * p + 2 * (k - 1)] = static_cast<double>(std::cos(theta));
                    tw[14 * p + 2 * (k - 1) + 1] = static_cast<double>(std::sin(theta));
                }
            }
        } else if (radix == 4) {
            tw.resize(static_cast<std::size_t>(6 * m));
            for (std::int64_t p = 0; p < m; ++p) {
                // long double keeps the tables at full double accuracy for large N.
                const long double theta = -2.0L * 3.14159265358979323846264338327950288L *
                                          static_cast<long double>(p) / static_cast<long double>(len);
                tw[6 * p + 0] = static_cast<double>(std::cos(theta));
                tw[6 * p + 1] = static_cast<double>(std::sin(theta));
                tw[6 * p + 2] = static_cast<double>(std::cos(2 * theta));
                tw[6 * p + 3] = static_cast<double>(std::sin(2 * theta));
                tw[6 * p + 4] = static_cast<double>(std::cos(3 * theta));
                tw[6 * p + 5] = static_cast<double>(std::sin(3 * theta));
            }
        }
        stage_twiddles.push_back(std::move(tw));
        len /= radix;
    }
    for (const auto& tw : stage_twiddles) twiddle_ptrs.push_back(tw.data());
}

}  // namespace anodiff

#ifdef ANODIFF_ARCH_NS
namespace anodiff {
namespace ANODIFF_ARCH_NS {

// One radix-4 Stockham stage: length len = 4m, stride s (s * len = N).
template <int B, bool lower_only = false>
static inline void stage4(std::int64_t m, std::int64_t s, const double* tw,
                          const double* __restrict xr, const double* __restrict xi,
                          double* __restrict yr, double* __restrict yi) {
    const std::int64_t sb = s * B;
    for (std::int64_t p = 0; p < m; ++p) {
        const double w1r = tw[6 * p + 0], w1i = tw[6 * p + 1];
        const double w2r = tw[6 * p + 2], w2i = tw[6 * p + 3];
        const double w3r = tw[6 * p + 4], w3i = tw[6 * p + 5];
        const double* ar = xr + sb * (p + 0 * m);
        const double* ai = xi + sb * (p + 0 * m);
        const double* br = xr + sb * (p + 1 * m);
        const double* bi = xi + sb * (p + 1 * m);
        const double* cr = xr + sb * (p + 2 * m);
        const double* ci = xi + sb * (p + 2 * m);
        const double* dr = xr + sb * (p + 3 * m);
        const double* di = xi + sb * (p + 3 * m);
        double* y0r = yr + sb * (4 * p + 0);
        double* y0i = yi + sb * (4 * p + 0);
        double* y1r = yr + sb * (4 * p + 1);
        double* y1i = yi + sb * (4 * p + 1);
        double* y2r = yr + sb * (4 * p + 2);
        double* y2i = yi + sb * (4 * p + 2);
        double* y3r = yr + sb * (4 * p + 3);
        double* y3i = yi + sb * (4 * p + 3);
#pragma GCC ivdep
        for (std::int64_t q = 0; q < sb; ++q) {
            const double apcr = ar[q] + cr[q], apci = ai[q] + ci[q];
            const double amcr = ar[q] - cr[q], amci = ai[q] - ci[q];
            const double bpdr = br[q] + dr[q], bpdi = bi[q] + di[q];
            // j * (b - d) with j = sqrt(-1): (re, im) -> (-im, re)
            const double jbmdr = -(bi[q] - di[q]), jbmdi = br[q] - dr[q];
            y0r[q] = apcr + bpdr;
            y0i[q] = apci + bpdi;
            const double t1r = amcr - jbmdr, t1i = amci - jbmdi;
            y1r[q] = w1r * t1r - w1i * t1i;
            y1i[q] = w1r * t1i + w1i * t1r;
            if (lower_only) continue;
            const double t2r = apcr - bpdr, t2i = apci - bpdi;
            y2r[q] = w2r * t2r - w2i * t2i;
            y2i[q] = w2r * t2i + w2i * t2r;
            const double t3r = amcr + jbmdr, t3i = amci + jbmdi;
            y3r[q] = w3r * t3r - w3i * t3i;
            y3i[q] = w3r * t3i + w3i * t3r;
        }
    }
}

// One radix-8 Stockham stage: length len = 8m, stride s. The 8-point DFT is
// done as radix-2 x (radix-4) with the constant W8 twiddles. When
// `upper_zero` is set the inputs x_4..x_7 (the upper half of the sequence:
// the zero padding) are known to be zero and are not read.
template <int B, bool upper_zero>
static inline void stage8(std::int64_t m, std::int64_t s, const double* tw,
                          const double* __restrict xr, const double* __restrict xi,
                          double* __restrict yr, double* __restrict yi) {
    constexpr double r2 = 0.70710678118654752440084436210484903928;
    const std::int64_t sb = s * B;
    for (std::int64_t p = 0; p < m; ++p) {
        const double* w = tw + 14 * p;
        const std::int64_t in0 = sb * p, step = sb * m;
        const std::int64_t out0 = sb * 8 * p;
#pragma GCC ivdep
        for (std::int64_t q = 0; q < sb; ++q) {
            double ar[4], ai[4], br[4], bi[4];
            for (int n = 0; n < 4; ++n) {
                const double ur = xr[in0 + n * step + q], ui = xi[in0 + n * step + q];
                if (upper_zero) {
                    ar[n] = ur; ai[n] = ui; br[n] = ur; bi[n] = ui;
                } else {
                    const double vr = xr[in0 + (n + 4) * step + q], vi = xi[in0 + (n + 4) * step + q];
                    ar[n] = ur + vr; ai[n] = ui + vi; br[n] = ur - vr; bi[n] = ui - vi;
                }
            }
            // b_n *= W8^n: W8 = (1 - i)/sqrt2, W8^2 = -i, W8^3 = (-1 - i)/sqrt2
            {
                const double r = br[1], i = bi[1];
                br[1] = r2 * (r + i); bi[1] = r2 * (i - r);
                const double r_2 = br[2], i_2 = bi[2];
                br[2] = i_2; bi[2] = -r_2;
                const double r3 = br[3], i3 = bi[3];
                br[3] = r2 * (i3 - r3); bi[3] = -r2 * (r3 + i3);
            }
            double Xr[8], Xi[8];
            // 4-point DFTs: even outputs from a, odd from b.
            {
                const double t0r = ar[0] + ar[2], t0i = ai[0] + ai[2];
                const double t1r = ar[0] - ar[2], t1i = ai[0] - ai[2];
                const double t2r = ar[1] + ar[3], t2i = ai[1] + ai[3];
                const double t3r = ai[1] - ai[3], t3i = -(ar[1] - ar[3]);  // (a1 - a3) * (-i)
                Xr[0] = t0r + t2r; Xi[0] = t0i + t2i;
                Xr[4] = t0r - t2r; Xi[4] = t0i - t2i;
                Xr[2] = t1r + t3r; Xi[2] = t1i + t3i;
                Xr[6] = t1r - t3r; Xi[6] = t1i - t3i;
            }
            {
                const double t0r = br[0] + br[2], t0i = bi[0] + bi[2];
                const double t1r = br[0] - br[2], t1i = bi[0] - bi[2];
                const double t2r = br[1] + br[3], t2i = bi[1] + bi[3];
                const double t3r = bi[1] - bi[3], t3i = -(br[1] - br[3]);
                Xr[1] = t0r + t2r; Xi[1] = t0i + t2i;
                Xr[5] = t0r - t2r; Xi[5] = t0i - t2i;
                Xr[3] = t1r + t3r; Xi[3] = t1i + t3i;
                Xr[7] = t1r - t3r; Xi[7] = t1i - t3i;
            }
            yr[out0 + q] = Xr[0];
            yi[out0 + q] = Xi[0];
            for (int k = 1; k < 8; ++k) {
                const double wr = w[2 * (k - 1)], wi = w[2 * (k - 1) + 1];
                yr[out0 + k * sb + q] = wr * Xr[k] - wi * Xi[k];
                yi[out0 + k * sb + q] = wr * Xi[k] + wi * Xr[k];
            }
        }
    }
}

// Final radix-2 stage (len = 2, so no twiddles): stride s = N/2.
template <int B>
static inline void stage2(std::int64_t s, const double* __restrict xr, const double* __restrict xi,
                          double* __restrict yr, double* __restrict yi) {
    const std::int64_t sb = s * B;
#pragma GCC ivdep
    for (std::int64_t q = 0; q < sb; ++q) {
        const double ar = xr[q], ai = xi[q], br = xr[q + sb], bi = xi[q + sb];
        yr[q] = ar + br;
        yi[q] = ai + bi;
        yr[q + sb] = ar - br;
        yi[q + sb] = ai - bi;
    }
}

// Forward FFT of B lanes in (xr, xi), using (yr, yi) as scratch. Returns true
// when the result ended in (yr, yi), false when it is back in (xr, xi).
// `upper_zero`: the second half of the input is zero (zero padding), so the
// first radix-8 stage skips it. `lower_only`: only outputs 0..N/2-1 are
// wanted; a final radix-4 stage then skips the upper half (other plans
// compute everything).
template <int B>
static bool fft_forward(const FftPlanView& plan, double* xr, double* xi, double* yr, double* yi,
                        bool upper_zero = false, bool lower_only = false) {
    std::int64_t len = plan.n;
    std::int64_t s = 1;
    bool in_y = false;
    for (int st = 0; st < plan.n_stages; ++st) {
        double* sr = in_y ? yr : xr;
        double* si = in_y ? yi : xi;
        double* dr = in_y ? xr : yr;
        double* di = in_y ? xi : yi;
        if (plan.radix[st] == 8) {
            if (st == 0 && upper_zero)
                stage8<B, true>(len / 8, s, plan.twiddles[st], sr, si, dr, di);
            else
                stage8<B, false>(len / 8, s, plan.twiddles[st], sr, si, dr, di);
            len /= 8;
            s *= 8;
        } else if (plan.radix[st] == 4) {
            // In the last stage (len = 4, m = 1) outputs k = 0, 1 are the lower half.
            if (lower_only && len == 4)
                stage4<B, true>(1, s, plan.twiddles[st], sr, si, dr, di);
            else
                stage4<B>(len / 4, s, plan.twiddles[st], sr, si, dr, di);
            len /= 4;
            s *= 4;
        } else {
            stage2<B>(s, sr, si, dr, di);
            len /= 2;
            s *= 2;
        }
        in_y = !in_y;
    }
    return in_y;
}

}  // namespace ANODIFF_ARCH_NS
}  // namespace anodiff
#endif
