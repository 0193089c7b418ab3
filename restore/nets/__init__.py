"""Network definitions (they know nothing of how they are trained)."""
from .registry import ARCHS, build_net, register_arch
from .dbsn import DBSNl
from .laine19 import BlindSpotUNet
from .unet import CompactUNet
from .eps_unet import EpsUNet

__all__ = ["ARCHS", "BlindSpotUNet", "CompactUNet", "DBSNl", "EpsUNet", "build_net", "register_arch"]
