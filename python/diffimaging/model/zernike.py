"""Zernike polynomials in Noll's indexing and normalisation."""
from __future__ import annotations

import math

import numpy as np

from .._backend import validate as V

__all__ = ["noll_to_nm", "zernike_noll"]


def noll_to_nm(j: int) -> tuple[int, int]:
    """Noll index j >= 1 -> (n, m): radial order n and azimuthal frequency m,
    the sign of m giving cos (m > 0) or sin (m < 0)."""
    j = V.integer(j, "Noll index j", minimum=1, hint="(Noll indices start at 1)")
    n = 0
    while (n + 1) * (n + 2) // 2 < j:
        n += 1
    k = j - n * (n + 1) // 2 - 1           # 0 .. n within the radial order
    ms = sorted({abs(m) for m in range(-n, n + 1, 2)})
    # Noll order within n: |m| ascending, each non-zero |m| taking two consecutive j
    seq = []
    for am in ms:
        seq += [am] if am == 0 else [am, am]
    am = seq[k]
    if am == 0:
        return n, 0
    # even j -> cosine (m > 0), odd j -> sine (m < 0)
    return n, am if j % 2 == 0 else -am


def zernike_noll(j: int, rho, theta, xp=None):
    """Zernike polynomial Z_j (Noll index, Noll normalisation: unit RMS over the
    unit disk) at polar coordinates (rho, theta in radians); zero outside rho <= 1.
    ``xp``: the array namespace of ``rho`` and ``theta`` (default numpy)."""
    xp = np if xp is None else xp
    n, m = noll_to_nm(j)
    am = abs(m)
    R = xp.zeros_like(rho)
    for s in range((n - am) // 2 + 1):
        c = (-1) ** s * math.factorial(n - s) / (
            math.factorial(s) * math.factorial((n + am) // 2 - s) * math.factorial((n - am) // 2 - s))
        R = R + c * rho ** (n - 2 * s)
    if m == 0:
        Z = math.sqrt(n + 1) * R
    elif m > 0:
        Z = math.sqrt(2 * (n + 1)) * R * xp.cos(am * theta)
    else:
        Z = math.sqrt(2 * (n + 1)) * R * xp.sin(am * theta)
    return xp.where(rho <= 1.0, Z, 0.0)
