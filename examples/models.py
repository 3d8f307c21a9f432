"""Two small classifiers unlike dldiag's LeNet, for the tests, the README and the notebook.

- :func:`small_resnet` — a residual CNN for 3-channel images: skip connections, in-place
  ReLUs (one ReLU module run twice per block, as in torchvision's ``BasicBlock``), global
  average pooling and ``torch.flatten`` in ``forward``, and a final ``nn.Linear``.
- :func:`breast_cancer_mlp` — an MLP for scikit-learn's breast-cancer table (30 features,
  2 classes).

This file is plain torch (it imports nothing from dldiag), so that it reads like a user's own
model file: ``--model examples/models.py:small_resnet`` or, from the repository root,
``--model examples.models:small_resnet``. The factories take no seed: initialise under
``torch.random.fork_rng()`` with ``torch.manual_seed`` inside, or load trained weights.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

__all__ = ["BasicBlock", "SmallResNet", "small_resnet", "breast_cancer_mlp"]


class BasicBlock(nn.Module):
    """conv 3×3 → BN → ReLU → conv 3×3 → BN, plus the input (projected if the shape changes) → ReLU.

    One ReLU module, in place, runs twice per block, as in torchvision's ``BasicBlock``.

    Parameters
    ----------
    c_in, c_out : int
        Input and output channels.
    stride : int
        Stride of the first convolution (2 halves the height and width).
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(c_out))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return self.relu(out)


class SmallResNet(nn.Module):
    """stem (conv 16@3×3, BN, ReLU) → 3 residual blocks (16, 32, 64 channels) → pool → linear.

    Parameters
    ----------
    in_channels : int
        Channels of the input images.
    n_classes : int
        Number of output logits.
    """

    def __init__(self, in_channels: int = 3, n_classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(inplace=True),
        )
        self.block1 = BasicBlock(16, 16)
        self.block2 = BasicBlock(16, 32, stride=2)
        self.block3 = BasicBlock(32, 64, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block3(self.block2(self.block1(self.stem(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


def small_resnet(in_channels: int = 3, n_classes: int = 10) -> SmallResNet:
    """A small residual CNN (about 78 thousand parameters for 3 channels and 10 classes).

    Any image size of at least 4×4 works: the pooling is global.

    Examples
    --------
    >>> small_resnet()(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """
    return SmallResNet(in_channels, n_classes)


def breast_cancer_mlp(n_features: int = 30, n_classes: int = 2) -> nn.Sequential:
    """An MLP, fc1 (32) → ReLU → fc2 (16) → ReLU → fc3 (logits), for standardised tabular features.

    Examples
    --------
    >>> breast_cancer_mlp()(torch.zeros(4, 30)).shape
    torch.Size([4, 2])
    """
    return nn.Sequential(OrderedDict(
        fc1=nn.Linear(n_features, 32),
        relu1=nn.ReLU(),
        fc2=nn.Linear(32, 16),
        relu2=nn.ReLU(),
        fc3=nn.Linear(16, n_classes),
    ))
