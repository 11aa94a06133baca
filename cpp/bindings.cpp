// Python bindings of anodiff._core: the only file that knows about Python.
// Every kernel runs with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "msd.hpp"
#include "parallel.hpp"
#include "toy.hpp"

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

// --- toy: conversion helpers ---
namespace {

using CArrayF64 = py::array_t<double, py::array::c_style>;

void toy_gradient_grid_py(CArrayF64 z, double h, CArrayF64 grad, int n_threads) {
    if (z.ndim() != 2) throw std::invalid_argument("z must be 2-D (ny, nx)");
    const std::int64_t ny = z.shape(0), nx = z.shape(1);
    if (grad.ndim() != 3 || grad.shape(0) != ny || grad.shape(1) != nx || grad.shape(2) != 2)
        throw std::invalid_argument("grad must have shape (ny, nx, 2)");
    if (!(h > 0)) throw std::invalid_argument("h must be positive");
    const double* zp = z.data();
    double* gp = grad.mutable_data();
    const int threads = resolve_threads(n_threads);
    py::gil_scoped_release release;
    anodiff::toy_gradient_grid(zp, ny, nx, h, gp, threads);
}

void toy_walk_py(CArrayF64 grad, CArrayF64 z, double h, double x0, double y0, CArrayF64 starts,
                 std::int64_t n_steps, double eta, double sigma, std::uint64_t seed, std::uint64_t walker_offset,
                 CArrayF64 traj, py::object grads_obj, py::object loss_obj,
                 py::array_t<std::int64_t, py::array::c_style> exit_step, int n_threads) {
    if (grad.ndim() != 3 || grad.shape(2) != 2) throw std::invalid_argument("grad must have shape (ny, nx, 2)");
    const std::int64_t ny = grad.shape(0), nx = grad.shape(1);
    if (ny < 2 || nx < 2) throw std::invalid_argument("the grid needs at least 2 x 2 nodes");
    if (starts.ndim() != 2 || starts.shape(1) != 2) throw std::invalid_argument("starts must be (n_walkers, 2)");
    const std::int64_t n = starts.shape(0);
    if (n_steps < 0) throw std::invalid_argument("n_steps must be >= 0");
    if (traj.ndim() != 3 || traj.shape(0) != n || traj.shape(1) != n_steps + 1 || traj.shape(2) != 2)
        throw std::invalid_argument("traj must be (n_walkers, n_steps + 1, 2)");
    if (exit_step.ndim() != 1 || exit_step.shape(0) != n)
        throw std::invalid_argument("exit_step must be (n_walkers,)");
    if (z.ndim() != 2 || z.shape(0) != ny || z.shape(1) != nx)
        throw std::invalid_argument("z must have shape (ny, nx) of grad");
    double* lp = nullptr;
    CArrayF64 loss;
    if (!loss_obj.is_none()) {
        loss = loss_obj.cast<CArrayF64>();
        if (loss.ptr() != loss_obj.ptr())
            throw std::invalid_argument("loss must be a C-contiguous float64 array (written in place)");
        if (loss.ndim() != 2 || loss.shape(0) != n || loss.shape(1) != n_steps + 1)
            throw std::invalid_argument("loss must be (n_walkers, n_steps + 1)");
        lp = loss.mutable_data();
    }
    double* grads_ptr = nullptr;
    CArrayF64 grads;
    if (!grads_obj.is_none()) {
        grads = grads_obj.cast<CArrayF64>();
        if (grads.ptr() != grads_obj.ptr())
            throw std::invalid_argument("grads must be a C-contiguous float64 array (written in place)");
        if (grads.ndim() != 3 || grads.shape(0) != n || grads.shape(1) != n_steps || grads.shape(2) != 2)
            throw std::invalid_argument("grads must be (n_walkers, n_steps, 2)");
        grads_ptr = grads.mutable_data();
    }
    const double* gp = grad.data();
    const double* zp = z.data();
    const double* sp = starts.data();
    double* tp = traj.mutable_data();
    std::int64_t* ep = exit_step.mutable_data();
    const int threads = resolve_threads(n_threads);
    py::gil_scoped_release release;
    anodiff::toy_walk(gp, zp, ny, nx, h, x0, y0, sp, n, n_steps, eta, sigma, seed, walker_offset, tp,
                      grads_ptr, lp, ep, threads);
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
    // --- toy ---
    m.def("toy_gradient_grid", &toy_gradient_grid_py, py::arg("z").noconvert(), py::arg("h"),
          py::arg("grad").noconvert(), py::arg("n_threads") = 0,
          "Central-difference gradient (numpy.gradient convention) of a float64 grid z into grad (ny, nx, 2).");
    m.def("toy_walk", &toy_walk_py, py::arg("grad").noconvert(), py::arg("z").noconvert(), py::arg("h"),
          py::arg("x0"), py::arg("y0"), py::arg("starts").noconvert(), py::arg("n_steps"), py::arg("eta"),
          py::arg("sigma"), py::arg("seed"), py::arg("walker_offset"), py::arg("traj").noconvert(),
          py::arg("grads"), py::arg("loss"), py::arg("exit_step").noconvert(), py::arg("n_threads") = 0,
          "Run SGD walkers w <- w - eta*grad + eta*sigma*N(0, I) on a gridded landscape (in place).");
}
