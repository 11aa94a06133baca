// Minimal static work splitting over std::thread: the kernels are pure
// functions over index ranges, so a fixed contiguous split is enough.
#pragma once

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace anodiff {

// Calls fn(worker, begin, end) on `workers` threads over [0, n), contiguous
// near-equal ranges. Runs inline when workers == 1.
template <typename Fn>
void parallel_for_chunks(int workers, std::int64_t n, Fn&& fn) {
    workers = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(workers, n)));
    if (workers == 1) {
        fn(0, std::int64_t{0}, n);
        return;
    }
    std::vector<std::thread> pool;
    pool.reserve(workers - 1);
    const std::int64_t base = n / workers, extra = n % workers;
    std::int64_t begin = 0;
    std::int64_t first_end = 0;
    for (int w = 0; w < workers; ++w) {
        const std::int64_t end = begin + base + (w < extra ? 1 : 0);
        if (w == 0) first_end = end;
        else pool.emplace_back([&fn, w, begin, end] { fn(w, begin, end); });
        begin = end;
    }
    fn(0, std::int64_t{0}, first_end);
    for (auto& th : pool) th.join();
}

// Number of hardware threads, at least 1.
inline int hardware_threads() {
    const unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : static_cast<int>(n);
}

}  // namespace anodiff
