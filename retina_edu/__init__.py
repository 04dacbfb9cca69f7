"""retina_edu: RetinaNet (Lin et al. 2017, "Focal Loss for Dense Object Detection") built from
scratch in plain PyTorch, one concept per module, each checked against torchvision."""

from retina_edu.config import RetinaNetConfig
from retina_edu.device import default_device
from retina_edu.model import RetinaNet

__all__ = ["RetinaNet", "RetinaNetConfig", "default_device"]
__version__ = "0.1.0"
