import itertools

import pytest
from torch import nn

from plugins.text_classifier import optim


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 2)


def test_groups_split_head_from_backbone_and_decay_from_no_decay():
    net = Net()
    groups = optim.param_groups(net, learning_rate=1e-4, head_learning_rate=1e-3, weight_decay=0.1)
    by_param = {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}
    assert by_param[id(net.encoder.weight)] == (1e-4, 0.1)
    assert by_param[id(net.encoder.bias)] == (1e-4, 0.0)
    assert by_param[id(net.norm.weight)] == (1e-4, 0.0)
    assert by_param[id(net.head.weight)] == (1e-3, 0.1)
    assert by_param[id(net.head.bias)] == (1e-3, 0.0)
    assert len(by_param) == len(list(net.parameters()))


def test_schedule_warms_up_then_decays_to_zero():
    f = optim.warmup_linear_decay(total_steps=10, warmup_ratio=0.2)
    factors = [f(step) for step in range(11)]
    assert factors[0] < factors[1] < factors[2] == 1.0
    assert all(a > b for a, b in itertools.pairwise(factors[2:]))
    assert factors[10] == 0.0


def test_build_steps_the_learning_rate_per_call():
    opt, sched = optim.build(
        Net(),
        learning_rate=1e-4,
        head_learning_rate=1e-3,
        weight_decay=0.0,
        warmup_ratio=0.0,
        total_steps=4,
    )
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([1e-4, 0.75e-4, 0.5e-4, 0.25e-4])
