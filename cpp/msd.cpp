#include "msd.hpp"

#include <algorithm>
#include <type_traits>
#include <thread>
#include <vector>

#include "fft_batch.hpp"
#include "parallel.hpp"

namespace anodiff {

#define ANODIFF_DECLARE_ARCH(ns)                                                                   \
    namespace ns {                                                                                 \
    void accumulate_f32(const FftPlanView&, double*, const float*, std::int64_t, std::int64_t,     \
                        std::int64_t, std::int64_t, std::int64_t, double*, double*);               \
    void accumulate_f64(const FftPlanView&, double*, const double*, std::int64_t, std::int64_t,    \
                        std::int64_t, std::int64_t, std::int64_t, double*, double*);               \
    }
ANODIFF_DECLARE_ARCH(generic)
#if defined(ANODIFF_HAVE_X86_ARCHES)
ANODIFF_DECLARE_ARCH(avx2)
ANODIFF_DECLARE_ARCH(avx512)
#endif

namespace {

enum class Isa { generic, avx2, avx512 };

Isa detect_isa() {
#if defined(ANODIFF_HAVE_X86_ARCHES)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")) return Isa::avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
#endif
    return Isa::generic;
}

Isa isa() {
    static const Isa value = detect_isa();
    return value;
}

template <typename Scalar>
void accumulate_range(const FftPlanView& plan, double* work, const Scalar* data, std::int64_t T,
                      std::int64_t stride, std::int64_t c0, std::int64_t c1, std::int64_t max_lag,
                      double* acf, double* sumsq) {
    constexpr bool f32 = std::is_same<Scalar, float>::value;
    switch (isa()) {
#if defined(ANODIFF_HAVE_X86_ARCHES)
        case Isa::avx512:
            if constexpr (f32) avx512::accumulate_f32(plan, work, data, T, stride, c0, c1, max_lag, acf, sumsq);
            else avx512::accumulate_f64(plan, work, data, T, stride, c0, c1, max_lag, acf, sumsq);
            return;
        case Isa::avx2:
            if constexpr (f32) avx2::accumulate_f32(plan, work, data, T, stride, c0, c1, max_lag, acf, sumsq);
            else avx2::accumulate_f64(plan, work, data, T, stride, c0, c1, max_lag, acf, sumsq);
            return;
#endif
        default:
            if constexpr (f32) generic::accumulate_f32(plan, work, data, T, stride, c0, c1, max_lag, acf, sumsq);
            else generic::accumulate_f64(plan, work, data, T, stride, c0, c1, max_lag, acf, sumsq);
    }
}

template <typename Scalar>
void accumulate(const Scalar* data, std::int64_t T, std::int64_t n_cols, std::int64_t stride,
                std::int64_t max_lag, double* acf, double* sumsq, int n_threads) {
    if (T <= 0 || n_cols <= 0) return;
    const std::int64_t N = msd_fft_length(T);
    const FftPlan plan(N);
    const FftPlanView view = plan.view();
    const std::int64_t group = 2 * kMsdLanes;
    const std::int64_t n_groups = (n_cols + group - 1) / group;
    const int workers = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(n_threads, n_groups)));
    // Each worker sums into its own buffers; they are added in a fixed order so
    // the result does not depend on scheduling.
    std::vector<std::vector<double>> acf_part(workers, std::vector<double>(max_lag + 1, 0.0));
    std::vector<std::vector<double>> sumsq_part(workers, std::vector<double>(T, 0.0));
    parallel_for_chunks(workers, n_groups, [&](int w, std::int64_t g0, std::int64_t g1) {
        std::vector<double> work(static_cast<std::size_t>((4 * N + T) * kMsdLanes), 0.0);
        accumulate_range<Scalar>(view, work.data(), data, T, stride, g0 * group,
                                 std::min(n_cols, g1 * group), max_lag, acf_part[w].data(),
                                 sumsq_part[w].data());
    });
    for (int w = 0; w < workers; ++w) {
        for (std::int64_t k = 0; k <= max_lag; ++k) acf[k] += acf_part[w][k];
        for (std::int64_t t = 0; t < T; ++t) sumsq[t] += sumsq_part[w][t];
    }
}

}  // namespace

std::int64_t msd_fft_length(std::int64_t T) {
    std::int64_t n = 2;
    while (n < 2 * T - 1) n *= 2;
    return n;
}

std::string msd_isa() {
    switch (isa()) {
        case Isa::avx512: return "avx512";
        case Isa::avx2: return "avx2";
        default: return "generic";
    }
}

void msd_accumulate(const float* data, std::int64_t T, std::int64_t n_cols, std::int64_t row_stride,
                    std::int64_t max_lag, double* acf, double* sumsq, int n_threads) {
    accumulate<float>(data, T, n_cols, row_stride, max_lag, acf, sumsq, n_threads);
}

void msd_accumulate(const double* data, std::int64_t T, std::int64_t n_cols, std::int64_t row_stride,
                    std::int64_t max_lag, double* acf, double* sumsq, int n_threads) {
    accumulate<double>(data, T, n_cols, row_stride, max_lag, acf, sumsq, n_threads);
}

}  // namespace anodiff
