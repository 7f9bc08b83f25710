"""Peak memory of back-propagation does not grow with the plane count (issue 9).

Each case runs ``benchmarks/bench_memory.py``'s measurement: a fresh process,
peak RSS after the inputs are ready and at the end.  From 32 to 256 planes of a
256 x 256 hologram, the added memory may grow by at most a quarter of the
256-plane float32 stack (64 MiB): a path that holds the stack grows by >= 1.
"""
import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "bench_memory", Path(__file__).resolve().parents[1] / "benchmarks" / "bench_memory.py")
bench_memory = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_memory)

N, FEW, MANY = 256, 32, 256


@pytest.mark.parametrize("path", ["projections", "cli"])
def test_back_propagation_memory_is_bounded_in_the_plane_count(path):
    rows = [bench_memory.measure(path, N, nz) for nz in (FEW, MANY)]
    g = bench_memory.growth(rows, N)[path]
    assert g["fraction_of_stack"] < 0.25, (
        f"{path}: the added peak memory grew by {g['growth_mib']:.1f} MiB from {FEW} to {MANY} planes "
        f"({g['fraction_of_stack']:.0%} of the {g['stack_mib']:.0f} MiB stack): {rows}")


def test_the_check_sees_a_path_that_holds_the_stack():
    """The measurement itself: the (nz, ny, nx) stack output does grow with nz."""
    rows = [bench_memory.measure("stack", N, nz) for nz in (FEW, MANY)]
    assert bench_memory.growth(rows, N)["stack"]["fraction_of_stack"] > 0.75, rows
