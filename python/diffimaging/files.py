"""Output files that are complete or absent, and run manifests (public API).

The writers of the package (HDF5 volumes, CSV and VTK tables, JSON, figures) all
write to a temporary file in the target folder and rename it when complete; a
run of the command line writes a manifest last.  The same tools serve code that
embeds the package:

- :func:`atomic_path` / :func:`atomic_open`: write a file atomically.
- :func:`write_manifest`: record the outputs of a run (bytes and SHA-256 each).
- :func:`verify_manifest`: tell a complete, unchanged output from a partial or
  altered one (``diffimaging verify OUT`` on the command line).

Example
-------
>>> from diffimaging.files import atomic_open, write_manifest, verify_manifest
>>> with atomic_open("out/table.csv") as fh:
...     fh.write("a,b\\n1,2\\n")
>>> m = write_manifest("out/manifest.json", ["out/table.csv"], source="run 7")
>>> verify_manifest(m)
[]
"""
from ._backend.files import (MANIFEST_FORMAT, atomic_open, atomic_path, read_manifest, sha256,
                             verify_manifest, write_manifest)

__all__ = ["atomic_path", "atomic_open", "write_manifest", "read_manifest", "verify_manifest",
           "sha256", "MANIFEST_FORMAT"]
