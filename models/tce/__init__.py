"""TCE: a video 2D pose network with a temporal consistency module (``/work/shared/MODELS.md`` section 1).

An encoder-decoder heatmap network for frame ``t`` that also reads frames ``t - 1`` and ``t + 1``:
their features are aligned to frame ``t`` by deformable sampling at several dilation rates (offsets
predicted from the feature pair; no optical flow) and fused before the decoder. Modules:

* :mod:`.sampler` — :class:`DeformableConv2d` on ``grid_sample`` (no torchvision);
* :mod:`.network` — :class:`TCENet` (``temporal=False``: the single-frame ablation);
* :mod:`.heatmaps` — Gaussian targets, weighted MSE, argmax + sub-pixel decoding;
* :mod:`.crops` — square top-down boxes, crop affines, warping, keypoint mapping; :class:`CropBoxOptions`,
  how every source of training crops boxes the person;
* :mod:`.train` — ``train_tce(config, sample_source, ...)``, checkpoints, ``evaluate`` (PCK, jitter);
* :mod:`.detector` — :class:`TCEDetector`, the network as a tracking :class:`Detector2D`.

``checkpoint.pt`` (beside this file, when shipped) is the trained model; ``CHECKPOINT.md`` says how
it was made.
"""

from .crops import CropBoxOptions
from .detector import DEFAULT_CHECKPOINT, TCEDetector
from .network import TCENet
from .sampler import DeformableConv2d
from .train import AugmentConfig, TCETrainConfig, evaluate, load_tce, train_tce

__all__ = ["DEFAULT_CHECKPOINT", "AugmentConfig", "CropBoxOptions", "DeformableConv2d", "TCEDetector", "TCENet",
           "TCETrainConfig", "evaluate", "load_tce", "train_tce"]
