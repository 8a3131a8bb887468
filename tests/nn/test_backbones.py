import pytest
import torch

from replab.nn.backbones import make_backbone


def test_resnet18_cifar_stem_and_size():
    net = make_backbone("resnet18", (3, 32, 32))
    n_params = sum(p.numel() for p in net.parameters())
    # ResNet-18 with a 3x3 stem and no fc layer: 11,168,832 parameters (the ImageNet
    # model's 11,689,512 minus its 7x7 stem and 1000-way classifier, plus the 3x3 stem)
    assert n_params == 11_168_832
    assert net.stem[0].kernel_size == (3, 3) and net.stem[0].stride == (1, 1)
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 512)


def test_conv_backbone_adapts_to_input():
    for shape in [(1, 8, 8), (1, 28, 28), (3, 64, 64)]:
        net = make_backbone("conv", shape)
        assert net(torch.rand(2, *shape)).shape == (2, net.out_dim)


def test_unknown_backbone():
    with pytest.raises(ValueError, match="choose from: conv, resnet18"):
        make_backbone("vit", (3, 32, 32))
