"""The network: a configurable backbone with a species head and a multi-label types head."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from pokedex.errors import PokedexError


def _strip_classifier(model: nn.Module) -> int:
    """Replace the backbone's last Linear layer with Identity; return its input width."""
    last_name, last = None, None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last_name, last = name, module
    if last is None or last_name is None:
        raise PokedexError(f"{type(model).__name__} has no Linear classifier to replace")
    parent = model.get_submodule(last_name.rpartition(".")[0]) if "." in last_name else model
    setattr(parent, last_name.rpartition(".")[2], nn.Identity())
    return last.in_features


def build_backbone(
    arch: str, *, pretrained: bool = False, stem_pool: bool = True
) -> tuple[nn.Module, int]:
    """A feature extractor by name and its output width.

    ``arch`` is a torchvision model name (``resnet18``) or ``timm/<name>`` (needs the timm extra).
    ``pretrained`` downloads ImageNet weights where the network allows. ``stem_pool=False``
    drops a ResNet's stem max-pool, doubling the spatial resolution for small inputs.
    """
    if arch.startswith("timm/"):
        try:
            import timm
        except ImportError as exc:
            raise PokedexError("timm backbones need `pip install pokedex[timm]`") from exc
        model = timm.create_model(arch.removeprefix("timm/"), pretrained=pretrained, num_classes=0)
        return model, int(model.num_features)
    import torchvision

    if arch not in torchvision.models.list_models(module=torchvision.models):
        raise PokedexError(
            f"unknown backbone {arch!r}: use a torchvision classification model name"
        )
    model = torchvision.models.get_model(arch, weights="DEFAULT" if pretrained else None)
    if not stem_pool and hasattr(model, "maxpool"):
        model.maxpool = nn.Identity()
    return model, _strip_classifier(model)


class PokedexNet(nn.Module):
    """Backbone -> (species logits ``(N, C)``, type logits ``(N, T)``).

    ``flip_average``: in eval mode the features are the mean of the image's and of its mirror
    image's, so the heads, the export and the server all answer for both at twice the backbone
    work; training is unchanged (it sees random flips already).
    """

    def __init__(
        self,
        arch: str,
        num_classes: int,
        num_types: int = 18,
        *,
        pretrained: bool = False,
        stem_pool: bool = True,
        dropout: float = 0.0,
        flip_average: bool = False,
    ) -> None:
        super().__init__()
        self.flip_average = flip_average
        self.backbone, width = build_backbone(arch, pretrained=pretrained, stem_pool=stem_pool)
        self.dropout = nn.Dropout(dropout)
        self.species_head = nn.Linear(width, num_classes)
        self.types_head = nn.Linear(width, num_types)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``(N, D)`` for images ``(N, 3, H, W)``."""
        if self.flip_average and not self.training:
            # two passes, not one batch of 2N: a graph with no reshape on the batch axis, which
            # ONNX Runtime's shape inference (before INT8 quantization) can follow
            return (self.backbone(x) + self.backbone(x.flip(-1))) / 2
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Species and type logits for images ``(N, 3, H, W)``."""
        f = self.dropout(self.features(x))
        return self.species_head(f), self.types_head(f)


def net_input(net: nn.Module, x: np.ndarray) -> torch.Tensor:
    """A preprocessed batch ``(N, 3, H, W)`` as the net takes it: on the device and in the
    floating dtype of its weights (a net on a GPU gets CUDA tensors), channels-last."""
    weight = next(net.parameters())
    t = torch.from_numpy(np.ascontiguousarray(x)).to(weight.device, weight.dtype)
    return t.contiguous(memory_format=torch.channels_last)


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A net output back on the host as float32, wherever the net ran."""
    return t.detach().float().cpu().numpy()


def _load_weights(net: PokedexNet, bundle: Any) -> None:
    """Copy the bundle's safetensors weights into ``net`` (copies convert the dtype, so the fp16
    weights of a release bundle load into an fp32 net)."""
    from safetensors.torch import load_file

    state = load_file(bundle.file("weights.safetensors"))
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise PokedexError(
            f"{bundle.path}: its weights do not fit the architecture "
            f"(model.arch={bundle.meta['net']['arch']!r} in the bundle): {exc}"
        ) from exc


def load_net(bundle: Any) -> PokedexNet:
    """Rebuild the network of a :class:`pokedex.core.bundle.Bundle` from its safetensors weights."""
    net = PokedexNet(num_classes=len(bundle.classes), **bundle.meta["net"])
    _load_weights(net, bundle)
    return net.eval()


def init_from_bundle(net: PokedexNet, bundle: Any, classes: list[str]) -> None:
    """Copy a bundle's weights into ``net`` to fine-tune it; the bundle must have been trained
    on the same species list with the same architecture."""
    if list(bundle.classes) != list(classes):
        raise PokedexError(
            f"{bundle.path}: its {len(bundle.classes)} species are not this dataset's "
            f"{len(classes)}: fine-tune from a bundle trained on the same data"
        )
    _load_weights(net, bundle)
