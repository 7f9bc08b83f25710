"""Every Python code block of README.md runs as written (each in a fresh namespace,
in a temporary working folder), so the README cannot drift from the API."""
import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("i", range(len(BLOCKS)), ids=lambda i: f"block{i}")
def test_readme_python_block_runs_as_written(i, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib") if "matplotlib" in BLOCKS[i] else None
    monkeypatch.chdir(tmp_path)
    code = compile(BLOCKS[i], f"README.md python block {i}", "exec")
    exec(code, {"__name__": "__readme__"})
    assert os.getcwd() == str(tmp_path)


def test_walkthrough_from_tiffs_to_paraview_runs_as_written(tmp_path, monkeypatch):
    """The README's walkthrough: its Python block writes the recording, its bash block
    (run by bash, with ``diffimaging`` the command line of this interpreter) goes
    from the TIFFs to particles, PIV, PTV and the ParaView files."""
    import subprocess
    import sys

    import numpy as np

    import diffimaging
    from diffimaging import holography as H

    text = README.read_text(encoding="utf-8")
    part = text[text.index("### From TIFFs to ParaView"):]
    py = re.search(r"```python\n(.*?)```", part, re.S).group(1)
    sh = re.search(r"```bash\n(.*?)```", part, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(py, "README walkthrough", "exec"), {"__name__": "__readme__"})
    shim = tmp_path / "bin" / "diffimaging"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m diffimaging "$@"\n')
    shim.chmod(0o755)
    env = dict(os.environ, PATH=f"{shim.parent}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=os.pathsep.join([str(Path(diffimaging.__file__).parents[1])]
                                          + ([os.environ["PYTHONPATH"]] if "PYTHONPATH" in os.environ
                                             else [])))
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", sh], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "background: lowpass" in r.stdout + r.stderr        # 4 frames: stated, not a median
    for k in range(4):
        cols, meta = H.read_table(tmp_path / f"particles_{k:04d}.csv")
        assert 35 <= len(cols["x_m"]) <= 90                     # 66 particles simulated
        assert (tmp_path / f"particles_{k:04d}.vtk").stat().st_size > 0
    for i in range(3):
        cols, _ = H.read_table(tmp_path / f"vectors_{i:04d}.csv")
        assert np.isfinite(cols["u_m_per_frame"]).mean() > 0.5
        assert (tmp_path / f"vectors_{i:04d}.vti").read_bytes().startswith(b"<?xml")
    tracks, _ = H.read_table(tmp_path / "tracks.csv")
    assert len(set(tracks["track_id"].tolist())) >= 20
    assert "all" in r.stdout and "present and unchanged" in r.stdout
