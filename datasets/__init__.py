"""Datasets: noisy folders, patch sampling, synthetic noise, bundled samples."""
from .patches import NoisyFolder, SyntheticNoisy, load_folder, make_dataset, random_patches

__all__ = ["NoisyFolder", "SyntheticNoisy", "load_folder", "make_dataset", "random_patches"]
