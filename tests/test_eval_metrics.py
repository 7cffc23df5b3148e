"""Tests for reidbook.eval.metrics: the fast evaluator against a straightforward per-query reference.

``reference_evaluate`` below is the plain textbook implementation of the protocol in
``shared/specs/evaluation.md`` (a stable argsort of every row). ``benchmarks/bench_eval.py``
imports it to measure the speed ratio.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from reidbook.eval import RankResult, compute_distmat, evaluate_cuhk03_classic, evaluate_rank, pool_multi_query


def reference_evaluate(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50):
    """Per-query numpy reference: returns (cmc, mAP, mINP, mAP_official, all_AP, valid)."""
    distmat = np.asarray(distmat)
    all_cmc, all_ap, all_ap_off, all_inp = [], [], [], []
    valid = np.zeros(len(q_pids), bool)
    for q in range(distmat.shape[0]):
        order = np.argsort(distmat[q], kind="stable")            # ties: lower gallery index first
        junk = (g_pids[order] == q_pids[q]) & (g_camids[order] == q_camids[q])
        rel = (g_pids[order] == q_pids[q])[~junk].astype(np.int64)
        if not rel.any():
            continue
        valid[q] = True
        cum = rel.cumsum()
        cmc = (cum > 0).astype(np.float64)
        if len(cmc) < max_rank:                                # carry the last value on
            cmc = np.concatenate([cmc, np.full(max_rank - len(cmc), cmc[-1])])
        all_cmc.append(cmc[:max_rank])
        n = rel.sum()
        prec = cum / np.arange(1, len(rel) + 1)
        all_ap.append((prec * rel).sum() / n)
        prev = np.concatenate([[1.0], prec[:-1]])              # P@(k-1), P@0 = 1
        all_ap_off.append((((prev + prec) / 2) * rel).sum() / n)
        last = np.flatnonzero(rel)[-1] + 1
        all_inp.append(n / last)
    return (np.mean(all_cmc, 0), np.mean(all_ap), np.mean(all_inp), np.mean(all_ap_off),
            np.array(all_ap), valid)


def random_case(rng, nq, ng, npids=20, ncams=4, ties=False, dtype=np.float32):
    q_pids = rng.integers(1, npids, nq)
    g_pids = rng.integers(0, npids, ng)                        # pid 0 = distractors
    q_cams = rng.integers(0, ncams, nq)
    g_cams = rng.integers(0, ncams, ng)
    if ties:
        d = rng.integers(0, 5, (nq, ng)).astype(dtype)          # many exact ties
    else:
        d = rng.random((nq, ng)).astype(dtype)
    return d, q_pids, g_pids, q_cams, g_cams


def assert_same(res: RankResult, ref, max_rank):
    cmc, mAP, mINP, mAP_off, all_ap, valid = ref
    np.testing.assert_array_equal(res.valid, valid)
    np.testing.assert_allclose(res.cmc, cmc[:max_rank], atol=1e-12)
    np.testing.assert_allclose(res.all_AP, all_ap, atol=1e-12)
    assert res.mAP == pytest.approx(mAP, abs=1e-12)
    assert res.mINP == pytest.approx(mINP, abs=1e-12)
    assert res.mAP_official == pytest.approx(mAP_off, abs=1e-12)


@pytest.mark.parametrize("seed,nq,ng,ties,dtype", [
    (0, 30, 200, False, np.float32),
    (1, 40, 150, True, np.float32),
    (2, 25, 7, False, np.float64),      # gallery shorter than max_rank
    (3, 50, 60, True, np.float64),
    (4, 10, 1000, False, np.float32),
])
def test_matches_reference_random(seed, nq, ng, ties, dtype):
    rng = np.random.default_rng(seed)
    case = random_case(rng, nq, ng, ties=ties, dtype=dtype)
    res = evaluate_rank(*case, max_rank=20)
    assert_same(res, reference_evaluate(*case, max_rank=20), 20)


@pytest.mark.parametrize("ties", [False, True])
def test_matches_reference_in_several_chunks_with_infinities(monkeypatch, ties):
    import reidbook.eval.metrics as m
    monkeypatch.setattr(m, "_CHUNK_ELEMS", 500)                 # force ~10-row chunks
    rng = np.random.default_rng(7)
    case = random_case(rng, 64, 50, npids=8, ties=ties, dtype=np.float64)
    case[0][3, :] = np.inf                                    # infinite distances are ordinary values
    case[0][5, ::3] = -np.inf
    case[0][6, :] = -0.0                                      # -0.0 == 0.0: a tie, broken by index
    case[0][6, ::2] = 0.0
    assert_same(evaluate_rank(*case, max_rank=10), reference_evaluate(*case, max_rank=10), 10)


def test_float64_values_that_collide_in_float32():
    # distinct in float64, equal once rounded to float32: order must follow the float64 values
    g_pids = np.array([1, 2, 1, 2, 3])
    g_cams = np.ones(5, int)
    base = 0.5
    d = np.array([[base + 3e-12, base + 2e-12, base + 1e-12, base, 1.0]])
    res = evaluate_rank(d, np.array([1]), g_pids, np.array([0]), g_cams, max_rank=5)
    ref = reference_evaluate(d, np.array([1]), g_pids, np.array([0]), g_cams, max_rank=5)
    assert_same(res, ref, 5)
    assert res.first_hit[0] == 2


def test_hand_made_example():
    # gallery:   0      1      2      3      4      5
    g_pids = np.array([1, 2, 1, 1, 0, 1])
    g_cams = np.array([0, 1, 1, 0, 1, 2])
    q_pids, q_cams = np.array([1]), np.array([0])
    # gallery items 0 and 3 are same pid + same cam -> removed; hits are 2 and 5.
    d = np.array([[0.0, 0.1, 0.3, 0.05, 0.2, 0.4]])
    res = evaluate_rank(d, q_pids, g_pids, q_cams, g_cams, max_rank=5)
    # filtered order: 1 (0.1, miss), 4 (0.2, distractor), 2 (0.3, hit), 5 (0.4, hit)
    np.testing.assert_array_equal(res.cmc, [0, 0, 1, 1, 1])
    assert res.mAP == pytest.approx((1 / 3 + 2 / 4) / 2)
    assert res.mAP_official == pytest.approx(((0 / 2 + 1 / 3) / 2 + (1 / 3 + 2 / 4) / 2) / 2)
    assert res.mINP == pytest.approx(2 / 4)
    assert res.first_hit[0] == 3 and res.num_hits[0] == 2
    assert res.rank(3) == 1.0 and res.rank(2) == 0.0


def test_ties_broken_by_gallery_index():
    g_pids = np.array([2, 1, 2, 1])
    g_cams = np.array([1, 1, 1, 1])
    d = np.zeros((1, 4))                                      # all tied
    res = evaluate_rank(d, np.array([1]), g_pids, np.array([0]), g_cams, max_rank=4)
    # order = 0 (miss), 1 (hit), 2 (miss), 3 (hit)
    np.testing.assert_array_equal(res.cmc, [0, 1, 1, 1])
    assert res.mAP == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert res.mINP == pytest.approx(2 / 4)


def test_invalid_queries_skipped_and_official_below_common():
    g_pids = np.array([1, 1, 2, 3])
    g_cams = np.array([0, 1, 0, 1])
    q_pids = np.array([1, 4, 2])                               # pid 4 absent; pid 2 only in same cam
    q_cams = np.array([0, 0, 0])
    d = np.array([[0.5, 0.2, 0.1, 0.3], [0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]])
    res = evaluate_rank(d, q_pids, g_pids, q_cams, g_cams, max_rank=3)
    np.testing.assert_array_equal(res.valid, [True, False, False])
    assert res.num_valid == 1 and len(res.all_AP) == 1
    # query 0: gallery 0 is junk; order 2 (miss), 1 (hit) -> rank 2
    assert res.mAP == pytest.approx(0.5)
    assert res.mAP_official <= res.mAP


def test_perfect_ranking_gives_one():
    rng = np.random.default_rng(0)
    g_pids = np.repeat(np.arange(1, 11), 3)
    g_cams = np.tile([1, 2, 3], 10)
    q_pids = np.arange(1, 11)
    q_cams = np.zeros(10, int)
    d = (q_pids[:, None] != g_pids[None, :]).astype(np.float32) + rng.random((10, 30)) * 0.1
    res = evaluate_rank(d, q_pids, g_pids, q_cams, g_cams)
    assert res.mAP == pytest.approx(1) and res.mINP == pytest.approx(1) and res.rank(1) == 1
    assert res.mAP_official == pytest.approx(1)


def test_torch_inputs_and_bad_shapes():
    rng = np.random.default_rng(1)
    d, qp, gp, qc, gc = random_case(rng, 5, 30)
    res = evaluate_rank(torch.from_numpy(d), torch.from_numpy(qp), gp, qc, torch.from_numpy(gc))
    assert_same(res, reference_evaluate(d, qp, gp, qc, gc), 50)
    with pytest.raises(ValueError, match="distmat must be 2-D"):
        evaluate_rank(d[0], qp, gp, qc, gc)
    with pytest.raises(ValueError, match="g_pids must be 1-D with 30"):
        evaluate_rank(d, qp, gp[:-1], qc, gc)
    with pytest.raises(ValueError, match="q_camids must be 1-D with 5"):
        evaluate_rank(d, qp, gp, qc[:3], gc)
    with pytest.raises(ValueError, match="max_rank"):
        evaluate_rank(d, qp, gp, qc, gc, max_rank=0)
    bad = d.copy()
    bad[2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        evaluate_rank(bad, qp, gp, qc, gc)
    with pytest.raises(ValueError, match="no query has a true match"):
        evaluate_rank(d, qp + 100, gp, qc, gc)


def reference_cuhk03_cmc(distmat, q_pids, g_pids, q_camids, g_camids, max_rank, num_repeats, seed):
    """Single-gallery-shot CMC by brute force, drawing the same random keys as the implementation."""
    rng = np.random.default_rng(seed)
    out = []
    for q in range(distmat.shape[0]):
        keep = ~((g_pids == q_pids[q]) & (g_camids == q_camids[q]))
        if not (g_pids[keep] == q_pids[q]).any():
            continue
        idx = np.flatnonzero(keep)
        pids = g_pids[idx]
        uniq, inv = np.unique(pids, return_inverse=True)
        cmc = np.zeros(max_rank)
        for _ in range(num_repeats):
            key = rng.random(len(idx))
            chosen = [idx[np.flatnonzero(inv == u)[np.argmin(key[inv == u])]] for u in range(len(uniq))]
            chosen = np.array(sorted(chosen))                  # gallery order, then stable sort
            order = chosen[np.argsort(distmat[q, chosen], kind="stable")]
            rank = np.flatnonzero(g_pids[order] == q_pids[q])[0] + 1
            cmc += rank <= np.arange(1, max_rank + 1)
        out.append(cmc / num_repeats)
    return np.mean(out, 0)


def test_cuhk03_classic():
    rng = np.random.default_rng(3)
    d, qp, gp, qc, gc = random_case(rng, 12, 80, npids=10, ties=True)
    res = evaluate_cuhk03_classic(d, qp, gp, qc, gc, max_rank=10, num_repeats=4, seed=5)
    ref = reference_cuhk03_cmc(d, qp, gp, qc, gc, 10, 4, 5)
    np.testing.assert_allclose(res.cmc, ref, atol=1e-12)
    full = evaluate_rank(d, qp, gp, qc, gc, max_rank=10)
    assert res.mAP == full.mAP                                  # AP uses the full list
    # with one image per identity in the gallery the sampling changes nothing
    first = np.unique(gp, return_index=True)[1]
    single = evaluate_cuhk03_classic(d[:, first], qp, gp[first], qc, gc[first], max_rank=10, num_repeats=3)
    np.testing.assert_allclose(single.cmc, evaluate_rank(d[:, first], qp, gp[first], qc, gc[first], 10).cmc)
    again = evaluate_cuhk03_classic(d, qp, gp, qc, gc, max_rank=10, num_repeats=4, seed=5)
    np.testing.assert_array_equal(res.cmc, again.cmc)           # seeded


def test_pool_multi_query():
    f = torch.tensor([[1.0, 0.0], [3.0, 2.0], [5.0, 5.0], [0.0, 1.0]])
    pids = np.array([1, 1, 2, 1])
    cams = np.array([0, 0, 0, 1])
    pf, pp, pc = pool_multi_query(f, pids, cams, "mean")
    assert isinstance(pf, torch.Tensor)
    np.testing.assert_array_equal(pp, [1, 1, 2])
    np.testing.assert_array_equal(pc, [0, 1, 0])
    np.testing.assert_allclose(pf.numpy(), [[2, 1], [0, 1], [5, 5]])
    mf, _, _ = pool_multi_query(f.numpy(), pids, cams, "max", per_query=True)
    np.testing.assert_allclose(mf, [[3, 2], [3, 2], [5, 5], [0, 1]])
    with pytest.raises(ValueError, match="method"):
        pool_multi_query(f, pids, cams, "median")


def test_distmat_metrics():
    rng = np.random.default_rng(0)
    qf = rng.normal(size=(7, 5)).astype(np.float32)
    gf = rng.normal(size=(11, 5)).astype(np.float32)
    diff = qf[:, None, :].astype(np.float64) - gf[None, :, :]
    sq = (diff ** 2).sum(-1)
    for metric, ref in (("sqeuclidean", sq), ("euclidean", np.sqrt(sq))):
        out = compute_distmat(torch.from_numpy(qf), gf, metric)
        assert out.dtype == np.float32 and out.shape == (7, 11)
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
    cos = 1 - (qf / np.linalg.norm(qf, axis=1, keepdims=True)) @ (gf / np.linalg.norm(gf, axis=1, keepdims=True)).T
    np.testing.assert_allclose(compute_distmat(qf, gf, "cosine"), cos, atol=1e-5)
    np.testing.assert_allclose(compute_distmat(qf, qf, "euclidean").diagonal(), 0, atol=2e-3)
    with pytest.raises(ValueError, match="metric"):
        compute_distmat(qf, gf, "manhattan")
    with pytest.raises(ValueError, match="feature dimension"):
        compute_distmat(qf, gf[:, :4])


# ----------------------------------------------------------------------------- extraction, evaluate
class _TinyEmbed(torch.nn.Module):
    """A deterministic, left-right *asymmetric* embedding so that flip averaging is visible."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(3 * 8 * 4, 5)
        self.train_out = {"logits": None}

    def forward(self, x):
        f = self.fc(x.flatten(1))
        return f if not self.training else {"logits": f}


def _tiny_loader(n=10, batch_size=4, shuffle=False):
    from torch.utils.data import DataLoader, TensorDataset

    g = torch.Generator().manual_seed(0)
    imgs = torch.rand(n, 3, 8, 4, generator=g)
    ds = TensorDataset(imgs, torch.arange(n) % 3, torch.arange(n) % 2, torch.arange(n))
    return imgs, DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=g)


def test_extract_features_flip_order_and_mode():
    from reidbook.engine.extract import extract_features

    model = _TinyEmbed()
    model.train()
    imgs, loader = _tiny_loader(shuffle=True)
    feats, pids, cams = extract_features(model, loader, device="cpu", flip=True)
    assert model.training                                       # mode restored
    assert feats.dtype == torch.float32 and feats.shape == (10, 5)
    with torch.no_grad():
        model.eval()
        ref = (model(imgs) + model(torch.flip(imgs, dims=[3]))) / 2
    torch.testing.assert_close(feats, ref)                      # dataset order despite shuffling
    np.testing.assert_array_equal(pids, np.arange(10) % 3)
    np.testing.assert_array_equal(cams, np.arange(10) % 2)
    nf, _, _ = extract_features(model, loader, device="cpu", flip=False, normalize=True)
    torch.testing.assert_close(nf, torch.nn.functional.normalize(model(imgs).detach(), dim=1))
    assert not model.training                                   # eval stays eval


def test_extract_features_errors():
    from reidbook.engine.extract import extract_features

    class Bad(torch.nn.Module):
        def forward(self, x):
            return {"emb": x}

    _, loader = _tiny_loader()
    with pytest.raises(TypeError, match="test-time embedding"):
        extract_features(Bad(), loader, device="cpu")

    class Nan(torch.nn.Module):
        def forward(self, x):
            return torch.full((x.shape[0], 2), float("nan"))

    with pytest.raises(ValueError, match="non-finite"):
        extract_features(Nan(), loader, device="cpu")


def test_evaluate_model_on_tiny_image_folder(tmp_path):
    from types import SimpleNamespace

    from PIL import Image

    from reidbook.eval import evaluate_features, evaluate_model

    rng = np.random.default_rng(0)
    colours = rng.integers(0, 255, (4, 3))                      # identity = a colour
    items = {"query": [], "gallery": []}
    for split, cams in (("query", [0]), ("gallery", [1, 2])):
        for pid in range(1, 5):
            for cam in cams:
                arr = np.clip(colours[pid - 1] + rng.normal(0, 20, (16, 8, 3)), 0, 255).astype(np.uint8)
                path = tmp_path / f"{pid:04d}_c{cam}_{split}.png"
                Image.fromarray(arr).save(path)
                items[split].append((str(path), pid, cam))
    ds = SimpleNamespace(query=items["query"], gallery=items["gallery"], root=tmp_path)

    class MeanColour(torch.nn.Module):
        def forward(self, x):
            return x.mean(dim=(2, 3))

    out = evaluate_model(MeanColour(), ds, height=16, width=8, device="cpu", batch_size=3)
    assert out["mAP"] == pytest.approx(1.0) and out["rank1"] == 1.0
    assert out["num_query"] == 4 and out["num_gallery"] == 8
    assert {"mINP", "mAP_official", "rank5", "rank10", "result"} <= set(out)
    rr = evaluate_model(MeanColour(), ds, 16, 8, device="cpu", rerank=True, metric="cosine")
    assert 0 <= rr["mAP"] <= 1
    qf = torch.rand(6, 4)
    res = evaluate_features(qf, qf.clone(), np.arange(6), np.arange(6), np.zeros(6), np.ones(6))
    assert res["mAP"] == 1.0
    with pytest.raises(TypeError, match="query"):
        evaluate_model(MeanColour(), SimpleNamespace(gallery=[]), 16, 8)


def test_scalar_metrics_keeps_numbers_only():
    import numpy as np

    from reidbook.eval import scalar_metrics

    out = scalar_metrics({"mAP": np.float32(0.5), "rank1": 1, "flag": True, "result": object(), "distmat": np.zeros(2)})
    assert out == {"mAP": 0.5, "rank1": 1.0} and all(type(v) is float for v in out.values())
