"""Diffusion-prior solvers of ``y = A(x) + noise``: RED-Diff and GDP, with DPS and DDRM beside them.

Every solver is called the same way: ``get_solver("reddiff")(y, A, prior, sigma=0.05)``
with ``y`` and ``sigma`` in [0, 1] units and returns ``x`` (N, C, H, W) in [0, 1].
"""
from .base import SOLVERS, Solver, get_solver, register_solver
from .ddrm import DDRM
from .dps import DPS
from .gdp import GDP
from .reddiff import REDDiff

__all__ = ["SOLVERS", "Solver", "get_solver", "register_solver", "REDDiff", "GDP", "DPS", "DDRM"]
