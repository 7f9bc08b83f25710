"""Atomic writes and run manifests (diffimaging._backend.files)."""
import json
import os

import pytest

from diffimaging._backend import files


def _parts(folder):
    return [p for p in os.listdir(folder) if p.endswith(files.TEMP_SUFFIX)]


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with files.atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        tmp.write_text("new")
        assert target.read_text() == "old"          # nothing visible until the end
    assert target.read_text() == "new"
    assert _parts(tmp_path) == []


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt, SystemExit])
def test_atomic_path_failure_keeps_old_file_and_cleans_up(tmp_path, exc):
    target = tmp_path / "a.csv"
    target.write_text("x,y\n1,2\n")
    with pytest.raises(exc):
        with files.atomic_open(target) as fh:
            fh.write("x,y\n")                         # a header, then the failure
            raise exc()
    assert target.read_text() == "x,y\n1,2\n"
    assert _parts(tmp_path) == []


def test_atomic_path_new_file_absent_after_failure(tmp_path):
    target = tmp_path / "new.h5"
    with pytest.raises(OSError):
        with files.atomic_path(target) as tmp:
            tmp.write_bytes(b"\x89HDF partial")
            raise OSError(27, "File too large")
    assert not target.exists() and _parts(tmp_path) == []


def test_atomic_path_refusals(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError, match="folder"):
        with files.atomic_path(tmp_path / "d"):
            pass
    with pytest.raises(FileNotFoundError, match="does not exist"):
        with files.atomic_path(tmp_path / "missing" / "x.txt"):
            pass
    (tmp_path / "keep.txt").write_text("1")
    with pytest.raises(FileExistsError, match="refusing"):
        with files.atomic_path(tmp_path / "keep.txt", overwrite=False):
            pass
    assert (tmp_path / "keep.txt").read_text() == "1" and _parts(tmp_path) == []
    with pytest.raises(ValueError, match="mode"):
        with files.atomic_open(tmp_path / "x", "a"):
            pass


def test_manifest_detects_missing_truncated_and_changed(tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "sub" / "b.txt"
    b.parent.mkdir()
    a.write_bytes(b"0123456789")
    b.write_text("hello")
    m = files.write_manifest(tmp_path / "manifest.json", [a, b], inputs=["x.tif"], n=3)
    doc = files.read_manifest(m)
    assert doc["complete"] is True and doc["meta"] == {"inputs": ["x.tif"], "n": 3}
    assert [e["path"] for e in doc["files"]] == ["a.bin", "sub/b.txt"]
    assert doc["files"][0]["bytes"] == 10
    assert files.verify_manifest(m) == []
    a.write_bytes(b"01234")
    b.write_text("HELLO")
    probs = files.verify_manifest(m)
    assert any("a.bin" in p and "5 bytes" in p for p in probs)
    assert any("sub/b.txt" in p and "changed" in p for p in probs)
    assert files.verify_manifest(m, checksum=False) == [probs[0]]
    b.unlink()
    assert any("missing" in p for p in files.verify_manifest(m))


def test_manifest_refuses_missing_entry_and_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="was it written"):
        files.write_manifest(tmp_path / "m.json", [tmp_path / "nope"])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="not a diffimaging manifest"):
        files.read_manifest(bad)
    bad.write_text("{trunc")
    with pytest.raises(ValueError, match="not a readable manifest"):
        files.read_manifest(bad)
