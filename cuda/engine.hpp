// anodiff._cuda engine: the C++ interface between the CUDA code (engine.cu,
// kernels.cu) and the pybind11 bindings (bindings.cpp). No CUDA or Python types
// appear here, so bindings.cpp compiles with the host compiler alone.
//
// Device pointers are passed as std::uintptr_t. All sums are float64.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace anodiff {
namespace cuda {

// Thrown for CUDA / cuFFT / cuBLAS failures (mapped to RuntimeError).
struct CudaError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

int device_count();                 // 0 when there is no driver or no device
std::string runtime_error_reason();  // why device_count() is 0 ("" when it is not)
struct DeviceInfo {
    int index;
    std::string name;
    int major, minor;
    std::size_t total_memory;
    std::size_t free_memory;
    int fp32_to_fp64_ratio;  // cudaDevAttrSingleToDoublePrecisionPerfRatio
    int multiprocessors;
};
DeviceInfo device_info(int device);
void set_device(int device);
// Device holding the memory at ptr; -1 for host or unknown memory.
int pointer_device(std::uintptr_t ptr);
void synchronize_device();
void synchronize_stream(std::uintptr_t stream);  // 0: legacy default stream

enum class DType { f32, f64 };

// Device memory that frees itself.
class DeviceBuffer {
  public:
    explicit DeviceBuffer(std::size_t bytes);
    ~DeviceBuffer();
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    std::uintptr_t ptr() const { return reinterpret_cast<std::uintptr_t>(p_); }
    std::size_t bytes() const { return bytes_; }
    void upload(const void* host, std::size_t bytes, std::size_t offset = 0);
    void download(void* host, std::size_t bytes, std::size_t offset = 0) const;
    void zero();

  private:
    void* p_ = nullptr;
    std::size_t bytes_ = 0;
};

// Float64 sums of one window on the device (see cpp/msd.hpp):
//   acf[0..max_lag], sumsq[0..T-1], steps2[0..T-2] = sum_i (x_i(t+1) - x_i(t))^2,
//   and, when with_gram, G (T x T) = sum_i x_i(s) x_i(t) (full symmetric after finish()).
// acf is only valid after WindowEngine::finish(): the FFT path accumulates the
// power spectrum power[k] = sum_i |X_i(k)|^2, k = 0..N/2 (X_i the length-N
// transform of the zero-padded column), and finish() transforms the sum back
// once (the inverse transform is linear, so this equals summing per-column acfs).
class WindowSums {
  public:
    WindowSums(std::int64_t T, std::int64_t max_lag, bool with_gram);
    std::int64_t T, max_lag, N;
    bool with_gram;
    DeviceBuffer acf, sumsq, steps2, gram, power;
    std::int64_t n_dims = 0;
    void zero();
};

// Workspace and plans for accumulating windows of T rows in chunks of `chunk`
// columns: batched cuFFT D2Z/Z2D (float64) for acf, cuBLAS SYRK for G.
// gram_precision: "float64" (centred values in float64, DSYRK) or "float32"
// (centred values in float32, SSYRK per chunk, chunk results added in float64).
class WindowEngine {
  public:
    WindowEngine(std::int64_t T, std::int64_t max_lag, std::int64_t chunk, bool msd, bool gram,
                 const std::string& gram_precision);
    ~WindowEngine();
    WindowEngine(const WindowEngine&) = delete;
    WindowEngine& operator=(const WindowEngine&) = delete;

    // Adds columns [0, n_cols) of a T-row device array (element row stride
    // `row_stride`, column stride 1) to `sums`. Asynchronous on stream().
    void accumulate(std::uintptr_t data, DType dtype, std::int64_t n_cols, std::int64_t row_stride,
                    WindowSums& sums);
    // acf from the accumulated power spectrum (or from the diagonals of G when
    // acf_from_gram), and G made symmetric (SYRK fills one triangle). Idempotent:
    // may be called again after more accumulate() calls.
    void finish(WindowSums& sums, bool acf_from_gram = false);
    void synchronize();
    std::uintptr_t stream() const;
    std::int64_t chunk() const { return chunk_; }
    std::int64_t fft_length() const { return N_; }
    std::size_t workspace_bytes() const;

  private:
    struct Impl;
    int forward_plan(std::int64_t batch);  // a cufftHandle (int)
    std::unique_ptr<Impl> impl_;
    std::int64_t T_, max_lag_, chunk_, N_;
    bool msd_, gram_, f32_gram_;
};

// Largest chunk (columns) whose workspace fits in `budget_bytes`, a multiple of 256.
std::int64_t suggest_chunk(std::int64_t T, bool msd, bool gram, const std::string& gram_precision,
                           std::size_t budget_bytes);

// Double-buffered host -> device copies from pinned memory: the Python driver
// fills host slot k (wait(k) first), upload(k, ...) copies it on the copy stream
// and makes `engine`'s stream wait for the copy; release(k, engine) records when
// the engine is done with device slot k.
class Streamer {
  public:
    Streamer(std::size_t slot_bytes, int n_slots = 2);
    ~Streamer();
    Streamer(const Streamer&) = delete;
    Streamer& operator=(const Streamer&) = delete;
    int n_slots() const { return static_cast<int>(host_.size()); }
    std::size_t slot_bytes() const { return slot_bytes_; }
    void* host(int slot) const { return host_[slot]; }
    std::uintptr_t device(int slot) const;
    void wait(int slot);  // until the slot's previous upload and compute are done
    void upload(int slot, std::size_t bytes, WindowEngine& engine);
    void release(int slot, WindowEngine& engine);

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    std::size_t slot_bytes_;
    std::vector<void*> host_;
};

// Binned pair curves of a window from its device Gram matrix G (T x T float64,
// symmetric), the contour prefix P (T) and the loss L (T, may be null), on the
// device. S (kSRows x n_s) and R (kRRows x n_r) as in cpp/pair_math.hpp,
// returned to the host (overwritten).
void pair_curves(std::uintptr_t G, std::int64_t T, const double* P, const double* L, double s_lo,
                 double s_hi, std::int64_t n_s, double r_lo, double r_hi, std::int64_t n_r,
                 bool transverse, double* S, double* R);

// Histogram of n device values (float32/float64, element stride `stride`) into
// counts[n_bins + 3] (bins, underflow, overflow, nan), added to (not overwritten).
void histogram(std::uintptr_t data, DType dtype, std::int64_t n, std::int64_t stride, double lo,
               double hi, std::int64_t n_bins, std::uint64_t* counts);

}  // namespace cuda
}  // namespace anodiff
