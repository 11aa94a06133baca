// Python bindings of anodiff._core: the only file that knows about Python.
// Every kernel runs with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>
#include <algorithm>
#include <pybind11/stl.h>

#include "msd.hpp"
#include "levy.hpp"
#include "parallel.hpp"

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


// --- levy: conversion helpers ---
namespace {

using f64arr = py::array_t<double, py::array::c_style | py::array::forcecast>;

py::array_t<double> levy_logpdf_py(f64arr x, double alpha, double beta, double scale, double loc, int n_threads) {
    py::array_t<double> out(x.request().shape);
    const std::int64_t n = x.size();
    const double* xp = x.data();
    double* op = out.mutable_data();
    const int threads = resolve_threads(n_threads);
    {
        py::gil_scoped_release release;
        anodiff::levy::stable_logpdf(xp, n, alpha, beta, scale, loc, op, threads);
    }
    return out;
}

py::array_t<double> levy_build_table_py(double alpha, double beta, double du, int n_threads) {
    std::vector<double> t;
    const int threads = resolve_threads(n_threads);
    {
        py::gil_scoped_release release;
        t = anodiff::levy::build_table(alpha, beta, du, threads);
    }
    py::array_t<double> out(static_cast<py::ssize_t>(t.size()));
    std::copy(t.begin(), t.end(), out.mutable_data());
    return out;
}

std::vector<const double*> levy_table_ptrs(const std::vector<f64arr>& tables) {
    std::vector<const double*> ptrs;
    for (auto& t : tables) {
        if (t.ndim() != 1 || t.size() < anodiff::levy::kTabHeader) throw std::invalid_argument("not a stable table");
        ptrs.push_back(t.data());
    }
    return ptrs;
}

py::array_t<double> levy_table_moments_py(std::vector<f64arr> tables, f64arr x, py::object w, double loc,
                                          double scale, int n_threads) {
    auto ptrs = levy_table_ptrs(tables);
    const int K = static_cast<int>(ptrs.size());
    const std::int64_t n = x.size();
    f64arr wa;
    const double* wp = nullptr;
    if (!w.is_none()) {
        wa = f64arr::ensure(w);
        if (wa.size() != n) throw std::invalid_argument("weights must have the length of x");
        wp = wa.data();
    }
    py::array_t<double> out({K, anodiff::levy::kMoments});
    double* op = out.mutable_data();
    const double* xp = x.data();
    const int threads = resolve_threads(n_threads);
    {
        py::gil_scoped_release release;
        anodiff::levy::table_moments(ptrs.data(), K, xp, wp, n, loc, scale, op, threads);
    }
    return out;
}

py::tuple levy_table_pointwise_py(std::vector<f64arr> tables, f64arr x, double loc, double scale, int n_threads) {
    auto ptrs = levy_table_ptrs(tables);
    const int K = static_cast<int>(ptrs.size());
    const std::int64_t n = x.size();
    py::array_t<double> l({static_cast<py::ssize_t>(K), static_cast<py::ssize_t>(n)});
    py::array_t<double> d1({static_cast<py::ssize_t>(K), static_cast<py::ssize_t>(n)});
    double* lp = l.mutable_data();
    double* dp = d1.mutable_data();
    const double* xp = x.data();
    const int threads = resolve_threads(n_threads);
    {
        py::gil_scoped_release release;
        anodiff::levy::table_pointwise(ptrs.data(), K, xp, n, loc, scale, lp, dp, threads);
    }
    return py::make_tuple(l, d1);
}

py::tuple levy_table_eval_py(f64arr table, f64arr x) {
    py::array_t<double> l(x.request().shape), d1(x.request().shape), d2(x.request().shape);
    const std::int64_t n = x.size();
    for (std::int64_t i = 0; i < n; ++i)
        anodiff::levy::table_eval_std(table.data(), x.data()[i], l.mutable_data() + i, d1.mutable_data() + i,
                                      d2.mutable_data() + i);
    return py::make_tuple(l, d1, d2);
}

template <typename Scalar>
std::int64_t levy_histogram_py(py::array_t<Scalar, py::array::c_style> x, double center, double width, double u_max,
                               py::array_t<std::int64_t> counts, int n_threads) {
    if (!(counts.flags() & py::array::c_style) || counts.ndim() != 1 || counts.size() < 3)
        throw std::invalid_argument("counts must be a C-contiguous int64 vector of length nbins + 2");
    if (!(width > 0) || !(u_max > 0)) throw std::invalid_argument("width and u_max must be positive");
    const std::int64_t nbins = counts.size() - 2, n = x.size();
    const Scalar* xp = x.data();
    std::int64_t* cp = counts.mutable_data();
    std::int64_t bad = 0;
    const int threads = resolve_threads(n_threads);
    {
        py::gil_scoped_release release;
        anodiff::levy::asinh_histogram(xp, n, center, width, u_max, nbins, cp, &bad, threads);
    }
    return bad;
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
    // --- levy ---
    m.def("levy_logpdf", &levy_logpdf_py, py::arg("x"), py::arg("alpha"), py::arg("beta"), py::arg("scale") = 1.0,
          py::arg("loc") = 0.0, py::arg("n_threads") = 0,
          "log-density of the alpha-stable law S0(alpha, beta, scale, loc) by direct quadrature.");
    m.def("levy_build_table", &levy_build_table_py, py::arg("alpha"), py::arg("beta"), py::arg("du") = 0.25,
          py::arg("n_threads") = 0, "Tabulated standard S0 log-density (Chebyshev panels in asinh x + tail series).");
    m.def("levy_table_moments", &levy_table_moments_py, py::arg("tables"), py::arg("x"), py::arg("w"),
          py::arg("loc"), py::arg("scale"), py::arg("n_threads") = 0,
          "(K, 9) weighted sums of l, l', l' z, l'', l'' z, l'' z^2, l^2, l x, l x^2 at z = (x - loc)/scale per table.");
    m.def("levy_table_pointwise", &levy_table_pointwise_py, py::arg("tables"), py::arg("x"), py::arg("loc"),
          py::arg("scale"), py::arg("n_threads") = 0, "(l, l') per table and point, shape (K, n).");
    m.def("levy_table_eval", &levy_table_eval_py, py::arg("table"), py::arg("x"),
          "(l, l', l'') of the standard log-density from a table.");
    m.def("levy_histogram", &levy_histogram_py<float>, py::arg("x").noconvert(), py::arg("center"), py::arg("width"),
          py::arg("u_max"), py::arg("counts"), py::arg("n_threads") = 0,
          "Add float32 values to an asinh-spaced histogram (under/overflow at the ends); returns #non-finite.");
    m.def("levy_histogram", &levy_histogram_py<double>, py::arg("x").noconvert(), py::arg("center"), py::arg("width"),
          py::arg("u_max"), py::arg("counts"), py::arg("n_threads") = 0,
          "Add float64 values to an asinh-spaced histogram (under/overflow at the ends); returns #non-finite.");
}
