// CUDA side of the window engine: launch geometry and reductions around the
// per-element arithmetic of cpp/pair_math.hpp, plus cuFFT and cuBLAS calls.
//
// Data layout of one chunk of K columns (dimensions) of a window of T rows:
//   xbuf[i * ldx + t] = x_i(t) = w_i(t) - w_i(0)   float64, t < T; rows T..ldx-1 are 0
// i.e. each column is contiguous (ldx = N, the FFT length, when the MSD is wanted,
// else T). That is the contiguous batched layout cuFFT is fastest on, and a
// column-major T x K matrix (lda = ldx) for cublasDsyrk(OP_N): G += X X^T.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cufft.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "../cpp/pair_math.hpp"
#include "engine.hpp"

namespace anodiff {
namespace cuda {

namespace {

// Smallest power of two >= 2T - 1 (as msd_fft_length in cpp/msd.cpp).
std::int64_t msd_fft_length(std::int64_t T) {
    std::int64_t n = 2;
    while (n < 2 * T - 1) n *= 2;
    return n;
}

void check(cudaError_t e, const char* what) {
    if (e != cudaSuccess)
        throw CudaError(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(e));
}

void check(cufftResult e, const char* what) {
    if (e != CUFFT_SUCCESS) throw CudaError(std::string("cuFFT error ") + std::to_string(int(e)) + " in " + what);
}

void check(cublasStatus_t e, const char* what) {
    if (e != CUBLAS_STATUS_SUCCESS)
        throw CudaError(std::string("cuBLAS error ") + std::to_string(int(e)) + " in " + what);
}

#define ANODIFF_CHECK(call) check((call), #call)

void check_launch(const char* what) { check(cudaGetLastError(), what); }

constexpr int kTile = 32;       // rows x columns of a transpose tile
constexpr int kTileRowsY = 8;   // threads in y of a transpose block
constexpr int kTilesPerBlock = 16;  // column tiles one block walks through (fewer atomics)

// ---------------------------------------------------------------------------
// Centre + transpose a chunk: xbuf[i*ldx + t] = data[t*ld + i] - data[i] (float64),
// optional float32 copy fbuf[i*T + t], and the per-row sums
//   sumsq[t]  += sum_i x_i(t)^2
//   steps2[t] += sum_i (x_i(t+1) - x_i(t))^2      (t < T-1)
// Block (32, 8) handles rows [t0, t0+32) and kTilesPerBlock column tiles.
template <typename In, bool WriteF64, bool WriteF32>
__global__ void centre_transpose_kernel(const In* __restrict__ data, std::int64_t T, std::int64_t ld,
                                        std::int64_t n_cols, std::int64_t K, double* __restrict__ xbuf,
                                        std::int64_t ldx, float* __restrict__ fbuf,
                                        double* __restrict__ sumsq, double* __restrict__ steps2) {
    __shared__ double tile[kTile + 1][kTile + 1];  // [t][i], one extra row for t+1
    __shared__ double red_sq[kTileRowsY][kTile];
    __shared__ double red_st[kTileRowsY][kTile];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const std::int64_t t0 = static_cast<std::int64_t>(blockIdx.y) * kTile;
    double part_sq = 0.0, part_st = 0.0;  // for row t0 + tx
    for (int tile_k = 0; tile_k < kTilesPerBlock; ++tile_k) {
        const std::int64_t i0 = (static_cast<std::int64_t>(blockIdx.x) * kTilesPerBlock + tile_k) * kTile;
        if (i0 >= K) break;
        const std::int64_t i = i0 + tx;
        const double origin = i < n_cols ? static_cast<double>(data[i]) : 0.0;
        // Load rows t0 .. t0+32 (33 rows: the last one for the step of row t0+31).
        for (int r = ty; r < kTile + 1; r += kTileRowsY) {
            const std::int64_t t = t0 + r;
            tile[r][tx] = (i < n_cols && t < T) ? static_cast<double>(data[t * ld + i]) - origin : 0.0;
        }
        __syncthreads();
        // Write transposed: thread (tx, ty) writes t = t0 + tx for columns ty, ty+8, ...
        const std::int64_t t = t0 + tx;
        if (t < T) {
            for (int c = ty; c < kTile; c += kTileRowsY) {
                const std::int64_t col = i0 + c;
                if (col >= K) break;
                const double v = tile[tx][c];
                if (WriteF64) xbuf[col * ldx + t] = v;
                if (WriteF32) fbuf[col * T + t] = static_cast<float>(v);
                part_sq += v * v;
                if (t + 1 < T) {
                    const double d = tile[tx + 1][c] - v;
                    part_st += d * d;
                }
            }
        }
        __syncthreads();
    }
    red_sq[ty][tx] = part_sq;
    red_st[ty][tx] = part_st;
    __syncthreads();
    if (ty == 0) {
        const std::int64_t t = t0 + tx;
        double sq = 0.0, st = 0.0;
        for (int y = 0; y < kTileRowsY; ++y) {
            sq += red_sq[y][tx];
            st += red_st[y][tx];
        }
        if (t < T) {
            atomicAdd(&sumsq[t], sq);
            if (t + 1 < T) atomicAdd(&steps2[t], st);
        }
    }
}

// power[k] += sum_i |c[i*M + k]|^2 for k < M; block (256) over k, blockIdx.y a slab of columns.
constexpr int kPowerSlab = 256;
__global__ void power_sum_kernel(const cufftDoubleComplex* __restrict__ c, std::int64_t M, std::int64_t K,
                                 double* __restrict__ power) {
    const std::int64_t k = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (k >= M) return;
    const std::int64_t i0 = static_cast<std::int64_t>(blockIdx.y) * kPowerSlab;
    const std::int64_t i1 = i0 + kPowerSlab < K ? i0 + kPowerSlab : K;
    double s = 0.0;
    for (std::int64_t i = i0; i < i1; ++i) {
        const cufftDoubleComplex z = c[i * M + k];
        s += z.x * z.x + z.y * z.y;
    }
    atomicAdd(&power[k], s);
}

// acf[tau] = r[tau] / N, r the inverse transform of the summed power spectrum.
__global__ void scale_kernel(const double* __restrict__ r, std::int64_t n, double scale, double* __restrict__ out) {
    const std::int64_t k = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (k < n) out[k] = r[k] * scale;
}

// acf[tau] = sum_t G[t, t + tau] (column-major lower triangle: G[(t+tau) + t*T]).
__global__ void acf_from_gram_kernel(const double* __restrict__ G, std::int64_t T, std::int64_t max_lag,
                                     double* __restrict__ acf) {
    __shared__ double red[256];
    const std::int64_t tau = blockIdx.x;
    if (tau > max_lag) return;
    double s = 0.0;
    for (std::int64_t t = threadIdx.x; t + tau < T; t += blockDim.x) s += G[(t + tau) + t * T];
    red[threadIdx.x] = s;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w /= 2) {
        if (threadIdx.x < w) red[threadIdx.x] += red[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0) acf[tau] = red[0];
}

// G[idx] += g32[idx] for the whole T x T matrix (the untouched triangle of g32 is 0).
__global__ void add_f32_kernel(const float* __restrict__ g32, std::int64_t n, double* __restrict__ G) {
    for (std::int64_t k = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < n;
         k += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
        G[k] += static_cast<double>(g32[k]);
}

// Copy the lower triangle (column-major, r > c) into the upper one.
__global__ void symmetrize_kernel(double* __restrict__ G, std::int64_t T) {
    const std::int64_t r = static_cast<std::int64_t>(blockIdx.y) * blockDim.y + threadIdx.y;
    const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (r < T && c < T && r > c) G[c + r * T] = G[r + c * T];
}

// ---------------------------------------------------------------------------
// Binned pair curves: block-stride over s, threads over t > s. Per-block bins in
// shared memory when they fit, flushed with one atomicAdd per bin.
struct DeviceAdd {
    double* S;
    double* R;
    std::int64_t n_s, n_r;
    __device__ void operator()(int array, int row, std::int64_t bin, double v) {
        if (array == 0) atomicAdd(&S[row * n_s + bin], v);
        else atomicAdd(&R[row * n_r + bin], v);
    }
};

__global__ void pair_curves_kernel(const double* __restrict__ G, std::int64_t T, const double* __restrict__ P,
                                   const double* __restrict__ L, pair::LogBins s_bins, pair::LogBins r_bins,
                                   bool transverse, bool use_shared, double* S, double* R) {
    extern __shared__ double shared_bins[];
    const std::int64_t n_s_all = pair::kSRows * s_bins.n, n_all = n_s_all + pair::kRRows * r_bins.n;
    DeviceAdd add{S, R, s_bins.n, r_bins.n};
    if (use_shared) {
        for (std::int64_t k = threadIdx.x; k < n_all; k += blockDim.x) shared_bins[k] = 0.0;
        __syncthreads();
        add.S = shared_bins;
        add.R = shared_bins + n_s_all;
    }
    for (std::int64_t s = blockIdx.x; s + 1 < T; s += gridDim.x)
        for (std::int64_t t = s + 1 + threadIdx.x; t < T; t += blockDim.x)
            pair::pair_contribution(G, T, P, L, s, t, s_bins, r_bins, transverse, add);
    if (use_shared) {
        __syncthreads();
        for (std::int64_t k = threadIdx.x; k < n_all; k += blockDim.x) {
            const double v = shared_bins[k];
            if (v != 0.0) {
                if (k < n_s_all) atomicAdd(&S[k], v);
                else atomicAdd(&R[k - n_s_all], v);
            }
        }
    }
}

// Linear histogram into counts[n_bins + 3] (see pair::linear_slot).
template <typename In>
__global__ void histogram_kernel(const In* __restrict__ x, std::int64_t n, std::int64_t stride,
                                 pair::LinearBins bins, bool use_shared, unsigned long long* counts) {
    extern __shared__ unsigned long long shared_counts[];
    const std::int64_t slots = bins.n + 3;
    unsigned long long* target = counts;
    if (use_shared) {
        for (std::int64_t k = threadIdx.x; k < slots; k += blockDim.x) shared_counts[k] = 0ull;
        __syncthreads();
        target = shared_counts;
    }
    for (std::int64_t j = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < n;
         j += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
        atomicAdd(&target[pair::linear_slot(static_cast<double>(x[j * stride]), bins)], 1ull);
    if (use_shared) {
        __syncthreads();
        for (std::int64_t k = threadIdx.x; k < slots; k += blockDim.x)
            if (shared_counts[k]) atomicAdd(&counts[k], shared_counts[k]);
    }
}

int blocks_for(std::int64_t n, int threads) { return static_cast<int>((n + threads - 1) / threads); }

int max_shared_bytes() {
    int dev = 0, v = 48 * 1024;
    if (cudaGetDevice(&dev) == cudaSuccess) cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlock, dev);
    return v;
}

int sm_count() {
    int dev = 0, v = 80;
    if (cudaGetDevice(&dev) == cudaSuccess) cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev);
    return v;
}

}  // namespace

// ---------------------------------------------------------------------------
int device_count() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n;
}

std::string runtime_error_reason() {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
    }
    return n == 0 ? "no CUDA device" : "";
}

DeviceInfo device_info(int device) {
    cudaDeviceProp p{};
    ANODIFF_CHECK(cudaGetDeviceProperties(&p, device));
    DeviceInfo info{};
    info.index = device;
    info.name = p.name;
    info.major = p.major;
    info.minor = p.minor;
    info.total_memory = p.totalGlobalMem;
    info.multiprocessors = p.multiProcessorCount;
    ANODIFF_CHECK(cudaDeviceGetAttribute(&info.fp32_to_fp64_ratio, cudaDevAttrSingleToDoublePrecisionPerfRatio, device));
    int current = 0;
    ANODIFF_CHECK(cudaGetDevice(&current));
    ANODIFF_CHECK(cudaSetDevice(device));
    std::size_t free_b = 0, total_b = 0;
    ANODIFF_CHECK(cudaMemGetInfo(&free_b, &total_b));
    ANODIFF_CHECK(cudaSetDevice(current));
    info.free_memory = free_b;
    return info;
}

void set_device(int device) { ANODIFF_CHECK(cudaSetDevice(device)); }

int pointer_device(std::uintptr_t ptr) {
    cudaPointerAttributes a{};
    if (cudaPointerGetAttributes(&a, reinterpret_cast<const void*>(ptr)) != cudaSuccess) {
        cudaGetLastError();
        return -1;
    }
    if (a.type != cudaMemoryTypeDevice && a.type != cudaMemoryTypeManaged) return -1;
    return a.device;
}
void synchronize_device() { ANODIFF_CHECK(cudaDeviceSynchronize()); }
void synchronize_stream(std::uintptr_t stream) {
    ANODIFF_CHECK(cudaStreamSynchronize(reinterpret_cast<cudaStream_t>(stream)));
}

DeviceBuffer::DeviceBuffer(std::size_t bytes) : bytes_(bytes) {
    if (bytes_) ANODIFF_CHECK(cudaMalloc(&p_, bytes_));
}
DeviceBuffer::~DeviceBuffer() {
    if (p_) cudaFree(p_);
}
void DeviceBuffer::upload(const void* host, std::size_t bytes, std::size_t offset) {
    if (offset + bytes > bytes_) throw CudaError("DeviceBuffer::upload out of range");
    ANODIFF_CHECK(cudaMemcpy(static_cast<char*>(p_) + offset, host, bytes, cudaMemcpyHostToDevice));
}
void DeviceBuffer::download(void* host, std::size_t bytes, std::size_t offset) const {
    if (offset + bytes > bytes_) throw CudaError("DeviceBuffer::download out of range");
    ANODIFF_CHECK(cudaMemcpy(host, static_cast<const char*>(p_) + offset, bytes, cudaMemcpyDeviceToHost));
}
void DeviceBuffer::zero() {
    if (bytes_) ANODIFF_CHECK(cudaMemset(p_, 0, bytes_));
}

WindowSums::WindowSums(std::int64_t T_, std::int64_t max_lag_, bool with_gram_)
    : T(T_),
      max_lag(max_lag_),
      N(msd_fft_length(T_)),
      with_gram(with_gram_),
      acf(sizeof(double) * (max_lag_ + 1)),
      sumsq(sizeof(double) * T_),
      steps2(sizeof(double) * std::max<std::int64_t>(T_ - 1, 1)),
      gram(with_gram_ ? sizeof(double) * T_ * T_ : 0),
      power(sizeof(double) * (msd_fft_length(T_) / 2 + 1)) {
    zero();
}

void WindowSums::zero() {
    acf.zero();
    sumsq.zero();
    steps2.zero();
    gram.zero();
    power.zero();
    n_dims = 0;
}

// ---------------------------------------------------------------------------
struct WindowEngine::Impl {
    cudaStream_t stream = nullptr;
    std::map<std::int64_t, cufftHandle> fwd;  // batched D2Z plans by batch size
    cufftHandle inv = 0;
    bool have_inv = false;
    cublasHandle_t blas = nullptr;
    double* xbuf = nullptr;               // K x ldx
    cufftDoubleComplex* cbuf = nullptr;   // K x (N/2+1)
    float* fbuf = nullptr;                // K x T (float32 Gram)
    float* g32 = nullptr;                 // T x T
    double* power_tmp = nullptr;          // N (inverse transform of the power spectrum)
    cufftDoubleComplex* spec_tmp = nullptr;  // N/2+1
    std::int64_t ldx = 0;
    std::size_t bytes = 0;
    ~Impl() {
        for (auto& kv : fwd) cufftDestroy(kv.second);
        if (have_inv) cufftDestroy(inv);
        if (blas) cublasDestroy(blas);
        for (void* p : {static_cast<void*>(xbuf), static_cast<void*>(cbuf), static_cast<void*>(fbuf),
                        static_cast<void*>(g32), static_cast<void*>(power_tmp), static_cast<void*>(spec_tmp)})
            if (p) cudaFree(p);
        if (stream) cudaStreamDestroy(stream);
    }
};

namespace {
std::size_t engine_bytes_per_column(std::int64_t T, bool msd, bool gram, bool f32) {
    const std::int64_t N = msd_fft_length(T);
    std::size_t b = 0;
    const bool need_x = msd || (gram && !f32);
    if (need_x) b += sizeof(double) * (msd ? N : T);
    if (msd) b += sizeof(cufftDoubleComplex) * (N / 2 + 1);
    if (gram && f32) b += sizeof(float) * T;
    return b;
}
}  // namespace

std::int64_t suggest_chunk(std::int64_t T, bool msd, bool gram, const std::string& gram_precision,
                           std::size_t budget_bytes) {
    const std::size_t per = std::max<std::size_t>(1, engine_bytes_per_column(T, msd, gram, gram_precision == "float32"));
    std::int64_t k = static_cast<std::int64_t>(budget_bytes / per) / 256 * 256;
    return std::max<std::int64_t>(256, k);
}

// Batched D2Z plan for `batch` columns (contiguous columns of length N, spectra of N/2+1).
cufftHandle WindowEngine::forward_plan(std::int64_t batch) {
    Impl& m = *impl_;
    auto it = m.fwd.find(batch);
    if (it != m.fwd.end()) return it->second;
    const std::int64_t M = N_ / 2 + 1;
    int n = static_cast<int>(N_);
    int inembed = static_cast<int>(N_), onembed = static_cast<int>(M);
    cufftHandle plan = 0;
    ANODIFF_CHECK(cufftPlanMany(&plan, 1, &n, &inembed, 1, static_cast<int>(N_), &onembed, 1, static_cast<int>(M),
                                CUFFT_D2Z, static_cast<int>(batch)));
    m.fwd[batch] = plan;
    ANODIFF_CHECK(cufftSetStream(plan, m.stream));
    return plan;
}

WindowEngine::WindowEngine(std::int64_t T, std::int64_t max_lag, std::int64_t chunk, bool msd, bool gram,
                           const std::string& gram_precision)
    : impl_(new Impl), T_(T), max_lag_(max_lag), chunk_(chunk), N_(msd_fft_length(T)), msd_(msd), gram_(gram),
      f32_gram_(gram_precision == "float32") {
    if (T < 2) throw std::invalid_argument("window length T must be at least 2");
    if (max_lag < 0 || max_lag >= T) throw std::invalid_argument("max_lag must be in [0, T-1]");
    if (chunk < 1) throw std::invalid_argument("chunk must be positive");
    if (gram_precision != "float32" && gram_precision != "float64")
        throw std::invalid_argument("gram_precision must be 'float32' or 'float64'");
    Impl& m = *impl_;
    ANODIFF_CHECK(cudaStreamCreate(&m.stream));  // blocking: ordered after legacy-default-stream work
    const bool need_x = msd_ || (gram_ && !f32_gram_);
    m.ldx = msd_ ? N_ : T_;
    auto alloc = [&](auto** p, std::size_t bytes) {
        ANODIFF_CHECK(cudaMalloc(reinterpret_cast<void**>(p), bytes));
        m.bytes += bytes;
    };
    if (need_x) {
        alloc(&m.xbuf, sizeof(double) * chunk_ * m.ldx);
        ANODIFF_CHECK(cudaMemset(m.xbuf, 0, sizeof(double) * chunk_ * m.ldx));  // padding rows stay 0
    }
    if (msd_) {
        const std::int64_t M = N_ / 2 + 1;
        alloc(&m.cbuf, sizeof(cufftDoubleComplex) * chunk_ * M);
        alloc(&m.power_tmp, sizeof(double) * N_);
        alloc(&m.spec_tmp, sizeof(cufftDoubleComplex) * M);
        forward_plan(chunk_);
        ANODIFF_CHECK(cufftPlan1d(&m.inv, static_cast<int>(N_), CUFFT_Z2D, 1));
        m.have_inv = true;
        ANODIFF_CHECK(cufftSetStream(m.inv, m.stream));
    }
    if (gram_) {
        ANODIFF_CHECK(cublasCreate(&m.blas));
        ANODIFF_CHECK(cublasSetStream(m.blas, m.stream));
        // Products in the stated precision: no TF32 shortcuts for float32.
        ANODIFF_CHECK(cublasSetMathMode(m.blas, f32_gram_ ? CUBLAS_PEDANTIC_MATH : CUBLAS_DEFAULT_MATH));
        if (f32_gram_) {
            alloc(&m.fbuf, sizeof(float) * chunk_ * T_);
            alloc(&m.g32, sizeof(float) * T_ * T_);
            ANODIFF_CHECK(cudaMemset(m.g32, 0, sizeof(float) * T_ * T_));
        }
    }
}

WindowEngine::~WindowEngine() = default;

std::uintptr_t WindowEngine::stream() const { return reinterpret_cast<std::uintptr_t>(impl_->stream); }
std::size_t WindowEngine::workspace_bytes() const { return impl_->bytes; }
void WindowEngine::synchronize() { ANODIFF_CHECK(cudaStreamSynchronize(impl_->stream)); }

namespace {
template <typename In>
void launch_centre(const In* data, std::int64_t T, std::int64_t ld, std::int64_t n_cols, std::int64_t K,
                   double* xbuf, std::int64_t ldx, float* fbuf, double* sumsq, double* steps2,
                   cudaStream_t stream) {
    const dim3 block(kTile, kTileRowsY);
    const std::int64_t gx = (K + kTile * kTilesPerBlock - 1) / (kTile * kTilesPerBlock);
    const std::int64_t gy = (T + kTile - 1) / kTile;
    if (gy > 65535) throw std::invalid_argument("window length T too large for the CUDA engine (> 2,097,120)");
    const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy));
    if (xbuf && fbuf)
        centre_transpose_kernel<In, true, true><<<grid, block, 0, stream>>>(data, T, ld, n_cols, K, xbuf, ldx, fbuf, sumsq, steps2);
    else if (xbuf)
        centre_transpose_kernel<In, true, false><<<grid, block, 0, stream>>>(data, T, ld, n_cols, K, xbuf, ldx, fbuf, sumsq, steps2);
    else
        centre_transpose_kernel<In, false, true><<<grid, block, 0, stream>>>(data, T, ld, n_cols, K, xbuf, ldx, fbuf, sumsq, steps2);
    check_launch("centre_transpose_kernel");
}
}  // namespace

void WindowEngine::accumulate(std::uintptr_t data, DType dtype, std::int64_t n_cols, std::int64_t row_stride,
                              WindowSums& sums) {
    if (sums.T != T_ || sums.max_lag != max_lag_) throw std::invalid_argument("window sums do not match the engine");
    if (gram_ && !sums.with_gram) throw std::invalid_argument("window sums hold no Gram matrix");
    if (row_stride < n_cols) throw std::invalid_argument("row stride smaller than the number of columns");
    Impl& m = *impl_;
    const bool need_x = msd_ || (gram_ && !f32_gram_);
    for (std::int64_t c0 = 0; c0 < n_cols; c0 += chunk_) {
        const std::int64_t nc = std::min(chunk_, n_cols - c0);
        // A narrower chunk (the last one, or a narrow strip): with the FFT, K is nc
        // rounded up to a multiple of 256 (one cached plan per width), the extra
        // columns zero (written as such by the centring kernel); SYRK takes K = nc.
        const std::int64_t K = msd_ ? std::min(chunk_, (nc + 255) / 256 * 256) : nc;
        double* xb = need_x ? m.xbuf : nullptr;
        float* fb = (gram_ && f32_gram_) ? m.fbuf : nullptr;
        double* sq = reinterpret_cast<double*>(sums.sumsq.ptr());
        double* st = reinterpret_cast<double*>(sums.steps2.ptr());
        if (dtype == DType::f32)
            launch_centre(reinterpret_cast<const float*>(data) + c0, T_, row_stride, nc, K, xb, m.ldx, fb, sq, st, m.stream);
        else
            launch_centre(reinterpret_cast<const double*>(data) + c0, T_, row_stride, nc, K, xb, m.ldx, fb, sq, st, m.stream);
        if (gram_) {
            double* G = reinterpret_cast<double*>(sums.gram.ptr());
            const int n = static_cast<int>(T_), k = static_cast<int>(K);
            if (f32_gram_) {
                const float one = 1.0f, zero = 0.0f;
                ANODIFF_CHECK(cublasSsyrk(m.blas, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, n, k, &one, m.fbuf, n, &zero, m.g32, n));
                const std::int64_t nn = T_ * T_;
                add_f32_kernel<<<std::min(blocks_for(nn, 256), 4 * sm_count()), 256, 0, m.stream>>>(m.g32, nn, G);
                check_launch("add_f32_kernel");
            } else {
                const double one = 1.0;
                ANODIFF_CHECK(cublasDsyrk(m.blas, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, n, k, &one, m.xbuf,
                                          static_cast<int>(m.ldx), &one, G, n));
            }
        }
        if (msd_) {
            const std::int64_t M = N_ / 2 + 1;
            ANODIFF_CHECK(cufftExecD2Z(forward_plan(K), m.xbuf, m.cbuf));
            const dim3 grid(static_cast<unsigned>(blocks_for(M, 256)), static_cast<unsigned>(blocks_for(K, kPowerSlab)));
            power_sum_kernel<<<grid, 256, 0, m.stream>>>(m.cbuf, M, K, reinterpret_cast<double*>(sums.power.ptr()));
            check_launch("power_sum_kernel");
        }
    }
    sums.n_dims += n_cols;
}

void WindowEngine::finish(WindowSums& sums, bool acf_from_gram) {
    Impl& m = *impl_;
    double* acf = reinterpret_cast<double*>(sums.acf.ptr());
    if (sums.with_gram && sums.gram.bytes()) {
        double* G = reinterpret_cast<double*>(sums.gram.ptr());
        if (acf_from_gram) {
            acf_from_gram_kernel<<<static_cast<unsigned>(max_lag_ + 1), 256, 0, m.stream>>>(G, T_, max_lag_, acf);
            check_launch("acf_from_gram_kernel");
        }
        const dim3 block(32, 8), grid(static_cast<unsigned>(blocks_for(T_, 32)), static_cast<unsigned>(blocks_for(T_, 8)));
        symmetrize_kernel<<<grid, block, 0, m.stream>>>(G, T_);
        check_launch("symmetrize_kernel");
    }
    if (msd_ && !acf_from_gram) {
        const std::int64_t M = N_ / 2 + 1;
        // Real power spectrum -> complex input of the inverse transform (imaginary part 0).
        ANODIFF_CHECK(cudaMemsetAsync(m.spec_tmp, 0, sizeof(cufftDoubleComplex) * M, m.stream));
        ANODIFF_CHECK(cudaMemcpy2DAsync(m.spec_tmp, sizeof(cufftDoubleComplex), reinterpret_cast<void*>(sums.power.ptr()),
                                        sizeof(double), sizeof(double), M, cudaMemcpyDeviceToDevice, m.stream));
        ANODIFF_CHECK(cufftExecZ2D(m.inv, m.spec_tmp, m.power_tmp));
        scale_kernel<<<blocks_for(max_lag_ + 1, 256), 256, 0, m.stream>>>(m.power_tmp, max_lag_ + 1,
                                                                           1.0 / static_cast<double>(N_), acf);
        check_launch("scale_kernel");
    }
}

// ---------------------------------------------------------------------------
struct Streamer::Impl {
    cudaStream_t copy = nullptr;
    std::vector<void*> dev;
    std::vector<cudaEvent_t> copied, done;
    ~Impl() {
        for (auto e : copied) cudaEventDestroy(e);
        for (auto e : done) cudaEventDestroy(e);
        for (auto p : dev) cudaFree(p);
        if (copy) cudaStreamDestroy(copy);
    }
};

Streamer::Streamer(std::size_t slot_bytes, int n_slots) : impl_(new Impl), slot_bytes_(slot_bytes) {
    if (n_slots < 1) throw std::invalid_argument("n_slots must be positive");
    ANODIFF_CHECK(cudaStreamCreateWithFlags(&impl_->copy, cudaStreamNonBlocking));
    for (int k = 0; k < n_slots; ++k) {
        void* h = nullptr;
        void* d = nullptr;
        cudaEvent_t a, b;
        ANODIFF_CHECK(cudaHostAlloc(&h, slot_bytes_, cudaHostAllocDefault));
        host_.push_back(h);
        ANODIFF_CHECK(cudaMalloc(&d, slot_bytes_));
        impl_->dev.push_back(d);
        ANODIFF_CHECK(cudaEventCreateWithFlags(&a, cudaEventDisableTiming));
        impl_->copied.push_back(a);
        ANODIFF_CHECK(cudaEventCreateWithFlags(&b, cudaEventDisableTiming));
        impl_->done.push_back(b);
    }
}

Streamer::~Streamer() {
    for (auto e : impl_->done) cudaEventSynchronize(e);
    for (auto h : host_) cudaFreeHost(h);
}

std::uintptr_t Streamer::device(int slot) const { return reinterpret_cast<std::uintptr_t>(impl_->dev.at(slot)); }

void Streamer::wait(int slot) {
    ANODIFF_CHECK(cudaEventSynchronize(impl_->copied.at(slot)));
    ANODIFF_CHECK(cudaEventSynchronize(impl_->done.at(slot)));
}

void Streamer::upload(int slot, std::size_t bytes, WindowEngine& engine) {
    if (bytes > slot_bytes_) throw std::invalid_argument("upload larger than the streaming slot");
    Impl& m = *impl_;
    ANODIFF_CHECK(cudaStreamWaitEvent(m.copy, m.done.at(slot), 0));
    ANODIFF_CHECK(cudaMemcpyAsync(m.dev.at(slot), host_.at(slot), bytes, cudaMemcpyHostToDevice, m.copy));
    ANODIFF_CHECK(cudaEventRecord(m.copied.at(slot), m.copy));
    ANODIFF_CHECK(cudaStreamWaitEvent(reinterpret_cast<cudaStream_t>(engine.stream()), m.copied.at(slot), 0));
}

void Streamer::release(int slot, WindowEngine& engine) {
    ANODIFF_CHECK(cudaEventRecord(impl_->done.at(slot), reinterpret_cast<cudaStream_t>(engine.stream())));
}

// ---------------------------------------------------------------------------
void pair_curves(std::uintptr_t G, std::int64_t T, const double* P, const double* L, double s_lo, double s_hi,
                 std::int64_t n_s, double r_lo, double r_hi, std::int64_t n_r, bool transverse, double* S,
                 double* R) {
    const pair::LogBins sb = pair::make_log_bins(s_lo, s_hi, n_s);
    const pair::LogBins rb = pair::make_log_bins(r_lo, r_hi, n_r);
    const std::int64_t n_s_all = pair::kSRows * n_s, n_r_all = pair::kRRows * n_r;
    DeviceBuffer dP(sizeof(double) * T), dL(L ? sizeof(double) * T : 0), dS(sizeof(double) * n_s_all),
        dR(sizeof(double) * n_r_all);
    dP.upload(P, sizeof(double) * T);
    if (L) dL.upload(L, sizeof(double) * T);
    dS.zero();
    dR.zero();
    const std::size_t shared = sizeof(double) * (n_s_all + n_r_all);
    const bool use_shared = shared <= static_cast<std::size_t>(std::min(max_shared_bytes(), 48 * 1024));
    const int blocks = static_cast<int>(std::min<std::int64_t>(std::max<std::int64_t>(T - 1, 1), 8 * sm_count()));
    pair_curves_kernel<<<blocks, 256, use_shared ? shared : 0>>>(
        reinterpret_cast<const double*>(G), T, reinterpret_cast<const double*>(dP.ptr()),
        L ? reinterpret_cast<const double*>(dL.ptr()) : nullptr, sb, rb, transverse, use_shared,
        reinterpret_cast<double*>(dS.ptr()), reinterpret_cast<double*>(dR.ptr()));
    check_launch("pair_curves_kernel");
    ANODIFF_CHECK(cudaDeviceSynchronize());
    dS.download(S, sizeof(double) * n_s_all);
    dR.download(R, sizeof(double) * n_r_all);
}

void histogram(std::uintptr_t data, DType dtype, std::int64_t n, std::int64_t stride, double lo, double hi,
               std::int64_t n_bins, std::uint64_t* counts) {
    const pair::LinearBins bins = pair::make_linear_bins(lo, hi, n_bins);
    const std::int64_t slots = n_bins + 3;
    DeviceBuffer d(sizeof(unsigned long long) * slots);
    d.upload(counts, sizeof(unsigned long long) * slots);
    const std::size_t shared = sizeof(unsigned long long) * slots;
    const bool use_shared = shared <= static_cast<std::size_t>(std::min(max_shared_bytes(), 48 * 1024));
    const int blocks = std::max(1, std::min(blocks_for(std::max<std::int64_t>(n, 1), 256), 8 * sm_count()));
    auto* out = reinterpret_cast<unsigned long long*>(d.ptr());
    if (n > 0) {
        if (dtype == DType::f32)
            histogram_kernel<float><<<blocks, 256, use_shared ? shared : 0>>>(reinterpret_cast<const float*>(data), n,
                                                                              stride, bins, use_shared, out);
        else
            histogram_kernel<double><<<blocks, 256, use_shared ? shared : 0>>>(reinterpret_cast<const double*>(data), n,
                                                                               stride, bins, use_shared, out);
        check_launch("histogram_kernel");
    }
    ANODIFF_CHECK(cudaDeviceSynchronize());
    d.download(counts, sizeof(unsigned long long) * slots);
}

}  // namespace cuda
}  // namespace anodiff
