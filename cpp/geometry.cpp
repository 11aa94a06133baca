#include "geometry.hpp"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "geometry_hd.hpp"
#include "parallel.hpp"

namespace anodiff {

namespace {

// Σ_i (b_i - a_i)^2 in float64 with eight independent partial sums, so the
// compiler can vectorise the loop without reassociating a single sum.
template <typename S>
__attribute__((always_inline)) inline double sqdiff_sum(const S* a, const S* b, std::int64_t n) {
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int l = 0; l < 8; ++l) {
            const double d = static_cast<double>(b[i + l]) - static_cast<double>(a[i + l]);
            acc[l] += d * d;
        }
    }
    double tail = 0.0;
    for (; i < n; ++i) {
        const double d = static_cast<double>(b[i]) - static_cast<double>(a[i]);
        tail += d * d;
    }
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail;
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define ANODIFF_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define ANODIFF_CLONES
#endif

ANODIFF_CLONES double sqdiff_sum_f32(const float* a, const float* b, std::int64_t n) {
    return sqdiff_sum(a, b, n);
}
ANODIFF_CLONES double sqdiff_sum_f64(const double* a, const double* b, std::int64_t n) {
    return sqdiff_sum(a, b, n);
}
inline double sqdiff(const float* a, const float* b, std::int64_t n) { return sqdiff_sum_f32(a, b, n); }
inline double sqdiff(const double* a, const double* b, std::int64_t n) { return sqdiff_sum_f64(a, b, n); }

// Columns are processed in blocks so that the band+1 rows in use stay in cache.
constexpr std::int64_t kColBlock = 2048;

template <typename S>
void band_direct(const S* data, std::int64_t n_points, std::int64_t row_step, std::int64_t n_cols,
                 std::int64_t row_stride, std::int64_t band, double* out, int n_threads) {
    parallel_for_chunks(n_threads, n_points - 1, [&](int, std::int64_t p0, std::int64_t p1) {
        std::vector<double> local(static_cast<std::size_t>((p1 - p0) * band), 0.0);
        for (std::int64_t c0 = 0; c0 < n_cols; c0 += kColBlock) {
            const std::int64_t w = std::min(kColBlock, n_cols - c0);
            for (std::int64_t p = p0; p < p1; ++p) {
                const S* a = data + p * row_step * row_stride + c0;
                const std::int64_t kmax = std::min(band, n_points - 1 - p);
                for (std::int64_t k = 1; k <= kmax; ++k)
                    local[(p - p0) * band + k - 1] += sqdiff(a, a + k * row_step * row_stride, w);
            }
        }
        for (std::int64_t p = p0; p < p1; ++p)
            for (std::int64_t k = 0; k < band; ++k) out[p * band + k] += local[(p - p0) * band + k];
    });
}

// Wide bands of float32 rows: each row's block of kWideBlock columns is widened
// to float64 once, into a ring of band+1 rows, instead of once per pair.
constexpr std::int64_t kWideBlock = 256;

ANODIFF_CLONES void widen(const float* x, std::int64_t n, double* y) {
    for (std::int64_t i = 0; i < n; ++i) y[i] = static_cast<double>(x[i]);
}

// acc[k-1] += Σ_{i<w} (ring row (p+k) - ring row p)^2, k = 1..kmax.
ANODIFF_CLONES void ring_sqdiff(const double* ring, std::int64_t n_ring, std::int64_t p, std::int64_t kmax,
                                std::int64_t w, double* acc) {
    const double* a = ring + (p % n_ring) * kWideBlock;
    for (std::int64_t k = 1; k <= kmax; ++k)
        acc[k - 1] += sqdiff_sum(a, ring + ((p + k) % n_ring) * kWideBlock, w);
}

void band_widened(const float* data, std::int64_t n_points, std::int64_t row_step, std::int64_t n_cols,
                  std::int64_t row_stride, std::int64_t band, double* out, int n_threads) {
    parallel_for_chunks(n_threads, n_points - 1, [&](int, std::int64_t p0, std::int64_t p1) {
        std::vector<double> local(static_cast<std::size_t>((p1 - p0) * band), 0.0);
        const std::int64_t n_ring = band + 1;
        std::vector<double> ring(static_cast<std::size_t>(n_ring * kWideBlock));
        const std::int64_t q1 = std::min(n_points, p1 + band);  // rows this thread reads
        const auto widen_row = [&](std::int64_t q, std::int64_t c0, std::int64_t w) {
            widen(data + q * row_step * row_stride + c0, w, ring.data() + (q % n_ring) * kWideBlock);
        };
        for (std::int64_t c0 = 0; c0 < n_cols; c0 += kWideBlock) {
            const std::int64_t w = std::min(kWideBlock, n_cols - c0);
            for (std::int64_t q = p0; q < std::min(q1, p0 + band); ++q) widen_row(q, c0, w);
            for (std::int64_t p = p0; p < p1; ++p) {
                if (p + band < q1) widen_row(p + band, c0, w);
                ring_sqdiff(ring.data(), n_ring, p, std::min(band, n_points - 1 - p), w,
                            local.data() + (p - p0) * band);
            }
        }
        for (std::int64_t p = p0; p < p1; ++p)
            for (std::int64_t k = 0; k < band; ++k) out[p * band + k] += local[(p - p0) * band + k];
    });
}

template <typename S>
void band_impl(const S* data, std::int64_t n_points, std::int64_t row_step, std::int64_t n_cols,
               std::int64_t row_stride, std::int64_t band, double* out, int n_threads) {
    if (n_points < 2 || band < 1 || n_cols < 1) return;
    if constexpr (std::is_same_v<S, float>) {
        if (band >= 4) return band_widened(data, n_points, row_step, n_cols, row_stride, band, out, n_threads);
    }
    band_direct(data, n_points, row_step, n_cols, row_stride, band, out, n_threads);
}

std::vector<double> gram_diag(const double* G, std::int64_t P) {
    std::vector<double> d(static_cast<std::size_t>(P));
    for (std::int64_t p = 0; p < P; ++p) d[p] = G[p * P + p];
    return d;
}

// Squared distance matrix D (P x P, row-major) from G, computed once so the
// O(P^3) loop only loads and compares.
std::vector<double> sqdist_matrix(const double* G, const double* diag, std::int64_t P, int n_threads) {
    std::vector<double> D(static_cast<std::size_t>(P * P));
    parallel_for_chunks(n_threads, P, [&](int, std::int64_t r0, std::int64_t r1) {
        for (std::int64_t s = r0; s < r1; ++s)
            for (std::int64_t u = 0; u < P; ++u) D[s * P + u] = gram_sqdist(diag[s], diag[u], G[s * P + u]);
    });
    return D;
}

// max over u in [u0, u1) of chord_perp_sq(ds[u], dt[u], dst, inv), four lanes.
ANODIFF_CLONES double chord_max(const double* ds, const double* dt, std::int64_t u0, std::int64_t u1,
                                double dst, double inv) {
    double m[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::int64_t u = u0;
    for (; u + 8 <= u1; u += 8) {
        for (int l = 0; l < 8; ++l) {
            const double h = chord_perp_sq(ds[u + l], dt[u + l], dst, inv);
            m[l] = h > m[l] ? h : m[l];
        }
    }
    for (; u < u1; ++u) {
        const double h = chord_perp_sq(ds[u], dt[u], dst, inv);
        m[0] = h > m[0] ? h : m[0];
    }
    double r = m[0];
    for (int l = 1; l < 8; ++l) r = m[l] > r ? m[l] : r;
    return r;
}

// Rows s handled together by transverse_rows: row t of D is then read once
// per block instead of once per s (the O(P^3) loop is memory bound otherwise).
constexpr std::int64_t kTransverseBlock = 16;

// h(s,t)^2 for s in [s0, s1) and every t in [s+2, P), written to
// h2[(s - s0) * P + t], from the squared-distance matrix D (symmetric).
void transverse_rows(const double* D, std::int64_t P, std::int64_t s0, std::int64_t s1, double* h2) {
    for (std::int64_t t = s0 + 2; t < P; ++t) {
        const double* dt = D + t * P;
        for (std::int64_t s = s0; s < s1 && s + 2 <= t; ++s) {
            const double* ds = D + s * P;
            const double dst = ds[t];
            double m;
            if (dst > 0.0) {
                m = chord_max(ds, dt, s + 1, t, dst, 1.0 / (4.0 * dst));
            } else {
                m = 0.0;
                for (std::int64_t u = s + 1; u < t; ++u) m = ds[u] > m ? ds[u] : m;
            }
            h2[(s - s0) * P + t] = m;
        }
    }
}

}  // namespace

void band_sqdist_accumulate(const float* data, std::int64_t n_points, std::int64_t row_step,
                            std::int64_t n_cols, std::int64_t row_stride, std::int64_t band,
                            double* out, int n_threads) {
    band_impl(data, n_points, row_step, n_cols, row_stride, band, out, n_threads);
}

void band_sqdist_accumulate(const double* data, std::int64_t n_points, std::int64_t row_step,
                            std::int64_t n_cols, std::int64_t row_stride, std::int64_t band,
                            double* out, int n_threads) {
    band_impl(data, n_points, row_step, n_cols, row_stride, band, out, n_threads);
}

void block_gram_assemble(double* A, std::int64_t P, std::int64_t block, const double* Q, const double* CC,
                         const double* band_sq, std::int64_t band, int n_threads) {
    if (P < 1) return;
    const std::int64_t nb = (P + block - 1) / block;
    const std::int64_t nq = nb - 1;
    // cum[s*nb + j] = Σ_{m<j} Q_sm, so z_s.(C_I - C_J) = cum[s, I] - cum[s, J].
    std::vector<double> cum(static_cast<std::size_t>(P * nb));
    std::vector<double> a(static_cast<std::size_t>(P)), e(static_cast<std::size_t>(nb));
    for (std::int64_t s = 0; s < P; ++s) {
        a[s] = A[s * P + s];
        double run = 0.0;
        cum[s * nb] = 0.0;
        for (std::int64_t m = 0; m < nq; ++m) cum[s * nb + m + 1] = (run += Q[s * nq + m]);
    }
    for (std::int64_t I = 0; I < nb; ++I) e[I] = CC[I * nb + I];
    const auto sqdist = [&](std::int64_t s, std::int64_t t) {  // s < t
        if (band_sq != nullptr && t - s <= band) return band_sq[s * band + (t - s - 1)];
        const std::int64_t I = s / block, J = t / block;
        const double* cs = cum.data() + s * nb;
        const double* ct = cum.data() + t * nb;
        return a[s] + a[t] - 2.0 * A[t * P + s] + 2.0 * ((cs[I] - cs[J]) + (ct[J] - ct[I])) + e[I] + e[J] -
               2.0 * CC[I * nb + J];
    };
    std::vector<double> d0(static_cast<std::size_t>(P), 0.0);
    for (std::int64_t t = 1; t < P; ++t) d0[t] = sqdist(0, t);
    // Tiles of the upper triangle; each writes G_st to (s,t) and (t,s), reading
    // only its own upper entries, so tiles are independent.
    constexpr std::int64_t kTile = 64;
    const std::int64_t nt = (P + kTile - 1) / kTile;
    const std::int64_t n_tiles = nt * (nt + 1) / 2;
    parallel_for_chunks(n_threads, n_tiles, [&](int, std::int64_t k0, std::int64_t k1) {
        for (std::int64_t k = k0; k < k1; ++k) {
            // k-th tile (ti <= tj) in row order of the upper triangle of tiles.
            std::int64_t ti = 0, rem = k;
            while (rem >= nt - ti) { rem -= nt - ti; ++ti; }
            const std::int64_t tj = ti + rem;
            const std::int64_t s0 = ti * kTile, s1 = std::min(P, s0 + kTile);
            const std::int64_t t0 = tj * kTile, t1 = std::min(P, t0 + kTile);
            for (std::int64_t t = t0; t < t1; ++t) {
                for (std::int64_t s = s0; s < std::min(s1, t + 1); ++s) {
                    const double g = s == t ? d0[s] : 0.5 * (d0[s] + d0[t] - sqdist(s, t));
                    A[t * P + s] = g;
                }
            }
        }
    });
    // Mirror after every upper entry has been read (the lower triangle held nothing).
    parallel_for_chunks(n_threads, P, [&](int, std::int64_t r0, std::int64_t r1) {
        for (std::int64_t s = r0; s < r1; ++s)
            for (std::int64_t t = s + 1; t < P; ++t) A[s * P + t] = A[t * P + s];
    });
}

void pair_bins(const double* G, std::int64_t P, const double* contour, const double* loss,
               const double* s_edges, std::int64_t n_s, const double* r_edges, std::int64_t n_r,
               double* s_sum_dr2, double* s_sum_ds, std::int64_t* s_count, double* r_sum_dr,
               double* r_sum_dl2, std::int64_t* r_count, int n_threads) {
    if (P < 2) return;
    const std::vector<double> diag = gram_diag(G, P);
    const int workers = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(n_threads, P - 1)));
    struct Partial {
        std::vector<double> s_dr2, s_ds, r_dr, r_dl2;
        std::vector<std::int64_t> s_n, r_n;
    };
    std::vector<Partial> parts(static_cast<std::size_t>(workers));
    parallel_for_chunks(workers, workers, [&](int w, std::int64_t, std::int64_t) {
        Partial& q = parts[w];
        q.s_dr2.assign(n_s, 0.0); q.s_ds.assign(n_s, 0.0); q.s_n.assign(n_s, 0);
        q.r_dr.assign(n_r, 0.0); q.r_dl2.assign(n_r, 0.0); q.r_n.assign(n_r, 0);
        for (std::int64_t s = w; s < P - 1; s += workers) {
            const double* gs = G + s * P;
            for (std::int64_t t = s + 1; t < P; ++t) {
                const double dr2 = gram_sqdist(diag[s], diag[t], gs[t]);
                const double ds = contour[t] - contour[s];
                const std::int64_t bs = bin_index(ds, s_edges, n_s);
                if (bs >= 0) {
                    q.s_dr2[bs] += dr2;
                    q.s_ds[bs] += ds;
                    q.s_n[bs] += 1;
                }
                const double dr = std::sqrt(dr2);
                const std::int64_t br = bin_index(dr, r_edges, n_r);
                if (br >= 0) {
                    q.r_dr[br] += dr;
                    q.r_n[br] += 1;
                    if (loss != nullptr) {
                        const double dl = loss[s] - loss[t];
                        q.r_dl2[br] += dl * dl;
                    }
                }
            }
        }
    });
    for (const Partial& q : parts) {
        for (std::int64_t b = 0; b < n_s; ++b) {
            s_sum_dr2[b] += q.s_dr2[b];
            s_sum_ds[b] += q.s_ds[b];
            s_count[b] += q.s_n[b];
        }
        for (std::int64_t b = 0; b < n_r; ++b) {
            r_sum_dr[b] += q.r_dr[b];
            r_sum_dl2[b] += q.r_dl2[b];
            r_count[b] += q.r_n[b];
        }
    }
}

void transverse_matrix(const double* G, std::int64_t P, double* H, int n_threads) {
    if (P < 1) return;
    const std::vector<double> diag = gram_diag(G, P);
    const std::vector<double> D = sqdist_matrix(G, diag.data(), P, n_threads);
    const int workers = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(n_threads, P)));
    const std::int64_t B = kTransverseBlock;
    parallel_for_chunks(workers, workers, [&](int w, std::int64_t, std::int64_t) {
        std::vector<double> h2(static_cast<std::size_t>(B * P));
        for (std::int64_t s0 = w * B; s0 < P; s0 += workers * B) {
            const std::int64_t s1 = std::min(P, s0 + B);
            transverse_rows(D.data(), P, s0, s1, h2.data());
            for (std::int64_t s = s0; s < s1; ++s) {
                double* row = H + s * P;
                for (std::int64_t t = s; t < std::min(P, s + 2); ++t) row[t] = 0.0;
                for (std::int64_t t = s + 2; t < P; ++t) row[t] = std::sqrt(h2[(s - s0) * P + t]);
            }
        }
    });
}

void transverse_bins(const double* G, std::int64_t P, const double* r_edges, std::int64_t n_r,
                     double* sum_h, double* sum_h2, double* sum_dr, std::int64_t* count,
                     int n_threads) {
    if (P < 3) return;
    const std::vector<double> diag = gram_diag(G, P);
    const std::vector<double> D = sqdist_matrix(G, diag.data(), P, n_threads);
    const int workers = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(n_threads, P - 2)));
    struct Partial {
        std::vector<double> h, h2, dr;
        std::vector<std::int64_t> n;
    };
    std::vector<Partial> parts(static_cast<std::size_t>(workers));
    parallel_for_chunks(workers, workers, [&](int w, std::int64_t, std::int64_t) {
        Partial& q = parts[w];
        q.h.assign(n_r, 0.0); q.h2.assign(n_r, 0.0); q.dr.assign(n_r, 0.0); q.n.assign(n_r, 0);
        const std::int64_t B = kTransverseBlock;
        std::vector<double> h2buf(static_cast<std::size_t>(B * P));
        for (std::int64_t s0 = w * B; s0 < P - 2; s0 += workers * B) {
          const std::int64_t s1 = std::min(P - 2, s0 + B);
          transverse_rows(D.data(), P, s0, s1, h2buf.data());
          for (std::int64_t s = s0; s < s1; ++s) {
            const double* h2 = h2buf.data() + (s - s0) * P;
            for (std::int64_t t = s + 2; t < P; ++t) {
                const double dst = D[s * P + t];
                if (!(dst > 0.0)) continue;
                const double dr = std::sqrt(dst);
                const std::int64_t b = bin_index(dr, r_edges, n_r);
                if (b < 0) continue;
                q.h[b] += std::sqrt(h2[t]);
                q.h2[b] += h2[t];
                q.dr[b] += dr;
                q.n[b] += 1;
            }
          }
        }
    });
    for (const Partial& q : parts) {
        for (std::int64_t b = 0; b < n_r; ++b) {
            sum_h[b] += q.h[b];
            sum_h2[b] += q.h2[b];
            sum_dr[b] += q.dr[b];
            count[b] += q.n[b];
        }
    }
}

}  // namespace anodiff
