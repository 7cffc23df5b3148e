"""Does a standard fix change where a model looks? One model's mAP, attention and background reliance as one
row, and the sentences that read two such rows (before and after the fix) and a paper's attention figure.

The fix chapter 02 tries is **random erasing** (Zhong et al., "Random Erasing Data Augmentation", AAAI 2020,
Sec. 3.1: with probability ``p`` a random rectangle of a training image is overwritten with random values,
so no single region — a background patch included — can carry the match; BoT, Luo et al., CVPR-W 2019,
Sec. 3.2, trains with ``p = 0.5``). The row measures what the fix is supposed to move:

* ``mAP`` and ``mAP_swap`` — the model's mAP on the query and on the background-swapped query
  (:func:`reidbook.eval.background.background_reliance`), and ``swap_change = mAP_swap - mAP``: how much
  the background moves the matches (either sign is reliance; 0 is none);
* ``on_person``, ``chance``, ``lift`` — the share of its response's energy (L2 over channels of its last
  feature map, :func:`reidbook.eval.attention.response_energy`) on the person, the person's area share, and
  their ratio (:func:`reidbook.eval.attention.attention_summary`), on images the caller picks (the same
  images for every model compared).
"""
from __future__ import annotations

from typing import Mapping, Sequence

__all__ = ["attention_and_reliance", "describe_remedy", "describe_paper_attention"]

def attention_and_reliance(model, dataset, images, part_maps: Sequence, height: int, width: int,
                           device="auto", reliance: Mapping | None = None) -> dict:
    """``{"mAP", "mAP_swap", "swap_change", "on_person", "chance", "lift", "pointing_hit"}`` for ``model``.

    Args:
        model: any model with a single last feature map (:func:`reidbook.eval.attention.feature_map`).
        dataset: a SynthReID data set (the background-swapped query is needed unless ``reliance`` is given).
        images, part_maps: ``[B, 3, height, width]`` test images and their part-label maps
            (:func:`reidbook.eval.attention.images_and_parts`), the same for every model compared.
        reliance: a ready :func:`~reidbook.eval.background.background_reliance` result for this model
            (a chapter that measured it already passes it; nothing is embedded twice).

    All values are fractions (mAP in [0, 1]); ``swap_change`` is positive when the swap *raises* the mAP.
    """
    from .attention import attention_summary, response_energy
    from .background import background_reliance

    if len(images) != len(part_maps) or len(part_maps) == 0:
        raise ValueError(f"attention_and_reliance: need one part map per image (≥ 1), got {len(images)} images and "
                         f"{len(part_maps)} part maps")
    if reliance is None:
        reliance = background_reliance(model, dataset, height, width, device=device)
    missing = [k for k in ("mAP", "mAP_swap") if k not in reliance]
    if missing:
        raise KeyError(f"attention_and_reliance: reliance lacks {missing}; pass background_reliance(...)'s dict")
    att = attention_summary(list(response_energy(model, images)), part_maps)
    return {"mAP": float(reliance["mAP"]), "mAP_swap": float(reliance["mAP_swap"]),
            "swap_change": float(reliance["mAP_swap"] - reliance["mAP"]), "on_person": att["on_person"],
            "chance": att["chance"], "lift": att["lift"], "pointing_hit": att["pointing_hit"]}


def _moved(before: float, after: float, tol: float, unit: str, scale: float = 100.0, fmt: str = ".1f") -> tuple:
    d = scale * (after - before)
    word = "rises" if d > tol else "falls" if d < -tol else "stays"
    return word, d, (f"{scale * before:{fmt}} → {scale * after:{fmt}}{unit}, {d:+{fmt}} points" if word != "stays" else
                     f"{scale * before:{fmt}} → {scale * after:{fmt}}{unit}")


def _pts(v: float) -> str:
    return f"{v:g} point" + ("" if v == 1 else "s")


def describe_remedy(before: Mapping, after: Mapping, fix: str = "random erasing", model: str = "the baseline",
                    points: float = 1.0, share_points: float = 2.0) -> str:
    """Sentences on what ``fix`` changed, from two :func:`attention_and_reliance` rows (without, with the fix).

    Three readings, each by its own tolerance: the mAP (moved when it changes by more than ``points``
    percentage points), the on-person share of the response (``share_points`` percentage points; the lift
    and the chance level are quoted), and the background's effect — the swap's mAP change ``swap_change``,
    compared by size (a smaller ``|swap_change|`` = less reliance on background, whichever its sign), moved
    when the sizes differ by more than ``points``. When none moved, the sentence says so plainly.
    """
    for name, row in (("before", before), ("after", after)):
        missing = [k for k in ("mAP", "on_person", "chance", "lift", "swap_change") if k not in row]
        if missing:
            raise KeyError(f"describe_remedy: {name} lacks {missing}; pass attention_and_reliance(...)'s dicts")
    m_word, _, m_txt = _moved(before["mAP"], after["mAP"], points, " %")
    s_word, _, s_txt = _moved(before["on_person"], after["on_person"], share_points, " %", fmt=".0f")
    b0, b1 = 100 * abs(before["swap_change"]), 100 * abs(after["swap_change"])
    r_word = "less" if b1 < b0 - points else "more" if b1 > b0 + points else "same"
    swap = (f"the background swap changes its mAP by {100 * before['swap_change']:+.1f} points without {fix} and "
            f"{100 * after['swap_change']:+.1f} with it")
    cap = model[:1].upper() + model[1:]
    if m_word == s_word == "stays" and r_word == "same":
        return (f"Nothing moved: with {fix}, {model}'s mAP ({m_txt}), its on-person share ({s_txt}; chance "
                f"{100 * after['chance']:.0f} %) and the mAP change under the background swap "
                f"({100 * before['swap_change']:+.1f} → {100 * after['swap_change']:+.1f} points) all stay within the "
                f"tolerances ({_pts(points)} of mAP, {_pts(share_points)} of share). In this run {fix} does not change "
                f"what {model} matches on.")
    out = [f"With {fix}, {model}'s mAP {m_word} ({m_txt}).",
           f"{cap}'s on-person share {s_word} ({s_txt}; chance {100 * after['chance']:.0f} %, lift "
           f"{before['lift']:.2f} → {after['lift']:.2f})"
           + (": the response moves towards the person." if s_word == "rises" else
              ": the response moves off the person." if s_word == "falls" else
              ": the response does not move towards the person."),
           f"{swap[:1].upper() + swap[1:]}: "
           + ("the background moves its matches less." if r_word == "less" else
              "the background moves its matches more." if r_word == "more" else
              "the background's effect stays about the same.")]
    return " ".join(out)


def describe_paper_attention(lifts: Mapping[str, float], figure: str = "MGN's Fig. 5", strong: float = 1.25,
                             weak: float = 1.1) -> str:
    """Whether a paper's attention figure (every branch's response on the person) is reproduced, from measured
    lifts ``{branch: on-person share / chance}``: *reproduced* when every lift is at least ``strong``, *partly*
    when some are at least ``weak``, else *not reproduced* (a lift near 1 is a map that looks everywhere).
    ``strong`` and ``weak`` are chapter 02's reading of the Global branch's lift (section 7)."""
    if not lifts:
        raise ValueError("describe_paper_attention: no lifts to read")
    listed = ", ".join(f"{b} {v:.2f}" for b, v in lifts.items())
    on = [b for b, v in lifts.items() if v >= weak]
    if all(v >= strong for v in lifts.values()):
        verdict = "is reproduced in this run: every branch's response prefers the person"
    elif on:
        verb = "prefers" if len(on) == 1 else "prefer"
        verdict = f"is partly reproduced in this run: only {', '.join(on)} clearly {verb} the person"
    else:
        verdict = "is not reproduced in this run: no branch's response prefers the person clearly"
    return f"{figure} {verdict} (lifts {listed}; {strong:g} or more = on the body, below {weak:g} = about uniform)."
