"""Tests for reidbook.eval.rerank against a direct, dense transcription of the original algorithm.

``reference_re_ranking`` follows Zhong et al.'s public python implementation step by step (dense
N×N arrays, an argsort of every row, Python loops), with a stable argsort so that ties are broken
by index as the spec says. It is slow and memory-hungry, so it only runs on small cases here;
``benchmarks/bench_rerank.py`` imports it for the side-by-side timing.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from reidbook.eval import compute_distmat, re_ranking, re_ranking_features


def reference_re_ranking(q_g_dist, q_q_dist, g_g_dist, k1=20, k2=6, lambda_value=0.3):
    original_dist = np.concatenate([np.concatenate([q_q_dist, q_g_dist], axis=1),
                                    np.concatenate([q_g_dist.T, g_g_dist], axis=1)], axis=0)
    original_dist = np.power(original_dist, 2).astype(np.float32)
    original_dist = np.transpose(1.0 * original_dist / np.max(original_dist, axis=0))
    V = np.zeros_like(original_dist).astype(np.float32)
    initial_rank = np.argsort(original_dist, kind="stable").astype(np.int32)
    query_num = q_g_dist.shape[0]
    all_num = original_dist.shape[0]
    for i in range(all_num):
        forward_k_neigh_index = initial_rank[i, :k1 + 1]
        backward_k_neigh_index = initial_rank[forward_k_neigh_index, :k1 + 1]
        fi = np.where(backward_k_neigh_index == i)[0]
        k_reciprocal_index = forward_k_neigh_index[fi]
        k_reciprocal_expansion_index = k_reciprocal_index
        for j in range(len(k_reciprocal_index)):
            candidate = k_reciprocal_index[j]
            kh = int(np.around(k1 / 2.0))
            candidate_forward = initial_rank[candidate, :kh + 1]
            candidate_backward = initial_rank[candidate_forward, :kh + 1]
            fi_candidate = np.where(candidate_backward == candidate)[0]
            candidate_k_reciprocal_index = candidate_forward[fi_candidate]
            if len(np.intersect1d(candidate_k_reciprocal_index, k_reciprocal_index)) > \
                    2.0 / 3 * len(candidate_k_reciprocal_index):
                k_reciprocal_expansion_index = np.append(k_reciprocal_expansion_index, candidate_k_reciprocal_index)
        k_reciprocal_expansion_index = np.unique(k_reciprocal_expansion_index)
        weight = np.exp(-original_dist[i, k_reciprocal_expansion_index])
        V[i, k_reciprocal_expansion_index] = 1.0 * weight / np.sum(weight)
    original_dist = original_dist[:query_num]
    if k2 != 1:
        V_qe = np.zeros_like(V, dtype=np.float32)
        for i in range(all_num):
            V_qe[i, :] = np.mean(V[initial_rank[i, :k2], :], axis=0)
        V = V_qe
    invIndex = [np.where(V[:, i] != 0)[0] for i in range(all_num)]
    jaccard_dist = np.zeros_like(original_dist, dtype=np.float32)
    for i in range(query_num):
        temp_min = np.zeros(shape=[1, all_num], dtype=np.float32)
        indNonZero = np.where(V[i, :] != 0)[0]
        indImages = [invIndex[ind] for ind in indNonZero]
        for j in range(len(indNonZero)):
            temp_min[0, indImages[j]] = temp_min[0, indImages[j]] + \
                np.minimum(V[i, indNonZero[j]], V[indImages[j], indNonZero[j]])
        jaccard_dist[i] = 1 - temp_min / (2.0 - temp_min)
    final_dist = jaccard_dist * (1 - lambda_value) + original_dist * lambda_value
    return final_dist[:query_num, query_num:]


def clustered_features(rng, n_ids, per_id, dim=16, noise=0.6):
    centres = rng.normal(size=(n_ids, dim))
    pids = np.repeat(np.arange(n_ids), per_id)
    f = centres[pids] + noise * rng.normal(size=(len(pids), dim))
    return f.astype(np.float32), pids


def split(rng, f, nq):
    perm = rng.permutation(len(f))
    return f[perm[:nq]], f[perm[nq:]]


@pytest.mark.parametrize("seed,nq,ng,k1,k2,lam", [
    (0, 15, 60, 20, 6, 0.3),
    (1, 10, 40, 5, 1, 0.0),     # k1/2 = 2.5 rounds to 2 (half to even); no query expansion
    (2, 20, 80, 7, 3, 1.0),     # λ = 1: only the normalised squared distance
    (3, 6, 10, 20, 6, 0.3),     # N = 16 < k1 + 1: neighbourhoods hold everything
])
def test_matches_reference(seed, nq, ng, k1, k2, lam):
    rng = np.random.default_rng(seed)
    f, _ = clustered_features(rng, 12, 8)
    qf, gf = split(rng, f, nq)
    gf = gf[:ng]
    q_g, q_q, g_g = (compute_distmat(a, b) for a, b in ((qf, gf), (qf, qf), (gf, gf)))
    ref = reference_re_ranking(q_g, q_q, g_g, k1, k2, lam)
    out = re_ranking(q_g, q_q, g_g, k1=k1, k2=k2, lambda_value=lam)
    assert out.dtype == np.float32 and out.shape == ref.shape
    np.testing.assert_allclose(out, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("chunk", [5, 256])
def test_sampled_threshold_neighbour_path(monkeypatch, chunk):
    # rows longer than _DENSE_ROW_LIMIT take the sampled-threshold neighbour search; force it on a
    # small case, with heavy ties (rounded distances) to exercise the index tie-break.
    import reidbook.eval.rerank as rr
    monkeypatch.setattr(rr, "_DENSE_ROW_LIMIT", 16)
    monkeypatch.setattr(rr, "_SAMPLE_MIN", 16)                 # k1=4: the threshold comes from every 3rd item
    rng = np.random.default_rng(5)
    f, _ = clustered_features(rng, 25, 10, dim=8, noise=0.5)
    qf, gf = split(rng, f, 40)
    q_g, q_q, g_g = (np.round(compute_distmat(a, b), 1) for a, b in ((qf, gf), (qf, qf), (gf, gf)))
    out = re_ranking(q_g, q_q, g_g, k1=20, k2=6, lambda_value=0.3, rows_per_chunk=chunk)
    ref = reference_re_ranking(q_g, q_q, g_g, 20, 6, 0.3)
    np.testing.assert_allclose(out, ref, atol=1e-5, rtol=0)
    out = re_ranking(q_g, q_q, g_g, k1=4, k2=2, lambda_value=0.3, rows_per_chunk=chunk)
    np.testing.assert_allclose(out, reference_re_ranking(q_g, q_q, g_g, 4, 2, 0.3), atol=1e-5, rtol=0)


def test_torch_inputs_and_float64():
    rng = np.random.default_rng(4)
    f, _ = clustered_features(rng, 8, 6)
    qf, gf = split(rng, f, 10)
    q_g, q_q, g_g = (compute_distmat(a, b).astype(np.float64) for a, b in ((qf, gf), (qf, qf), (gf, gf)))
    ref = reference_re_ranking(q_g, q_q, g_g)
    out = re_ranking(torch.from_numpy(q_g), torch.from_numpy(q_q), torch.from_numpy(g_g))
    np.testing.assert_allclose(out, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_features_variant_matches_distance_variant(metric):
    rng = np.random.default_rng(6)
    f, _ = clustered_features(rng, 10, 8, dim=32)
    qf, gf = split(rng, f, 16)
    dist = re_ranking(compute_distmat(qf, gf, metric), compute_distmat(qf, qf, metric),
                      compute_distmat(gf, gf, metric))
    feat = re_ranking_features(torch.from_numpy(qf), gf, metric=metric, rows_per_chunk=7)
    np.testing.assert_allclose(feat, dist, atol=1e-4, rtol=0)


def test_re_ranking_helps_on_clustered_data():
    from reidbook.eval import evaluate_rank
    rng = np.random.default_rng(8)
    f, pids = clustered_features(rng, 30, 8, dim=16, noise=1.1)
    perm = rng.permutation(len(f))
    qi, gi = perm[:40], perm[40:]
    cams = rng.integers(0, 4, len(f))
    qf, gf = f[qi], f[gi]
    q_g = compute_distmat(qf, gf)
    before = evaluate_rank(q_g, pids[qi], pids[gi], cams[qi], cams[gi]).mAP
    after = evaluate_rank(re_ranking(q_g, compute_distmat(qf, qf), compute_distmat(gf, gf)),
                          pids[qi], pids[gi], cams[qi], cams[gi]).mAP
    assert after > before


def test_bad_inputs():
    q_g, q_q, g_g = np.ones((3, 5)), np.ones((3, 3)), np.ones((5, 5))
    with pytest.raises(ValueError, match="g_g"):
        re_ranking(q_g, q_q, np.ones((4, 4)))
    with pytest.raises(ValueError, match="k1"):
        re_ranking(q_g, q_q, g_g, k1=0)
    with pytest.raises(ValueError, match="lambda_value"):
        re_ranking(q_g, q_q, g_g, lambda_value=1.5)
    with pytest.raises(ValueError, match="maximum"):
        re_ranking(np.zeros((3, 5)), np.zeros((3, 3)), np.zeros((5, 5)))
    with pytest.raises(ValueError, match="same D"):
        re_ranking_features(np.ones((3, 4)), np.ones((5, 3)))
    with pytest.raises(ValueError, match="metric"):
        re_ranking_features(np.ones((3, 4)), np.ones((5, 4)), metric="l1")
