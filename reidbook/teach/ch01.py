"""Chapter 01 (the baseline): exercises, predictions and the quiz. A template for every ``chNN.py``:
each exercise's ``solution`` is what a learner would write (its source is shown, collapsed), ``wrong`` a
typical mistake the check must catch, ``context`` a small stand-in for what the chapter passes."""
from __future__ import annotations

from .core import Exercise, register as _register, right, wrong


def _bn_neck_context() -> dict:
    import torch.nn as nn

    return {"neck": nn.BatchNorm1d(2048)}


def _bn_neck_check(answer, neck) -> object:
    want = sum(p.numel() for p in neck.parameters())
    if int(answer) == want:
        return right(f"{want:,} = 2 × {neck.num_features}: a scale γ and a shift β per channel; the running mean "
                     "and variance are buffers, not parameters.")
    if int(answer) == 2 * want:
        return wrong("that counts the running mean and variance too; they are buffers (not learned).")
    return wrong(f"{int(answer):,} is not it: a BatchNorm1d over C channels learns two numbers per channel.")


def _bn_neck_solution(neck):
    return sum(p.numel() for p in neck.parameters())   # = 2 * neck.num_features (γ and β)


def _bn_neck_wrong(neck):
    return 4 * neck.num_features   # γ, β and the running statistics


BN_NECK = Exercise(
    id="01.bn_neck", title="The BN-neck's price",
    prompt="How many parameters does the BN-neck of the paper-size baseline add (γ and β of a BatchNorm over the "
           "2048-d feature)? Set my_answer to a number.",
    hint="Count what the optimiser updates, not what the layer stores: BatchNorm keeps four vectors, two are learned.",
    check=_bn_neck_check, solution=_bn_neck_solution, wrong=_bn_neck_wrong, context=_bn_neck_context)

_register("01", exercises=[BN_NECK])
