"""Response maps, Grad-CAM for embeddings and rank lists (reidbook.viz.response / gradcam / ranklist)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from reidbook.models.mgn import build
from reidbook.viz import gradcam, ranklist, response

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build(5, 0.125).eval()


@pytest.fixture(scope="module")
def images():
    return torch.randn(2, 3, 64, 32, generator=torch.Generator().manual_seed(1))


# ------------------------------------------------------------------ response maps
def test_stripe_bounds_follow_adaptive_pooling():
    assert response.stripe_bounds(24, 3) == [(0, 8), (8, 16), (16, 24)]
    assert response.stripe_bounds(8, 3) == [(0, 3), (2, 6), (5, 8)]
    assert response.stripe_bounds(5, 1) == [(0, 5)]
    with pytest.raises(ValueError):
        response.stripe_bounds(4, 0)


def test_response_map_is_channel_l2_norm_normalised_per_map_and_per_stripe():
    fm = torch.zeros(1, 2, 4, 2)
    fm[0, 0] = torch.tensor([[3.0, 0.0], [0.0, 1.0], [2.0, 0.0], [0.0, 0.0]])
    fm[0, 1] = torch.tensor([[4.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    # norms: [[5, 0], [0, 1], [2, 0], [0, 1]]
    whole = response.response_map(fm)
    assert torch.allclose(whole[0], torch.tensor([[1.0, 0], [0, 0.2], [0.4, 0], [0, 0.2]]))
    halves = response.response_map(fm, parts=2)
    assert torch.allclose(halves[0], torch.tensor([[1.0, 0], [0, 0.2], [1.0, 0], [0, 0.5]]))
    up = response.response_map(fm, parts=2, size=(64, 32))
    assert up.shape == (1, 64, 32) and float(up.min()) >= 0 and float(up.max()) <= 1 + 1e-6


def test_branch_responses_and_figure(model, images):
    resp = response.branch_responses(model, images)
    assert list(resp) == ["global", "part2", "part3"]
    for v in resp.values():
        assert v.shape == (2, 64, 32) and v.min() >= 0 and v.max() <= 1 + 1e-6
    assert not model.training
    fig = response.plot_response_maps(model, images, row_titles=["a", "b"])
    assert len(fig.axes) == 2 * 4
    assert [fig.axes[i].get_title() for i in range(4)] == ["image", "Global", "Part-2", "Part-3"]
    with pytest.raises(TypeError, match="has no branches"):
        response.branch_responses(torch.nn.Conv2d(3, 3, 1), images)


def test_raw_branch_responses_are_the_unscaled_l2_norm(model, images):
    raw = response.branch_responses(model, images, normalise=False)
    with torch.no_grad():
        maps = model.branch_maps(images)
    shown = response.branch_responses(model, images)
    g = maps["global"].norm(p=2, dim=1).flatten(1)
    lo, hi = g.min(1).values.numpy()[:, None, None], g.max(1).values.numpy()[:, None, None]
    # bilinear upsampling is linear: the raw map is the displayed one scaled back by the map's range
    assert raw["global"].shape == (2, 64, 32)
    assert np.allclose(raw["global"], lo + (hi - lo) * shown["global"], rtol=1e-4, atol=1e-5)
    assert [response.branch_label(n) for n in raw] == ["Global", "Part-2", "Part-3"]


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_overlay_at_the_alpha_extremes(alpha):
    img = np.full((4, 2, 3), 0.3)
    heat = np.linspace(0, 1, 8).reshape(4, 2)
    out = response.overlay(img, heat, alpha=alpha)
    assert out.shape == (4, 2, 3)
    if alpha == 0:
        assert np.allclose(out, img)
    else:
        import matplotlib

        assert np.allclose(out, matplotlib.colormaps["jet"](heat)[..., :3])
    with pytest.raises(ValueError):
        response.overlay(img, heat, alpha=1.5)


def test_to_display_inverts_the_normalisation():
    rgb = torch.rand(1, 3, 4, 2)
    mean = torch.tensor(response.IMAGENET_MEAN)[None, :, None, None]
    std = torch.tensor(response.IMAGENET_STD)[None, :, None, None]
    out = response.to_display((rgb - mean) / std)
    assert out.shape == (1, 4, 2, 3) and np.allclose(out, rgb.permute(0, 2, 3, 1).numpy(), atol=1e-6)


# ------------------------------------------------------------------ Grad-CAM
def test_cosine_target_value():
    t = gradcam.CosineSimilarityTarget(torch.tensor([1.0, 0.0]))
    assert float(t(torch.tensor([2.0, 0.0]))) == pytest.approx(1.0)
    assert float(t(torch.tensor([0.0, 3.0]))) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="dims"):
        t(torch.ones(3))


def test_branch_wrapper_outputs_the_branch_slice(model, images):
    w = gradcam.BranchEmbedding(model, "part3")
    with torch.no_grad():
        assert torch.allclose(w(images), model(images)[:, model.embedding_slices()["part3"]], atol=1e-6)
    assert w.target_layer() is model.branches["part3"].layer4[-1]
    with pytest.raises(KeyError, match="no branch"):
        gradcam.BranchEmbedding(model, "part9")
    with pytest.raises(TypeError, match="has no branches"):
        gradcam.BranchEmbedding(torch.nn.Conv2d(3, 3, 1), "part3")


def test_branch_cams_shapes_range_and_mode(model, images):
    with torch.no_grad():
        refs = model(torch.randn(2, 3, 64, 32, generator=torch.Generator().manual_seed(2)))
    cams = gradcam.branch_cams(model, images, refs)
    assert list(cams) == ["global", "part2", "part3"]
    for v in cams.values():
        assert v.shape == (2, 64, 32) and v.min() >= 0 and v.max() <= 1 + 1e-6 and v.max() > 0
    assert not model.training  # the model's mode is left as it was
    one = gradcam.branch_cams(model, images, refs[0], branches=["global"])
    assert list(one) == ["global"] and one["global"].shape == (2, 64, 32)
    fig = gradcam.plot_branch_cams(model, images, refs)
    assert len(fig.axes) == 2 * 4
    with pytest.raises(ValueError, match="references"):
        gradcam.embedding_cam(model, images, refs[:1].expand(3, -1), model.branches["global"].layer4[-1])


# ------------------------------------------------------------------ rank lists
def _protocol_case():
    # 1 query (pid 1, cam 0); gallery: same shot (pid 1 cam 0) nearest, then others
    d = np.array([[0.1, 0.5, 0.2, 0.2, 0.9, 0.3]])
    g_pids = np.array([1, 1, 2, 3, 1, 4])
    g_cams = np.array([0, 1, 1, 0, 2, 0])
    return d, np.array([1]), g_pids, np.array([0]), g_cams


def test_rank_list_drops_same_shot_and_breaks_ties_by_index():
    d, qp, gp, qc, gc = _protocol_case()
    rl = ranklist.rank_list(d, qp, gp, qc, gc, query=0, topk=10)
    assert rl["removed"] == 1
    assert rl["index"].tolist() == [2, 3, 5, 1, 4]  # 0 removed (same pid and cam); 2 before 3 on the tie
    assert rl["match"].tolist() == [False, False, False, True, True]
    assert np.allclose(rl["distance"], [0.2, 0.2, 0.3, 0.5, 0.9])
    assert ranklist.rank_list(d, qp, gp, qc, gc, 0, topk=2)["index"].tolist() == [2, 3]
    with pytest.raises(IndexError):
        ranklist.rank_list(d, qp, gp, qc, gc, query=1)
    with pytest.raises(ValueError, match="gallery"):
        ranklist.rank_list(d, qp, gp[:3], qc, gc, 0)


@pytest.mark.parametrize("topk", [1, 10])
def test_plot_ranklist_colours_matches(tmp_path, topk):
    from matplotlib.colors import to_hex
    from PIL import Image

    d, qp, gp, qc, gc = _protocol_case()
    paths = []
    for i in range(7):
        p = tmp_path / f"{i}.jpg"
        Image.new("RGB", (16, 32), (30 * i, 0, 0)).save(p)
        paths.append(str(p))
    q_items = [(paths[6], 1, 0)]
    g_items = [(paths[i], int(gp[i]), int(gc[i])) for i in range(6)]
    fig = ranklist.plot_ranklist(d, q_items, g_items, [0], topk=topk, show_distance=True)
    axes = fig.axes
    assert len(axes) == topk + 1
    colours = [to_hex(ax.spines["top"].get_edgecolor()) for ax in axes[1:6]]
    expected = [ranklist.MISMATCH_COLOUR] * 3 + [ranklist.MATCH_COLOUR] * 2
    assert colours == expected[:topk]
    assert "cam 1" in axes[0].get_title()


# ------------------------------------------------------------------ architecture diagram
def test_architecture_layout_is_read_from_the_model():
    from reidbook.viz.architecture import mgn_layout, plot_mgn_architecture

    m = build(5, 0.125, variant="mgn_wo_tp")
    lay = mgn_layout(m, (384, 128))
    assert [b["map"][1:] for b in lay["branches"]] == [(12, 4), (24, 8), (24, 8)]
    assert [len(b["features"]) for b in lay["branches"]] == [1, 3, 4]
    assert lay["feature_dim"] == m.feature_dim and lay["trunk"] == (m.trunk.layer3[0].conv3.out_channels, 24, 8)
    # w/o TP: softmax on the reduced global feature, no triplet anywhere
    assert all("triplet" not in f["losses"] for b in lay["branches"] for f in b["features"])
    assert lay["branches"][0]["features"][0]["losses"] == [f"softmax on f_g ({m.reduce_dim})"]
    lay = mgn_layout(build(5, 0.125), (64, 32))
    assert lay["branches"][0]["features"][0]["losses"][1] == "triplet"
    fig = plot_mgn_architecture(m, (64, 32))
    assert "8 reduced features" in fig.axes[0].get_title()
