// Walkers of the simplified SGD model, w_{t+1} = w_t - eta grad L(w_t) + eta sigma Z_t.
// The per-step arithmetic lives in toy.hpp (ANODIFF_HD, shared with CUDA).
#include "toy.hpp"

#include <limits>

#include "parallel.hpp"

namespace anodiff {

void toy_gradient_grid(const double* z, std::int64_t ny, std::int64_t nx, double h, double* gx, double* gy,
                       int n_threads) {
    parallel_for_chunks(n_threads, ny, [&](int, std::int64_t i0, std::int64_t i1) {
        for (std::int64_t i = i0; i < i1; ++i)
            for (std::int64_t j = 0; j < nx; ++j)
                toy::node_gradient(z, ny, nx, h, i, j, gx + i * nx + j, gy + i * nx + j);
    });
}

void toy_walk(const double* gx, const double* gy, std::int64_t ny, std::int64_t nx, double h, double x0,
              double y0, const double* starts, std::int64_t n_walkers, std::int64_t n_steps, double eta,
              double sigma, std::uint64_t seed, std::uint64_t walker_offset, double* traj, double* grads,
              std::int64_t* exit_step, int n_threads) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    // Small contiguous chunks balance walkers that stop early.
    const std::int64_t block = 16;
    const std::int64_t n_blocks = (n_walkers + block - 1) / block;
    parallel_for_chunks(n_threads, n_blocks, [&](int, std::int64_t b0, std::int64_t b1) {
        const std::int64_t k_end = b1 * block < n_walkers ? b1 * block : n_walkers;
        for (std::int64_t k = b0 * block; k < k_end; ++k) {
            const std::uint64_t key = toy::walker_key(seed, walker_offset + static_cast<std::uint64_t>(k));
            double* w = traj + k * (n_steps + 1) * 2;
            double* g = grads ? grads + k * n_steps * 2 : nullptr;
            double x = starts[2 * k], y = starts[2 * k + 1];
            w[0] = x;
            w[1] = y;
            std::int64_t exited = -1;
            std::int64_t t = 0;
            for (; t < n_steps; ++t) {
                double z0, z1, gxv, gyv;
                toy::normal_pair(key, static_cast<std::uint64_t>(t), &z0, &z1);
                if (!toy::sgd_step(gx, gy, ny, nx, h, x0, y0, eta, sigma, z0, z1, &x, &y, &gxv, &gyv)) {
                    exited = t;  // only when the start itself lies outside
                    break;
                }
                w[2 * (t + 1)] = x;
                w[2 * (t + 1) + 1] = y;
                if (g) {
                    g[2 * t] = gxv;
                    g[2 * t + 1] = gyv;
                }
                std::int64_t ci, cj;
                double fy, fx;
                if (!toy::locate(x, y, ny, nx, h, x0, y0, &ci, &cj, &fy, &fx)) {
                    exited = t + 1;
                    ++t;
                    break;
                }
            }
            for (std::int64_t r = (exited < 0 ? n_steps + 1 : exited + 1); r <= n_steps; ++r)
                w[2 * r] = w[2 * r + 1] = nan;
            if (g)
                for (std::int64_t s = (exited < 0 ? n_steps : exited); s < n_steps; ++s)
                    g[2 * s] = g[2 * s + 1] = nan;
            exit_step[k] = exited;
        }
    });
}

}  // namespace anodiff
