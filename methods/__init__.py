"""Every method registers itself on import; importing this package loads them all."""

from methods import fine, fsrf, ir_svr, lf_dnn, lmf, misa, mmim, mmmie, mult, self_mm, tfn  # noqa: F401
from methods.base import METHODS, MsaMethod, OptimHparams, register_method

__all__ = ["METHODS", "MsaMethod", "OptimHparams", "register_method"]
