"""Network definitions (they know nothing of how they are trained)."""
from .registry import ARCHS, build_net, register_arch
from .dbsn import DBSNl
from .laine19 import BlindSpotUNet
from .unet import CompactUNet

__all__ = ["ARCHS", "BlindSpotUNet", "CompactUNet", "DBSNl", "build_net", "register_arch"]
