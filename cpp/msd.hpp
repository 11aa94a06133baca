// Time-averaged MSD of a window, accumulated over dimension chunks.
//
// For a window of T rows x_i(t) = w_i(t_w + t) - w_i(t_w) (centred on its first
// row), the accumulator keeps, summed over the dimensions i seen so far,
//   acf[tau]  = sum_i sum_{t=0}^{T-1-tau} x_i(t) x_i(t+tau)      tau = 0..max_lag
//   sumsq[t]  = sum_i x_i(t)^2                                   t = 0..T-1
// both in float64, both additive across dimension chunks. Then
//   sum_t (x(t+tau) - x(t))^2 = sum_{t<T-tau} (sumsq[t] + sumsq[t+tau]) - 2 acf[tau]
// and MSD(tau) is that divided by T - tau. acf comes from a zero-padded FFT of
// length N >= 2T - 1 (a power of two), computed per pair of columns as one
// complex transform.
#pragma once

#include <cstdint>
#include <string>

namespace anodiff {

constexpr int kMsdLanes = 8;

// Smallest power of two >= 2T - 1.
std::int64_t msd_fft_length(std::int64_t T);

// Name of the instruction set the kernels dispatch to on this CPU.
std::string msd_isa();

// Adds columns [0, n_cols) of `data` (T rows, row stride in elements) to
// acf[0..max_lag] and sumsq[0..T-1]. Threads over column chunks.
void msd_accumulate(const float* data, std::int64_t T, std::int64_t n_cols, std::int64_t row_stride,
                    std::int64_t max_lag, double* acf, double* sumsq, int n_threads);
void msd_accumulate(const double* data, std::int64_t T, std::int64_t n_cols, std::int64_t row_stride,
                    std::int64_t max_lag, double* acf, double* sumsq, int n_threads);

}  // namespace anodiff
