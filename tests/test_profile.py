"""The complexity profiler against the fidelity numbers of DESIGN.md and hand-computed counts."""
import torch
from torch import nn

from reidbook.models.backbones import resnet50
from reidbook.profile import count_macs, count_params, macs_by_stage, measure_latency, params_by_stage


def test_resnet50_parameters_match_design():
    m = resnet50()
    assert count_params(m) == 23_508_032
    by = params_by_stage(m)
    assert round((by["conv1"] + by["conv2"] + by["conv3"]) / 1e6, 3) == 1.445
    assert round((by["conv4"] + by["conv5"]) / 1e6, 3) == 22.063


def test_macs_of_a_conv_by_hand():
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    # every output position: 3*3*3 multiply-adds, 8 channels, 10x6 positions
    assert count_macs(conv, (3, 10, 6)) == 3 * 3 * 3 * 8 * 10 * 6
    lin = nn.Sequential(nn.Flatten(), nn.Linear(12, 5))
    assert count_macs(lin, (3, 2, 2)) == 12 * 5


def test_macs_by_stage_sum_to_total_and_grow_with_input():
    m = resnet50(width=0.125)
    stages = macs_by_stage(m, (64, 32))
    assert sum(stages.values()) == count_macs(m, (64, 32))
    assert count_macs(m, (128, 64)) == 4 * count_macs(m, (64, 32))


def test_resnet50_macs_near_the_caffe_table():
    # DaRe's table (Caffe ResNet-50, 256x128): 2542.3 M; torchvision-style is 3-5 % higher.
    macs = count_macs(resnet50(), (256, 128)) / 1e6
    assert 1.03 * 2542.3 <= macs <= 1.06 * 2542.3


def test_latency_reports_its_conditions():
    m = nn.Conv2d(3, 4, 3)
    r = measure_latency(m, (16, 8), batch_size=2, threads=1, warmup=1, repeats=3)
    assert r["batch_size"] == 2 and r["threads"] == 1 and r["repeats"] == 3
    assert r["median_ms"] > 0 and r["per_image_ms"] == r["median_ms"] / 2
    assert torch.get_num_threads() >= 1
