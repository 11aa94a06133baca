// Python bindings of anodiff._cuda (host compiler only; the CUDA side is behind
// engine.hpp). Device arrays travel as integer pointers; anodiff/gpu.py turns
// CuPy arrays, torch tensors (__cuda_array_interface__ / DLPack) into those.
// Every call that waits on the device releases the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "../cpp/pair_math.hpp"
#include "engine.hpp"

namespace py = pybind11;
using namespace anodiff::cuda;

namespace {

DType parse_dtype(const std::string& s) {
    if (s == "float32" || s == "<f4" || s == "f4") return DType::f32;
    if (s == "float64" || s == "<f8" || s == "f8") return DType::f64;
    throw std::invalid_argument("unsupported dtype " + s + " (float32 or float64)");
}

py::array_t<double> download_f64(const DeviceBuffer& b, std::int64_t n) {
    py::array_t<double> out(n);
    if (n > 0) {
        py::gil_scoped_release release;
        b.download(out.mutable_data(), sizeof(double) * n);
    }
    return out;
}

template <typename T>
T* vector_ptr(py::array_t<T, py::array::c_style | py::array::forcecast>& a, std::int64_t n, const char* name) {
    if (a.ndim() != 1 || a.shape(0) != n)
        throw std::invalid_argument(std::string(name) + " must be a 1-D array of length " + std::to_string(n));
    return a.mutable_data();
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
    m.doc() = "anodiff CUDA kernels (cuFFT, cuBLAS and own kernels); see anodiff.gpu";
    m.def("device_count", &device_count, "Number of CUDA devices (0 without a driver or device).");
    m.def("runtime_error_reason", &runtime_error_reason, "Why device_count() is 0, '' otherwise.");
    m.def("device_info", [](int device) {
        const DeviceInfo i = device_info(device);
        py::dict d;
        d["index"] = i.index;
        d["name"] = i.name;
        d["compute_capability"] = py::make_tuple(i.major, i.minor);
        d["total_memory"] = i.total_memory;
        d["free_memory"] = i.free_memory;
        d["fp32_to_fp64_ratio"] = i.fp32_to_fp64_ratio;
        d["multiprocessors"] = i.multiprocessors;
        return d;
    }, py::arg("device") = 0);
    m.def("set_device", &set_device, py::arg("device"));
    m.def("pointer_device", &pointer_device, py::arg("ptr"), "Device of a device pointer, -1 for host memory.");
    m.def("synchronize", []() { py::gil_scoped_release r; synchronize_device(); });
    m.def("synchronize_stream", [](std::uintptr_t s) { py::gil_scoped_release r; synchronize_stream(s); },
          py::arg("stream"));
    m.def("suggest_chunk", &suggest_chunk, py::arg("T"), py::arg("msd"), py::arg("gram"),
          py::arg("gram_precision"), py::arg("budget_bytes"));

    py::class_<DeviceBuffer>(m, "DeviceBuffer")
        .def(py::init<std::size_t>(), py::arg("nbytes"))
        .def_property_readonly("ptr", &DeviceBuffer::ptr)
        .def_property_readonly("nbytes", &DeviceBuffer::bytes)
        .def("upload", [](DeviceBuffer& b, py::array src) {
            if (!(src.flags() & py::array::c_style))
                throw std::invalid_argument("upload needs a C-contiguous array");
            const std::size_t n = static_cast<std::size_t>(src.nbytes());
            const void* p = src.data();
            py::gil_scoped_release r;
            b.upload(p, n);
        })
        .def("download", [](const DeviceBuffer& b, py::array dst) {
            if (!(dst.flags() & py::array::c_style) || !dst.writeable())
                throw std::invalid_argument("download needs a writeable C-contiguous array");
            const std::size_t n = static_cast<std::size_t>(dst.nbytes());
            void* p = dst.mutable_data();
            py::gil_scoped_release r;
            b.download(p, n);
        });

    py::class_<WindowSums>(m, "WindowSums")
        .def(py::init<std::int64_t, std::int64_t, bool>(), py::arg("T"), py::arg("max_lag"), py::arg("gram"))
        .def_readonly("T", &WindowSums::T)
        .def_readonly("max_lag", &WindowSums::max_lag)
        .def_readonly("fft_length", &WindowSums::N)
        .def_readonly("with_gram", &WindowSums::with_gram)
        .def_readwrite("n_dims", &WindowSums::n_dims)
        .def("zero", &WindowSums::zero)
        .def("acf", [](const WindowSums& s) { return download_f64(s.acf, s.max_lag + 1); })
        .def("sumsq", [](const WindowSums& s) { return download_f64(s.sumsq, s.T); })
        .def("steps2", [](const WindowSums& s) { return download_f64(s.steps2, s.T - 1); })
        .def("power", [](const WindowSums& s) { return download_f64(s.power, s.N / 2 + 1); })
        .def_property_readonly("gram_ptr", [](const WindowSums& s) { return s.gram.ptr(); })
        .def("gram", [](const WindowSums& s) {
            if (!s.with_gram) throw std::invalid_argument("these window sums hold no Gram matrix");
            py::array_t<double> out({s.T, s.T});
            py::gil_scoped_release r;
            s.gram.download(out.mutable_data(), sizeof(double) * s.T * s.T);
            return out;
        });

    py::class_<WindowEngine>(m, "WindowEngine")
        .def(py::init<std::int64_t, std::int64_t, std::int64_t, bool, bool, const std::string&>(), py::arg("T"),
             py::arg("max_lag"), py::arg("chunk"), py::arg("msd") = true, py::arg("gram") = false,
             py::arg("gram_precision") = "float64")
        .def("accumulate",
             [](WindowEngine& e, std::uintptr_t ptr, const std::string& dtype, std::int64_t n_cols,
                std::int64_t row_stride, WindowSums& sums) {
                 const DType dt = parse_dtype(dtype);
                 py::gil_scoped_release r;
                 e.accumulate(ptr, dt, n_cols, row_stride, sums);
             },
             py::arg("ptr"), py::arg("dtype"), py::arg("n_cols"), py::arg("row_stride"), py::arg("sums"),
             "Add columns [0, n_cols) of a (T, row_stride) device array at ptr to sums (asynchronous).")
        .def("finish", [](WindowEngine& e, WindowSums& s, bool g) { py::gil_scoped_release r; e.finish(s, g); },
             py::arg("sums"), py::arg("acf_from_gram") = false)
        .def("synchronize", [](WindowEngine& e) { py::gil_scoped_release r; e.synchronize(); })
        .def_property_readonly("stream", &WindowEngine::stream)
        .def_property_readonly("chunk", &WindowEngine::chunk)
        .def_property_readonly("fft_length", &WindowEngine::fft_length)
        .def_property_readonly("workspace_bytes", &WindowEngine::workspace_bytes);

    py::class_<Streamer>(m, "Streamer")
        .def(py::init<std::size_t, int>(), py::arg("slot_bytes"), py::arg("n_slots") = 2)
        .def_property_readonly("n_slots", &Streamer::n_slots)
        .def_property_readonly("slot_bytes", &Streamer::slot_bytes)
        .def("host_array", [](py::object self, int slot) {
            Streamer& s = self.cast<Streamer&>();
            if (slot < 0 || slot >= s.n_slots()) throw std::invalid_argument("no such slot");
            // A uint8 view of the pinned buffer that keeps the Streamer alive.
            return py::array_t<std::uint8_t>({static_cast<py::ssize_t>(s.slot_bytes())}, {1},
                                             static_cast<std::uint8_t*>(s.host(slot)), self);
        }, py::arg("slot"))
        .def("device", &Streamer::device, py::arg("slot"))
        .def("wait", [](Streamer& s, int k) { py::gil_scoped_release r; s.wait(k); }, py::arg("slot"))
        .def("upload", [](Streamer& s, int k, std::size_t n, WindowEngine& e) { py::gil_scoped_release r; s.upload(k, n, e); },
             py::arg("slot"), py::arg("nbytes"), py::arg("engine"))
        .def("release", [](Streamer& s, int k, WindowEngine& e) { s.release(k, e); }, py::arg("slot"), py::arg("engine"));

    m.def("pair_curves",
          [](std::uintptr_t G, std::int64_t T, py::array_t<double, py::array::c_style | py::array::forcecast> P,
             py::object L, double s_lo, double s_hi, std::int64_t n_s, double r_lo, double r_hi, std::int64_t n_r,
             bool transverse) {
              const double* p = vector_ptr(P, T, "P");
              py::array_t<double, py::array::c_style | py::array::forcecast> Larr;
              const double* l = nullptr;
              if (!L.is_none()) {
                  Larr = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(L);
                  if (!Larr) throw std::invalid_argument("L must be a float array");
                  l = vector_ptr(Larr, T, "L");
              }
              py::array_t<double> S({static_cast<py::ssize_t>(anodiff::pair::kSRows), static_cast<py::ssize_t>(n_s)});
              py::array_t<double> R({static_cast<py::ssize_t>(anodiff::pair::kRRows), static_cast<py::ssize_t>(n_r)});
              double* sp = S.mutable_data();
              double* rp = R.mutable_data();
              {
                  py::gil_scoped_release r;
                  pair_curves(G, T, p, l, s_lo, s_hi, n_s, r_lo, r_hi, n_r, transverse, sp, rp);
              }
              return py::make_tuple(S, R);
          },
          py::arg("G"), py::arg("T"), py::arg("P"), py::arg("L"), py::arg("s_lo"), py::arg("s_hi"), py::arg("n_s"),
          py::arg("r_lo"), py::arg("r_hi"), py::arg("n_r"), py::arg("transverse") = true,
          "Binned pair curves (S, R) of a window from its device Gram matrix (see cpp/pair_math.hpp).");
    m.def("histogram",
          [](std::uintptr_t ptr, const std::string& dtype, std::int64_t n, std::int64_t stride, double lo, double hi,
             std::int64_t n_bins, py::array_t<std::uint64_t, py::array::c_style> counts) {
              const DType dt = parse_dtype(dtype);
              if (counts.ndim() != 1 || counts.shape(0) != n_bins + 3)
                  throw std::invalid_argument("counts must have length n_bins + 3");
              std::uint64_t* c = counts.mutable_data();
              py::gil_scoped_release r;
              histogram(ptr, dt, n, stride, lo, hi, n_bins, c);
          },
          py::arg("ptr"), py::arg("dtype"), py::arg("n"), py::arg("stride"), py::arg("lo"), py::arg("hi"),
          py::arg("n_bins"), py::arg("counts"),
          "Add n device values to counts[n_bins + 3] = [bins over [lo, hi), underflow, overflow, nan].");
}
