"""Every method registers itself on import; importing this package loads them all."""

from methods import lf_dnn, misa, mmim, mult, tfn  # noqa: F401  (import registers the methods)
from methods.base import METHODS, MsaMethod, OptimHparams, register_method

__all__ = ["METHODS", "MsaMethod", "OptimHparams", "register_method"]
