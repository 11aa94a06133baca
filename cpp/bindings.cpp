// Python bindings of anodiff._core: the only file that knows about Python.
// Every kernel runs with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>
#include <algorithm>

#include "msd.hpp"
#include "parallel.hpp"
#include "pair_math.hpp"

namespace py = pybind11;

namespace {

int resolve_threads(int n_threads) { return n_threads > 0 ? n_threads : anodiff::hardware_threads(); }

template <typename T>
T* mutable_f64_vector(py::array_t<T>& a, std::int64_t n, const char* name) {
    if (a.ndim() != 1 || a.shape(0) != n)
        throw std::invalid_argument(std::string(name) + " must be a 1-D array of length " + std::to_string(n));
    return a.mutable_data();
}

// acf (max_lag+1,) and sumsq (T,) are float64 accumulators updated in place.
template <typename Scalar>
void msd_accumulate_py(py::array_t<Scalar, py::array::c_style> block, py::array_t<double> acf,
                       py::array_t<double> sumsq, int n_threads) {
    if (block.ndim() != 2) throw std::invalid_argument("block must be 2-D (n_steps, n_dims)");
    const std::int64_t T = block.shape(0), n = block.shape(1);
    const std::int64_t max_lag = static_cast<std::int64_t>(acf.size()) - 1;
    if (max_lag < 0 || max_lag >= std::max<std::int64_t>(T, 1))
        throw std::invalid_argument("acf must have length max_lag + 1 with max_lag < n_steps");
    if (!(acf.flags() & py::array::c_style) || !(sumsq.flags() & py::array::c_style))
        throw std::invalid_argument("acf and sumsq must be C-contiguous float64");
    double* acf_ptr = mutable_f64_vector(acf, max_lag + 1, "acf");
    double* sumsq_ptr = mutable_f64_vector(sumsq, T, "sumsq");
    const Scalar* data = block.data();
    const int threads = resolve_threads(n_threads);
    py::gil_scoped_release release;
    anodiff::msd_accumulate(data, T, n, n, max_lag, acf_ptr, sumsq_ptr, threads);
}

}  // namespace

// --- pair_math (shared with cuda/): CPU evaluation of the per-pair arithmetic ---
namespace {

using F64 = py::array_t<double, py::array::c_style | py::array::forcecast>;
using I64 = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

const double* gram_ptr(const F64& G, std::int64_t& T) {
    if (G.ndim() != 2 || G.shape(0) != G.shape(1)) throw std::invalid_argument("G must be a square (T, T) array");
    T = G.shape(0);
    return G.data();
}

// out[k] = f(idx0[k], idx1[k], ...) with every index checked against [0, T).
template <int NIdx, typename F>
py::array_t<double> pair_eval(const F64& G, const std::vector<I64>& idx, F f) {
    std::int64_t T = 0;
    const double* g = gram_ptr(G, T);
    const py::ssize_t n = idx[0].size();
    for (const auto& a : idx) {
        if (a.size() != n) throw std::invalid_argument("index arrays must have the same length");
        for (py::ssize_t k = 0; k < n; ++k)
            if (a.data()[k] < 0 || a.data()[k] >= T) throw std::invalid_argument("index out of range [0, T)");
    }
    py::array_t<double> out(n);
    double* o = out.mutable_data();
    for (py::ssize_t k = 0; k < n; ++k) {
        std::int64_t i[NIdx];
        for (int j = 0; j < NIdx; ++j) i[j] = idx[j].data()[k];
        o[k] = f(g, T, i);
    }
    return out;
}

py::tuple pair_curves_serial_py(const F64& G, const F64& P, py::object L, double s_lo, double s_hi, std::int64_t n_s,
                                double r_lo, double r_hi, std::int64_t n_r, bool transverse) {
    std::int64_t T = 0;
    const double* g = gram_ptr(G, T);
    if (P.ndim() != 1 || P.shape(0) != T) throw std::invalid_argument("P must have length T");
    F64 Larr;
    const double* l = nullptr;
    if (!L.is_none()) {
        Larr = F64::ensure(L);
        if (!Larr || Larr.ndim() != 1 || Larr.shape(0) != T) throw std::invalid_argument("L must have length T");
        l = Larr.data();
    }
    if (!(s_lo > 0 && s_hi > s_lo && r_lo > 0 && r_hi > r_lo && n_s > 0 && n_r > 0))
        throw std::invalid_argument("bins need 0 < lo < hi and n > 0");
    py::array_t<double> S({static_cast<py::ssize_t>(anodiff::pair::kSRows), static_cast<py::ssize_t>(n_s)});
    py::array_t<double> R({static_cast<py::ssize_t>(anodiff::pair::kRRows), static_cast<py::ssize_t>(n_r)});
    std::fill(S.mutable_data(), S.mutable_data() + S.size(), 0.0);
    std::fill(R.mutable_data(), R.mutable_data() + R.size(), 0.0);
    const auto sb = anodiff::pair::make_log_bins(s_lo, s_hi, n_s);
    const auto rb = anodiff::pair::make_log_bins(r_lo, r_hi, n_r);
    double* sp = S.mutable_data();
    double* rp = R.mutable_data();
    const double* p = P.data();
    {
        py::gil_scoped_release release;
        anodiff::pair::pair_curves_serial(g, T, p, l, sb, rb, transverse, sp, rp);
    }
    return py::make_tuple(S, R);
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "anodiff compiled CPU kernels";
    m.def("msd_isa", &anodiff::msd_isa, "Instruction set the MSD kernels dispatch to on this CPU.");
    m.def("msd_fft_length", &anodiff::msd_fft_length, py::arg("T"),
          "FFT length used for a window of T steps (smallest power of two >= 2T-1).");
    m.def("hardware_threads", &anodiff::hardware_threads);
    m.def("msd_accumulate", &msd_accumulate_py<float>, py::arg("block").noconvert(), py::arg("acf"),
          py::arg("sumsq"), py::arg("n_threads") = 0,
          "Add a (T, n) float32 block's centred autocorrelation and squares to acf, sumsq.");
    m.def("msd_accumulate", &msd_accumulate_py<double>, py::arg("block").noconvert(), py::arg("acf"),
          py::arg("sumsq"), py::arg("n_threads") = 0,
          "Add a (T, n) float64 block's centred autocorrelation and squares to acf, sumsq.");
    // --- pair_math (shared with cuda/) ---
    m.def("pair_delta_r2", [](const F64& G, const I64& s, const I64& t) {
        return pair_eval<2>(G, {s, t}, [](const double* g, std::int64_t T, const std::int64_t* i) {
            return anodiff::pair::delta_r2(g, T, i[0], i[1]); });
    }, py::arg("G"), py::arg("s"), py::arg("t"), "|x(t)-x(s)|^2 = G_ss + G_tt - 2 G_st (cpp/pair_math.hpp).");
    m.def("pair_line_distance2", [](const F64& G, const I64& s, const I64& t, const I64& u) {
        return pair_eval<3>(G, {s, t, u}, [](const double* g, std::int64_t T, const std::int64_t* i) {
            return anodiff::pair::line_distance2(g, T, i[0], i[1], i[2]); });
    }, py::arg("G"), py::arg("s"), py::arg("t"), py::arg("u"), "Squared distance of x(u) from the line x(s)x(t).");
    m.def("pair_transverse_distance2", [](const F64& G, const I64& s, const I64& t) {
        return pair_eval<2>(G, {s, t}, [](const double* g, std::int64_t T, const std::int64_t* i) {
            return anodiff::pair::transverse_distance2(g, T, i[0], i[1]); });
    }, py::arg("G"), py::arg("s"), py::arg("t"), "max over s<u<t of pair_line_distance2.");
    m.def("pair_log_bin_index", [](const F64& x, double lo, double hi, std::int64_t n) {
        const auto b = anodiff::pair::make_log_bins(lo, hi, n);
        py::array_t<std::int64_t> out(x.size());
        for (py::ssize_t k = 0; k < x.size(); ++k) out.mutable_data()[k] = anodiff::pair::log_bin_index(x.data()[k], b);
        return out;
    }, py::arg("x"), py::arg("lo"), py::arg("hi"), py::arg("n"), "Log bin of each x over [lo, hi), -1 outside.");
    m.def("pair_linear_slot", [](const F64& x, double lo, double hi, std::int64_t n) {
        const auto b = anodiff::pair::make_linear_bins(lo, hi, n);
        py::array_t<std::int64_t> out(x.size());
        for (py::ssize_t k = 0; k < x.size(); ++k) out.mutable_data()[k] = anodiff::pair::linear_slot(x.data()[k], b);
        return out;
    }, py::arg("x"), py::arg("lo"), py::arg("hi"), py::arg("n"),
       "Histogram slot of each x: bin 0..n-1 over [lo, hi), n underflow, n+1 overflow, n+2 NaN.");
    m.def("pair_curves_serial", &pair_curves_serial_py, py::arg("G"), py::arg("P"), py::arg("L"), py::arg("s_lo"),
          py::arg("s_hi"), py::arg("n_s"), py::arg("r_lo"), py::arg("r_hi"), py::arg("n_r"), py::arg("transverse") = true,
          "Binned pair curves (S, R) of a window, serial host reference of the CUDA kernel (cpp/pair_math.hpp).");
}
