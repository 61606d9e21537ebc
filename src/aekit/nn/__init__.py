"""Torch building blocks: encoders/decoders per modality and bottlenecks."""
from .bottlenecks import Bottleneck, BottleneckOutput, ContinuousBottleneck, GaussianBottleneck
from .conv import ConvDecoder, ConvEncoder
from .discrete import BinaryBottleneck, OneHotBottleneck, VectorQuantizer, VQBottleneck, codebook_health
from .mlp import MLP
from .registry import build, describe

__all__ = [
    "MLP", "ConvEncoder", "ConvDecoder", "Bottleneck", "BottleneckOutput", "ContinuousBottleneck", "GaussianBottleneck",
    "BinaryBottleneck", "OneHotBottleneck", "VectorQuantizer", "VQBottleneck", "codebook_health", "build", "describe",
]
