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
        const int radix = (len % 4 == 0) ? 4 : 2;
        stage_radix.push_back(radix);
        const std::int64_t m = len / radix;
        std::vector<double> tw;
        if (radix == 4) {
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
template <int B>
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
            const double t2r = apcr - bpdr, t2i = apci - bpdi;
            y2r[q] = w2r * t2r - w2i * t2i;
            y2i[q] = w2r * t2i + w2i * t2r;
            const double t3r = amcr + jbmdr, t3i = amci + jbmdi;
            y3r[q] = w3r * t3r - w3i * t3i;
            y3i[q] = w3r * t3i + w3i * t3r;
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
template <int B>
static bool fft_forward(const FftPlanView& plan, double* xr, double* xi, double* yr, double* yi) {
    std::int64_t len = plan.n;
    std::int64_t s = 1;
    bool in_y = false;
    for (int st = 0; st < plan.n_stages; ++st) {
        double* sr = in_y ? yr : xr;
        double* si = in_y ? yi : xi;
        double* dr = in_y ? xr : yr;
        double* di = in_y ? xi : yi;
        if (plan.radix[st] == 4) {
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
