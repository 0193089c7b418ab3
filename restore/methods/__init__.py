"""Methods: how a network is trained from noisy data and how it restores."""
from .base import METHODS, Method, get_method, register
from .n2s import Noise2Score
from .n2v import Noise2Void
from .gr2r import GR2R
from .r2r import R2R
from .apbsn import APBSN
from .cbsn import CBSN
from .sdap import SDAP
from .laine19 import Laine19
from .nb2nb import Neighbor2Neighbor
from .supervised import R2RBank, Supervised
from .prior import DiffusionPriorTraining

__all__ = ["METHODS", "Method", "get_method", "register", "Noise2Score", "Noise2Void", "R2R", "GR2R", "APBSN", "CBSN", "SDAP", "Laine19", "Neighbor2Neighbor", "Supervised", "R2RBank", "DiffusionPriorTraining"]
