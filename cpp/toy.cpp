// Walkers of the simplified SGD model, w_{t+1} = w_t - eta grad L(w_t) + eta sigma Z_t.
// The per-step arithmetic lives in toy.hpp (ANODIFF_HD, shared with CUDA).
#include "toy.hpp"

#include <limits>

#include "parallel.hpp"

namespace anodiff {

void toy_gradient_grid(const double* z, std::int64_t ny, std::int64_t nx, double h, double* grad,
                       int n_threads) {
    parallel_for_chunks(n_threads, ny, [&](int, std::int64_t i0, std::int64_t i1) {
        for (std::int64_t i = i0; i < i1; ++i)
            for (std::int64_t j = 0; j < nx; ++j) {
                double* g = grad + (i * nx + j) * 2;
                toy::node_gradient(z, ny, nx, h, i, j, g, g + 1);
            }
    });
}

namespace {

constexpr std::int64_t kBlock = 32;  // walkers advanced together by one thread

// Walkers [k0, k1), k1 - k0 <= kBlock.
void walk_block(const double* grad, const double* z, std::int64_t ny, std::int64_t nx, double h, double x0, double y0,
                const double* starts, std::int64_t k0, std::int64_t k1, std::int64_t n_steps, double eta,
                double sigma, std::uint64_t seed, std::uint64_t walker_offset, double* traj, double* grads,
                double* loss, std::int64_t* exit_step) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const std::int64_t m = k1 - k0;
    std::uint64_t key[kBlock];
    double x[kBlock], y[kBlock];
    bool active[kBlock];
    std::int64_t n_active = 0;
    for (std::int64_t b = 0; b < m; ++b) {
        const std::int64_t k = k0 + b;
        key[b] = toy::walker_key(seed, walker_offset + static_cast<std::uint64_t>(k));
        x[b] = starts[2 * k];
        y[b] = starts[2 * k + 1];
        double* w = traj + k * (n_steps + 1) * 2;
        w[0] = x[b];
        w[1] = y[b];
        exit_step[k] = -1;
        std::int64_t ci, cj;
        double fy, fx;
        active[b] = toy::locate(x[b], y[b], ny, nx, h, x0, y0, &ci, &cj, &fy, &fx);
        if (active[b]) ++n_active;
        else exit_step[k] = 0;
        if (loss) loss[k * (n_steps + 1)] = active[b] ? toy::bilinear(z, nx, ci, cj, fy, fx) : nan;
    }
    for (std::int64_t t = 0; t < n_steps && n_active > 0; ++t) {
#if defined(__GNUC__)
        // Ask for every walker's cell before stepping any: the reads overlap.
        for (std::int64_t b = 0; b < m; ++b) {
            std::int64_t ci, cj;
            double fy, fx;
            if (active[b] && toy::locate(x[b], y[b], ny, nx, h, x0, y0, &ci, &cj, &fy, &fx)) {
                const double* r0 = grad + (ci * nx + cj) * 2;
                __builtin_prefetch(r0);
                __builtin_prefetch(r0 + 3);
                __builtin_prefetch(r0 + nx * 2);
                __builtin_prefetch(r0 + nx * 2 + 3);
                if (loss) {
                    __builtin_prefetch(z + ci * nx + cj);
                    __builtin_prefetch(z + ci * nx + cj + nx);
                }
            }
        }
#endif
        for (std::int64_t b = 0; b < m; ++b) {
            if (!active[b]) continue;
            const std::int64_t k = k0 + b;
            double z0, z1, gxv, gyv;
            if (loss) {  // L(w_t) at the current (prefetched) cell
                std::int64_t ci, cj;
                double fy, fx;
                toy::locate(x[b], y[b], ny, nx, h, x0, y0, &ci, &cj, &fy, &fx);
                loss[k * (n_steps + 1) + t] = toy::bilinear(z, nx, ci, cj, fy, fx);
            }
            toy::normal_pair(key[b], static_cast<std::uint64_t>(t), &z0, &z1);
            toy::sgd_step(grad, ny, nx, h, x0, y0, eta, sigma, z0, z1, &x[b], &y[b], &gxv, &gyv);
            double* w = traj + (k * (n_steps + 1) + t + 1) * 2;
            w[0] = x[b];
            w[1] = y[b];
            if (grads) {
                double* g = grads + (k * n_steps + t) * 2;
                g[0] = gxv;
                g[1] = gyv;
            }
            std::int64_t ci, cj;
            double fy, fx;
            if (!toy::locate(x[b], y[b], ny, nx, h, x0, y0, &ci, &cj, &fy, &fx)) {
                active[b] = false;
                --n_active;
                exit_step[k] = t + 1;
                if (loss) loss[k * (n_steps + 1) + t + 1] = nan;
            }
        }
    }
    // Loss at the last row of the walkers that stayed; NaN after the exit row of the others.
    for (std::int64_t b = 0; b < m; ++b) {
        const std::int64_t k = k0 + b;
        const std::int64_t e = exit_step[k];
        if (e < 0) {
            if (loss) {
                std::int64_t ci, cj;
                double fy, fx;
                toy::locate(x[b], y[b], ny, nx, h, x0, y0, &ci, &cj, &fy, &fx);
                loss[k * (n_steps + 1) + n_steps] = toy::bilinear(z, nx, ci, cj, fy, fx);
            }
            continue;
        }
        double* w = traj + k * (n_steps + 1) * 2;
        for (std::int64_t r = e + 1; r <= n_steps; ++r) w[2 * r] = w[2 * r + 1] = nan;
        if (loss)
            for (std::int64_t r = e + 1; r <= n_steps; ++r) loss[k * (n_steps + 1) + r] = nan;
        if (grads) {
            double* g = grads + k * n_steps * 2;
            for (std::int64_t s = e; s < n_steps; ++s) g[2 * s] = g[2 * s + 1] = nan;
        }
    }
}

}  // namespace

void toy_walk(const double* grad, const double* z, std::int64_t ny, std::int64_t nx, double h, double x0, double y0,
              const double* starts, std::int64_t n_walkers, std::int64_t n_steps, double eta, double sigma,
              std::uint64_t seed, std::uint64_t walker_offset, double* traj, double* grads, double* loss,
              std::int64_t* exit_step, int n_threads) {
    const std::int64_t n_blocks = (n_walkers + kBlock - 1) / kBlock;
    parallel_for_chunks(n_threads, n_blocks, [&](int, std::int64_t b0, std::int64_t b1) {
        for (std::int64_t blk = b0; blk < b1; ++blk) {
            const std::int64_t k0 = blk * kBlock;
            const std::int64_t k1 = k0 + kBlock < n_walkers ? k0 + kBlock : n_walkers;
            walk_block(grad, z, ny, nx, h, x0, y0, starts, k0, k1, n_steps, eta, sigma, seed, walker_offset,
                       traj, grads, loss, exit_step);
        }
    });
}

}  // namespace anodiff
