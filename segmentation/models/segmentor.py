"""A segmentation network: dilated backbone -> main head (+ auxiliary FCN head on stage 3).

``forward(x)`` returns logits at 1/8 of the input resolution: ``(main, aux)`` in training mode
when the network has an auxiliary head, the main logits alone otherwise (the aux head only
trains). :meth:`forward_with_aux` always returns ``(main, aux_or_None)``; the teacher uses it so
that the auxiliary logits can be distilled too.
"""
from __future__ import annotations

from torch import Tensor, nn

from segmentation.models.backbones import DilatedBackbone
from segmentation.models.heads import FCNHead


class Segmentor(nn.Module):
    def __init__(self, backbone: DilatedBackbone, head: nn.Module, num_classes: int, aux: bool) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.aux_head = FCNHead(backbone.aux_channels, num_classes) if aux else None
        self.num_classes = num_classes
        self.output_stride = backbone.output_stride

    def forward_with_aux(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        c3, c4 = self.backbone(x)
        aux = self.aux_head(c3) if self.aux_head is not None else None
        return self.head(c4), aux

    def forward(self, x: Tensor):
        if self.training and self.aux_head is not None:
            return self.forward_with_aux(x)
        c3, c4 = self.backbone(x)
        return self.head(c4)


class WithAux(nn.Module):
    """Wraps a :class:`Segmentor` so that ``forward`` always returns ``(main, aux)`` (for teachers)."""

    def __init__(self, model: Segmentor) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        return self.model.forward_with_aux(x)
