"""Trajectory reader and the streamed one-pass MSD of every window."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

import anodiff
from anodiff.io import Trajectory, _group_windows

from conftest import write_run
from test_msd import direct_msd


@pytest.mark.parametrize("n_steps,d,chunks,T,tw_step", [
    (301, 13, None, 100, 100),         # contiguous dataset, d below one chunk
    (257, 1031, (64, 128), 101, 50),   # overlapping windows, d spans several chunks
    (500, 300, (500, 7), 250, 125),    # odd chunk width
])
def test_msd_windows_match_direct_reference(tmp_path, rng, n_steps, d, chunks, T, tw_step):
    W = (rng.standard_normal((n_steps, d)) * 1e-2).cumsum(axis=0).astype(np.float32) + 1.0
    path = write_run(tmp_path / "run.h5", W, chunks=chunks)
    res = anodiff.msd_windows(path, T=T, tw_step=tw_step, memory_mb=0.05)
    starts = list(range(0, n_steps - T + 1, tw_step))
    np.testing.assert_array_equal(res.t_w, starts)
    for k, t_w in enumerate(starts):
        np.testing.assert_allclose(res.msd[k], direct_msd(W[t_w:t_w + T]), rtol=1e-6)
    assert res.n_dims == d


def test_each_value_is_read_about_once(tmp_path, rng, monkeypatch):
    W = rng.standard_normal((400, 600)).astype(np.float32)
    path = write_run(tmp_path / "run.h5", W, chunks=(100, 64))
    read = []
    original = Trajectory.read

    def spy(self, t0, t1, c0=0, c1=None):
        out = original(self, t0, t1, c0, c1)
        read.append(out.size)
        return out

    monkeypatch.setattr(Trajectory, "read", spy)
    anodiff.msd_windows(path, T=100, tw_step=100, memory_mb=0.2)
    assert sum(read) == W.size


def test_window_grouping_respects_budget():
    windows = [(s, s + 10) for s in range(0, 100, 10)]
    groups = _group_windows(windows, budget_bytes=30 * 4, bytes_per_row_chunk=4)
    assert [len(g) for g in groups] == [3, 3, 3, 1]
    assert sorted(k for g in groups for k in g) == list(range(10))


def test_incomplete_run_needs_opt_in(tmp_path, rng):
    W = rng.standard_normal((50, 4)).astype(np.float32)
    path = write_run(tmp_path / "run.h5", W, attrs={"complete": False, "n_steps_written": 30})
    with pytest.raises(ValueError, match="incomplete"):
        Trajectory(path)
    with Trajectory(path, allow_incomplete=True) as traj:
        assert traj.n_steps == 30
        with pytest.raises(ValueError, match="larger than the 30 recorded steps"):
            traj.window_starts(40, 10)


@pytest.mark.parametrize("make,match", [
    (lambda p: None, "no such file"),
    (lambda p: p.write_text("not hdf5"), "not a readable HDF5 file"),
    (lambda p: h5py.File(p, "w").close(), "no dataset /weights"),
    (lambda p: write_run(p, np.zeros(10, np.float32)), "must be 2-D"),
    (lambda p: write_run(p, np.zeros((10, 3), np.int32)), "floating-point"),
    (lambda p: write_run(p, np.zeros((10, 3), np.float32), attrs={"n_steps_written": 11}),
     "does not fit"),
])
def test_bad_files_give_one_line(tmp_path, make, match):
    path = tmp_path / "run.h5"
    make(path)
    with pytest.raises(ValueError, match=match) as info:
        Trajectory(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("chunks", [None, (64, 128)])
def test_prefetch_modes_and_readahead(tmp_path, rng, chunks):
    """Strips are the same whether the next one is read in a thread, in turn, or in turn
    after asking the OS to read it ahead; readahead of any block is harmless."""
    W = rng.standard_normal((300, 517)).astype(np.float32)
    path = write_run(tmp_path / "run.h5", W, chunks=chunks)
    windows = [(0, 120), (100, 250), (180, 300)]
    with Trajectory(path) as traj:
        assert traj.can_readahead == (chunks is not None and hasattr(__import__("os"), "posix_fadvise"))
        traj.readahead(0, 300)
        traj.readahead(250, 300, 500, 517)  # partial chunks at the edges
        got = {}
        for mode in (True, False, "auto"):
            got[mode] = [(s.c0, s.c1, s.row0, s.data.copy())
                         for s in traj.iter_strips(windows, memory_mb=0.05, prefetch=mode,
                                                   min_width=256)]
        for a, b in zip(got[True], got["auto"]):
            assert a[:3] == b[:3] and np.array_equal(a[3], b[3])
        assert len(got[False]) == len(got[True])
        for c0, c1, row0, data in got["auto"]:
            np.testing.assert_array_equal(data, W[row0:row0 + data.shape[0], c0:c1])
        with pytest.raises(anodiff.InputError, match="prefetch"):
            list(traj.iter_strips(windows, prefetch="sometimes"))
