"""Primitives shared by the blind-spot family (N2V, AP-BSN, C-BSN, SDAP): pixel-shuffle
down-sampling, random sub-samplers, Noise2Void's masker."""
from .masking import STRATEGIES, replace_masked, stratified_mask
from .shuffle import (crop_to_multiple, pad_to_multiple, pd_down, pd_from_batch, pd_to_batch, pd_up, random_subsample,
                      random_subsamples, subsample_at)

__all__ = ["STRATEGIES", "replace_masked", "stratified_mask", "crop_to_multiple", "pad_to_multiple", "pd_down", "pd_up", "pd_to_batch",
           "pd_from_batch", "random_subsample", "random_subsamples", "subsample_at"]
