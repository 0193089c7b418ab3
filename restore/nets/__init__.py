"""Network definitions (they know nothing of how they are trained)."""
from .unet import CompactUNet, build_net

__all__ = ["CompactUNet", "build_net"]
