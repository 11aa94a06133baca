// Per-instruction-set body of the MSD accumulator (see msd.hpp for the maths).
// Included once per architecture translation unit with ANODIFF_ARCH_NS set.
// No std:: templates here: see FftPlanView.
#pragma once

#include <cstdint>

#include "fft_batch.hpp"

namespace anodiff {
namespace ANODIFF_ARCH_NS {

// Complex lanes per batch; each lane carries two real columns.
constexpr int kLanes = 8;

// Z = X + iY (two real columns per lane). |X_k|^2 = |Z_k + conj Z_{N-k}|^2 / 4 and
// |Y_k|^2 = |Z_k - conj Z_{N-k}|^2 / 4. Writes conj(P_k) = |X_k|^2 - i |Y_k|^2, so
// that a forward FFT of it gives N (acf_x - i acf_y).
// One batch of lanes as a GCC/Clang vector: the compiler splits it into the
// widest registers of the target (2, 4 or 8 doubles), so the loops over lanes
// are vector code whatever the optimiser decides about the surrounding loop.
typedef double LaneVec __attribute__((vector_size(kLanes * sizeof(double))));

static inline LaneVec load_lanes(const double* p) {
    LaneVec v;
    __builtin_memcpy(&v, p, sizeof(v));
    return v;
}

static inline void store_lanes(double* p, LaneVec v) { __builtin_memcpy(p, &v, sizeof(v)); }

static inline void power_spectra(std::int64_t N, const double* __restrict zr,
                                 const double* __restrict zi, double* __restrict pr,
                                 double* __restrict pi) {
    constexpr int B = kLanes;
    for (std::int64_t k = 0; k < N; ++k) {
        const std::int64_t km = (N - k) & (N - 1);
        const LaneVec ar = load_lanes(zr + k * B), ai = load_lanes(zi + k * B);
        const LaneVec cr = load_lanes(zr + km * B), ci = load_lanes(zi + km * B);
        const LaneVec sr = ar + cr, si = ai - ci;
        const LaneVec dr = ar - cr, di = ai + ci;
        store_lanes(pr + k * B, 0.25 * (sr * sr + si * si));
        store_lanes(pi + k * B, -0.25 * (dr * dr + di * di));
    }
}

// Adds the contribution of columns [c0, c1) of `data` (T rows, row stride
// `row_stride` elements) to acf[0..max_lag] and sumsq[0..T-1]. Every column is
// centred on its first row before any product (the numerical contract).
// `work` holds (4 * N + T) * kLanes doubles, zero-initialised by the caller
// (the last T * kLanes are the per-lane acf sums).
template <typename Scalar>
static void accumulate_columns(const FftPlanView& plan, double* work, const Scalar* data,
                               std::int64_t T, std::int64_t row_stride, std::int64_t c0,
                               std::int64_t c1, std::int64_t max_lag, double* acf, double* sumsq) {
    constexpr int B = kLanes;
    const std::int64_t N = plan.n;
    double* xr = work;
    double* xi = work + N * B;
    double* yr = work + 2 * N * B;
    double* yi = work + 3 * N * B;
    double* lane_acf = work + 4 * N * B;
    const double inv_n = 1.0 / static_cast<double>(N);
    for (std::int64_t col = c0; col < c1; col += 2 * B) {
        const std::int64_t ncols = (c1 - col < 2 * B) ? (c1 - col) : 2 * B;
        // Lane b holds column col+2b in re and col+2b+1 in im, centred.
        double origin[2 * B];
        for (int j = 0; j < 2 * B; ++j)
            origin[j] = j < ncols ? static_cast<double>(data[col + j]) : 0.0;
        for (std::int64_t t = 0; t < T; ++t) {
            const Scalar* row = data + t * row_stride + col;
            double v[2 * B];
            if (ncols == 2 * B) {
                for (int j = 0; j < 2 * B; ++j) v[j] = static_cast<double>(row[j]) - origin[j];
            } else {
                for (int j = 0; j < 2 * B; ++j)
                    v[j] = j < ncols ? static_cast<double>(row[j]) - origin[j] : 0.0;
            }
            double sq = 0.0;
            for (int b = 0; b < B; ++b) {
                xr[t * B + b] = v[2 * b];
                xi[t * B + b] = v[2 * b + 1];
                sq += v[2 * b] * v[2 * b] + v[2 * b + 1] * v[2 * b + 1];
            }
            sumsq[t] += sq;
        }
        // Zero padding up to N/2 (the first stage never reads the upper half).
        const std::int64_t pad_end = (2 * T <= N ? N / 2 : N) * B;
        for (std::int64_t k = T * B; k < pad_end; ++k) {
            xr[k] = 0.0;
            xi[k] = 0.0;
        }

        const bool in_y = fft_forward<B>(plan, xr, xi, yr, yi, /*upper_zero=*/2 * T <= N);
        double* zr = in_y ? yr : xr;
        double* zi = in_y ? yi : xi;
        double* pr = in_y ? xr : yr;
        double* pi = in_y ? xi : yi;
        // Z = X + iY. |X_k|^2 = |Z_k + conj Z_{N-k}|^2 / 4, |Y_k|^2 = |Z_k - conj Z_{N-k}|^2 / 4.
        // conj(P_k) = |X_k|^2 - i |Y_k|^2, so FFT(conj P) = N (acf_x - i acf_y).
        power_spectra(N, zr, zi, pr, pi);
        // max_lag < T <= N/2: only the lower half of the outputs is needed.
        const bool in_y2 = fft_forward<B>(plan, pr, pi, zr, zi, false, /*lower_only=*/2 * T <= N);
        const double* ar = in_y2 ? zr : pr;
        const double* ai = in_y2 ? zi : pi;
#pragma GCC ivdep
        for (std::int64_t k = 0; k < (max_lag + 1) * B; ++k) lane_acf[k] += ar[k] - ai[k];
    }
    for (std::int64_t tau = 0; tau <= max_lag; ++tau) {
        double s = 0.0;
        for (int b = 0; b < B; ++b) s += lane_acf[tau * B + b];
        acf[tau] += s * inv_n;
    }
}

void accumulate_f32(const FftPlanView& plan, double* work, const float* data, std::int64_t T,
                    std::int64_t row_stride, std::int64_t c0, std::int64_t c1,
                    std::int64_t max_lag, double* acf, double* sumsq) {
    accumulate_columns<float>(plan, work, data, T, row_stride, c0, c1, max_lag, acf, sumsq);
}

void accumulate_f64(const FftPlanView& plan, double* work, const double* data, std::int64_t T,
                    std::int64_t row_stride, std::int64_t c0, std::int64_t c1,
                    std::int64_t max_lag, double* acf, double* sumsq) {
    accumulate_columns<double>(plan, work, data, T, row_stride, c0, c1, max_lag, acf, sumsq);
}

}  // namespace ANODIFF_ARCH_NS
}  // namespace anodiff
