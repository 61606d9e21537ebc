"""Torch building blocks: encoders/decoders per modality and bottlenecks."""
from .bottlenecks import Bottleneck, BottleneckOutput, ContinuousBottleneck, GaussianBottleneck
from .conv import ConvDecoder, ConvEncoder
from .mlp import MLP
from .registry import build, describe

__all__ = [
    "MLP", "ConvEncoder", "ConvDecoder", "Bottleneck", "BottleneckOutput", "ContinuousBottleneck", "GaussianBottleneck",
    "build", "describe",
]
