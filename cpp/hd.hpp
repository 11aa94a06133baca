// Marks arithmetic shared by the CPU engine and the CUDA kernels.
#pragma once

#if defined(__CUDACC__)
#define ANODIFF_HD __host__ __device__ inline
#else
#define ANODIFF_HD inline
#endif
