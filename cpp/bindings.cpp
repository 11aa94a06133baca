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
#include "geometry.hpp"
#include <pybind11/stl.h>
#include "levy.hpp"
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

// --- geometry (window analysis) helpers ---
namespace {

using f64c = py::array_t<double, py::array::c_style>;
using i64c = py::array_t<std::int64_t, py::array::c_style>;

const double* square_f64(const f64c& G, const char* name) {
    if (G.ndim() != 2 || G.shape(0) != G.shape(1))
        throw std::invalid_argument(std::string(name) + " must be a square 2-D float64 array");
    return G.data();
}

template <typename T>
T* out_vector(py::array_t<T, py::array::c_style>& a, std::int64_t n, const char* name) {
    if (a.ndim() != 1 || a.shape(0) != n)
        throw std::invalid_argument(std::string(name) + " must be a 1-D array of length " + std::to_string(n));
    return a.mutable_data();
}

std::int64_t edges_bins(const f64c& e, const char* name) {
    if (e.ndim() != 1 || e.shape(0) < 2)
        throw std::invalid_argument(std::string(name) + " must be a 1-D array of at least 2 edges");
    return e.shape(0) - 1;
}

// block (n_rows, n_cols) with any row stride (a column range of a strip);
// points are rows 0, row_step, 2*row_step, ...; out (n_points, band) float64.
template <typename Scalar>
void band_sqdist_py(py::array_t<Scalar> block, std::int64_t row_step, py::array_t<double, py::array::c_style> out,
                    int n_threads) {
    if (block.ndim() != 2) throw std::invalid_argument("block must be 2-D (n_steps, n_dims)");
    if (block.strides(1) != static_cast<py::ssize_t>(sizeof(Scalar)) || block.strides(0) % sizeof(Scalar) != 0)
        throw std::invalid_argument("block must have contiguous rows");
    if (row_step < 1) throw std::invalid_argument("row_step must be >= 1");
    const std::int64_t n_rows = block.shape(0), n_cols = block.shape(1);
    const std::int64_t n_points = n_rows == 0 ? 0 : (n_rows - 1) / row_step + 1;
    if (out.ndim() != 2 || out.shape(0) != n_points)
        throw std::invalid_argument("out must have shape (n_points, band) with n_points = " + std::to_string(n_points));
    const std::int64_t band = out.shape(1);
    const std::int64_t stride = block.strides(0) / static_cast<py::ssize_t>(sizeof(Scalar));
    const Scalar* data = block.data();
    double* o = out.mutable_data();
    const int threads = resolve_threads(n_threads);
    py::gil_scoped_release release;
    anodiff::band_sqdist_accumulate(data, n_points, row_step, n_cols, stride, band, o, threads);
}

// acf (max_lag+1,) and sumsq (T,) are float64 accumulators updated in place from a
// (T, n) block whose rows are contiguous but may be strided (a column range of a strip).
template <typename Scalar>
void msd_accumulate_py(py::array_t<Scalar> block, py::array_t<double> acf, py::array_t<double> sumsq,
                               int n_threads) {
    if (block.ndim() != 2) throw std::invalid_argument("block must be 2-D (n_steps, n_dims)");
    if (block.strides(1) != static_cast<py::ssize_t>(sizeof(Scalar)) || block.strides(0) % sizeof(Scalar) != 0)
        throw std::invalid_argument("block must have contiguous rows");
    const std::int64_t T = block.shape(0), n = block.shape(1);
    const std::int64_t max_lag = static_cast<std::int64_t>(acf.size()) - 1;
    if (max_lag < 0 || max_lag >= std::max<std::int64_t>(T, 1))
        throw std::invalid_argument("acf must have length max_lag + 1 with max_lag < n_steps");
    if (!(acf.flags() & py::array::c_style) || !(sumsq.flags() & py::array::c_style))
        throw std::invalid_argument("acf and sumsq must be C-contiguous float64");
    double* acf_ptr = mutable_f64_vector(acf, max_lag + 1, "acf");
    double* sumsq_ptr = mutable_f64_vector(sumsq, T, "sumsq");
    const std::int64_t stride = block.strides(0) / static_cast<py::ssize_t>(sizeof(Scalar));
    const Scalar* data = block.data();
    const int threads = resolve_threads(n_threads);
    py::gil_scoped_release release;
    anodiff::msd_accumulate(data, T, n, stride, max_lag, acf_ptr, sumsq_ptr, threads);
}

// A (P, P) float64, Fortran order, upper triangle filled (as BLAS SYRK leaves it;
// full and symmetric on return), Q (P, nb-1), CC (nb, nb),
// band_sq (P, band) or None; see geometry.hpp.
void block_gram_assemble_py(py::array_t<double> A, std::int64_t block, f64c Q, f64c CC, py::object band_obj,
                            int n_threads) {
    if (A.ndim() != 2 || A.shape(0) != A.shape(1) || !A.writeable() ||
        !(A.flags() & py::array::f_style))
        throw std::invalid_argument("A must be a writeable Fortran-ordered square float64 array");
    if (block < 1) throw std::invalid_argument("block must be >= 1");
    const std::int64_t P = A.shape(0);
    const std::int64_t nb = P == 0 ? 0 : (P + block - 1) / block;
    if (Q.ndim() != 2 || Q.shape(0) != P || Q.shape(1) != std::max<std::int64_t>(nb - 1, 0))
        throw std::invalid_argument("Q must have shape (P, nb - 1) = (" + std::to_string(P) + ", " +
                                    std::to_string(std::max<std::int64_t>(nb - 1, 0)) + ")");
    if (CC.ndim() != 2 || CC.shape(0) != nb || CC.shape(1) != nb)
        throw std::invalid_argument("CC must have shape (nb, nb) with nb = " + std::to_string(nb));
    f64c band;
    const double* bp = nullptr;
    std::int64_t nband = 0;
    if (!band_obj.is_none()) {
        band = band_obj.cast<f64c>();
        if (band.ndim() != 2 || band.shape(0) != P)
            throw std::invalid_argument("band_sq must have shape (P, band) with P = " + std::to_string(P));
        bp = band.data();
        nband = band.shape(1);
    }
    double* a = A.mutable_data();
    const double* q = Q.data();
    const double* cc = CC.data();
    const int threads = resolve_threads(n_threads);
    py::gil_scoped_release release;
    anodiff::block_gram_assemble(a, P, block, q, cc, bp, nband, threads);
}

void pair_bins_py(f64c G, f64c contour, py::object loss_obj, f64c s_edges, f64c r_edges, f64c s_sum_dr2,
                  f64c s_sum_ds, i64c s_count, f64c r_sum_dr, f64c r_sum_dl2, i64c r_count, int n_threads) {
    const double* g = square_f64(G, "G");
    const std::int64_t P = G.shape(0);
    if (contour.ndim() != 1 || contour.shape(0) != P)
        throw std::invalid_argument("contour must have length P = " + std::to_string(P));
    f64c loss;
    const double* lp = nullptr;
    if (!loss_obj.is_none()) {
        loss = loss_obj.cast<f64c>();
        if (loss.ndim() != 1 || loss.shape(0) != P)
            throw std::invalid_argument("loss must have length P = " + std::to_string(P));
        lp = loss.data();
    }
    const std::int64_t ns = edges_bins(s_edges, "s_edges"), nr = edges_bins(r_edges, "r_edges");
    double* a = out_vector(s_sum_dr2, ns, "s_sum_dr2");
    double* b = out_vector(s_sum_ds, ns, "s_sum_ds");
    std::int64_t* c = out_vector(s_count, ns, "s_count");
    double* d = out_vector(r_sum_dr, nr, "r_sum_dr");
    double* e = out_vector(r_sum_dl2, nr, "r_sum_dl2");
    std::int64_t* f = out_vector(r_count, nr, "r_count");
    const double* cp = contour.data();
    const double* se = s_edges.data();
    const double* re = r_edges.data();
    const int threads = resolve_threads(n_threads);
    py::gil_scoped_release release;
    anodiff::pair_bins(g, P, cp, lp, se, ns, re, nr, a, b, c, d, e, f, threads);
}

f64c transverse_matrix_py(f64c G, int n_threads) {
    const double* g = square_f64(G, "G");
    const std::int64_t P = G.shape(0);
    f64c H({P, P});
    std::fill(H.mutable_data(), H.mutable_data() + P * P, 0.0);
    double* h = H.mutable_data();
    const int threads = resolve_threads(n_threads);
    {
        py::gil_scoped_release release;
        anodiff::transverse_matrix(g, P, h, threads);
    }
    return H;
}

void transverse_bins_py(f64c G, f64c r_edges, f64c sum_h, f64c sum_h2, f64c sum_dr, i64c count, int n_threads) {
    const double* g = square_f64(G, "G");
    const std::int64_t P = G.shape(0);
    const std::int64_t nr = edges_bins(r_edges, "r_edges");
    double* a = out_vector(sum_h, nr, "sum_h");
    double* b = out_vector(sum_h2, nr, "sum_h2");
    double* c = out_vector(sum_dr, nr, "sum_dr");
    std::int64_t* d = out_vector(count, nr, "count");
    const double* re = r_edges.data();
    const int threads = resolve_threads(n_threads);
    py::gil_scoped_release release;
    anodiff::transverse_bins(g, P, re, nr, a, b, c, d, threads);
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

// An optional output array written in place: None gives nullptr; otherwise it
// must already be a C-contiguous float64 array of exactly `shape` (no copy).
double* optional_out(const py::object& obj, CArrayF64& holder, std::vector<py::ssize_t> shape,
                     const char* name, const char* shape_text) {
    if (obj.is_none()) return nullptr;
    holder = obj.cast<CArrayF64>();
    if (holder.ptr() != obj.ptr())
        throw std::invalid_argument(std::string(name) + " must be a C-contiguous float64 array (written in place)");
    bool ok = holder.ndim() == static_cast<py::ssize_t>(shape.size());
    for (std::size_t k = 0; ok && k < shape.size(); ++k) ok = holder.shape(k) == shape[k];
    if (!ok) throw std::invalid_argument(std::string(name) + " must be " + shape_text);
    return holder.mutable_data();
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
    CArrayF64 loss, grads;  // keep the arrays alive while their pointers are used
    double* lp = optional_out(loss_obj, loss, {n, n_steps + 1}, "loss", "(n_walkers, n_steps + 1)");
    double* grads_ptr = optional_out(grads_obj, grads, {n, n_steps, 2}, "grads", "(n_walkers, n_steps, 2)");
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
          "Add a (T, n) float32 block (contiguous rows, any row stride)'s centred autocorrelation and squares to acf, sumsq.");
    m.def("msd_accumulate", &msd_accumulate_py<double>, py::arg("block").noconvert(), py::arg("acf"),
          py::arg("sumsq"), py::arg("n_threads") = 0,
          "Add a (T, n) float64 block (contiguous rows, any row stride)'s centred autocorrelation and squares to acf, sumsq.");
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

    // --- geometry (window analysis) ---
    m.def("band_sqdist_accumulate", &band_sqdist_py<float>, py::arg("block").noconvert(), py::arg("row_step"),
          py::arg("out"), py::arg("n_threads") = 0,
          "out[p, k-1] += sum_i (block[(p+k)*row_step, i] - block[p*row_step, i])^2, k = 1..out.shape[1] (float64 sums).");
    m.def("band_sqdist_accumulate", &band_sqdist_py<double>, py::arg("block").noconvert(), py::arg("row_step"),
          py::arg("out"), py::arg("n_threads") = 0);
    m.def("block_gram_assemble", &block_gram_assemble_py, py::arg("A").noconvert(), py::arg("block"), py::arg("Q"),
          py::arg("CC"), py::arg("band_sq"), py::arg("n_threads") = 0,
          "In place: the point-0-centred Gram matrix of a window from block-centred products (geometry.hpp).");
    m.def("pair_bins", &pair_bins_py, py::arg("G").noconvert(), py::arg("contour"), py::arg("loss"),
          py::arg("s_edges"), py::arg("r_edges"), py::arg("s_sum_dr2"), py::arg("s_sum_ds"), py::arg("s_count"),
          py::arg("r_sum_dr"), py::arg("r_sum_dl2"), py::arg("r_count"), py::arg("n_threads") = 0,
          "Binned pair sums of a window from its Gram matrix: Δr² by contour length, (ΔL)² by Δr.");
    m.def("transverse_matrix", &transverse_matrix_py, py::arg("G").noconvert(), py::arg("n_threads") = 0,
          "H[s, t] = max over s<u<t of the distance of x_u from the line through x_s, x_t (upper triangle).");
    m.def("transverse_bins", &transverse_bins_py, py::arg("G").noconvert(), py::arg("r_edges"), py::arg("sum_h"),
          py::arg("sum_h2"), py::arg("sum_dr"), py::arg("count"), py::arg("n_threads") = 0,
          "Transverse distance of every pair binned by end-to-end distance Δr.");

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
