"""Datasets: noisy folders, patch sampling, synthetic noise, bundled samples."""
from .patches import NoisyFolder, SyntheticNoisy, load_folder, make_dataset, random_patches
from .real import PDSubimages

__all__ = ["PDSubimages", "NoisyFolder", "SyntheticNoisy", "load_folder", "make_dataset", "random_patches"]
