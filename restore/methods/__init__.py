"""Methods: how a network is trained from noisy data and how it restores."""
from .base import METHODS, Method, get_method, register
from .n2s import Noise2Score
from .r2r import R2R

__all__ = ["METHODS", "Method", "get_method", "register", "Noise2Score", "R2R"]
