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
