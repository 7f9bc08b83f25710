"""The package's layering: no module imports another package's private names.

``diffimaging._backend`` is the one internal layer that every other layer may
import (its modules' public names only); anything else whose name starts with
an underscore is private to its own package.  Third-party private modules
(e.g. ``scipy.fft._pocketfft``) may only be used inside ``_backend``, behind a
tested fallback.
"""
from __future__ import annotations

import ast
from pathlib import Path

import diffimaging

ROOT = Path(diffimaging.__file__).resolve().parent
PKG = "diffimaging"
BACKEND = f"{PKG}._backend"


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = [PKG] + list(rel.parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        yield path, ".".join(parts), is_pkg


def _package(modname: str, is_pkg: bool) -> str:
    return modname if is_pkg else modname.rpartition(".")[0]


def _resolve(node: ast.ImportFrom, modname: str, is_pkg: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = _package(modname, is_pkg).split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _owner(target: str) -> str:
    """The package a (sub)module name belongs to, for the privacy rule."""
    return target.rpartition(".")[0]


def _violations_in(path, modname, is_pkg):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    mypkg = _package(modname, is_pkg)
    in_backend = mypkg == BACKEND or mypkg.startswith(BACKEND + ".")
    out = []
    aliases = {}  # local name -> module it names (for attribute reach-ins)

    def check_module(target, lineno):
        # a private module or package in the dotted path, outside the importer's own package
        parts = target.split(".")
        for i, part in enumerate(parts):
            if not _private(part):
                continue
            prefix = ".".join(parts[: i + 1])
            if parts[0] != PKG:
                if not in_backend:
                    out.append(f"{modname}:{lineno}: third-party private module {target}")
                return
            if prefix == BACKEND:
                continue  # the shared internal layer
            if in_backend and i == 1:
                continue  # the compiled modules (_core, _cuda) are _backend's to load
            owner = _owner(prefix)
            if owner != mypkg and not mypkg.startswith(prefix):
                out.append(f"{modname}:{lineno}: imports private module {prefix}")
                return

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                check_module(a.name, node.lineno)
                if a.asname:
                    aliases[a.asname] = a.name
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node, modname, is_pkg)
            check_module(target, node.lineno)
            for a in node.names:
                full = f"{target}.{a.name}" if target else a.name
                if _private(a.name):
                    if target.split(".")[0] != PKG:
                        if not in_backend:
                            out.append(f"{modname}:{node.lineno}: third-party private name {full}")
                    elif full == BACKEND or (in_backend and target == PKG):
                        pass  # the shared layer; the compiled modules, loaded by _backend
                    elif target != mypkg and target != modname:
                        out.append(f"{modname}:{node.lineno}: imports private name {full}")
                aliases[a.asname or a.name] = full
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            mod = aliases.get(node.value.id)
            if mod and mod.startswith(PKG) and _private(node.attr):
                owner_pkg = mod if (ROOT / Path(*mod.split(".")[1:]) / "__init__.py").exists() \
                    else _owner(mod)
                if owner_pkg != mypkg:
                    out.append(f"{modname}:{node.lineno}: reaches into {mod}.{node.attr}")
    return out


def test_no_cross_package_private_imports():
    found = []
    for path, modname, is_pkg in _modules():
        found += _violations_in(path, modname, is_pkg)
    assert not found, "private names used across package boundaries:\n" + "\n".join(found)


def test_the_rule_catches_a_reach_in(tmp_path):
    # the checker itself must see the three kinds of violation
    src = ("from ..ops import propagate as P\n"
           "from ..optim.losses import _fsum\n"
           "from scipy.fft._pocketfft import pypocketfft\n"
           "x = P._make_plan\n")
    f = tmp_path / "mod.py"
    f.write_text(src)
    found = _violations_in(f, f"{PKG}.holography.mod", False)
    assert any("_fsum" in v for v in found)
    assert any("third-party private" in v for v in found)
    assert any("_make_plan" in v for v in found)
