"""Every method registers itself on import; importing this package loads them all."""

from methods import lf_dnn, lmf, misa, mmim, mult, self_mm, tfn  # noqa: F401  (registers them)
from methods.base import METHODS, MsaMethod, OptimHparams, register_method

__all__ = ["METHODS", "MsaMethod", "OptimHparams", "register_method"]
