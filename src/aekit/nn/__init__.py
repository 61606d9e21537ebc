"""Torch building blocks: encoders/decoders per modality and bottlenecks."""
from .bottlenecks import Bottleneck, BottleneckOutput, ContinuousBottleneck, GaussianBottleneck
from .conv import ConvDecoder, ConvEncoder
from .discrete import BinaryBottleneck, OneHotBottleneck, VectorQuantizer, VQBottleneck, codebook_health
from .mlp import MLP
from .registry import BOTTLENECKS, build, build_bottleneck, describe
from .split import SplitBottleneck

__all__ = [
    "MLP", "ConvEncoder", "ConvDecoder", "Bottleneck", "BottleneckOutput", "ContinuousBottleneck", "GaussianBottleneck",
    "BinaryBottleneck", "OneHotBottleneck", "VectorQuantizer", "VQBottleneck", "SplitBottleneck", "codebook_health",
    "BOTTLENECKS", "build", "build_bottleneck", "describe",
]
