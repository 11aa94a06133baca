// Python bindings of anodiff._core: the only file that knows about Python.
// Every kernel runs with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "msd.hpp"
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
}
