"""The MGN paper's tables as stored (reidbook.models.mgn_paper): every variant the course builds has its row,
the numbers are consistent with themselves, and the claims registry and the capstone quote the same values."""
from __future__ import annotations

import pytest

from reidbook.models.mgn import VARIANTS
from reidbook.models.mgn_paper import BRANCH_ROWS, TABLE2, TABLE5, VARIANT_ROWS, paper_table, table5_row


def test_every_variant_and_branch_has_its_table5_row():
    assert set(VARIANT_ROWS) == set(VARIANTS)
    assert all(VARIANT_ROWS[v] in TABLE5 for v in VARIANTS)
    assert set(BRANCH_ROWS) == {s.name for s in VARIANTS["mgn"]["branches"]}
    assert all(row in TABLE5 for row in BRANCH_ROWS.values())
    assert len(TABLE5) == 15                      # the paper's Table 5 has 15 rows


def test_rows_are_consistent_cmc_and_map():
    for row, (r1, r5, r10, m) in TABLE5.items():
        assert r1 <= r5 <= r10 <= 100, row        # a CMC curve never falls
        assert 0 < m < r1, row                    # on Market-1501 every row's mAP is below its Rank-1
    for mode, (r1, m) in TABLE2.items():
        assert 0 < m < r1 <= 100, mode
    # MGN's Table 2 single-query row is its Table 5 row; re-ranking and multi-query only add
    assert TABLE2["SQ"] == (TABLE5["MGN"][0], TABLE5["MGN"][3])
    assert TABLE2["SQ + RK"][1] > TABLE2["SQ"][1] and TABLE2["MQ"][1] > TABLE2["SQ"][1]


def test_lookups_and_tables():
    assert table5_row("global") == table5_row("ResNet-50+TP") == dict(zip(("Rank-1", "Rank-5", "Rank-10", "mAP"),
                                                                          TABLE5["ResNet-50+TP"]))
    with pytest.raises(KeyError, match="no row 'part9'"):
        table5_row("part9")
    assert paper_table(5).shape == (15, 4) and paper_table(2).shape == (4, 2)
    assert paper_table(5).loc["MGN", "mAP"] == 86.9
    with pytest.raises(ValueError, match="2 and 5"):
        paper_table(3)


def test_claims_and_capstone_quote_the_same_numbers():
    from reidbook.claims import CLAIMS
    from reidbook.compare import PAPER

    checked = 0
    for claim in CLAIMS:
        if claim.id == "mgn.vs_baseline":       # the paper's own comparison: MGN w/o TP vs ResNet-50 (softmax)
            assert claim.paper_numbers["values"] == [TABLE5["MGN w/o TP"][3], TABLE5["ResNet-50"][3]]
            checked += 1
            continue
        if claim.paper != "mgn" or claim.paper_numbers.get("source") != "MGN Table 5, Market-1501 mAP (%)":
            continue
        for config, value in zip(claim.configs, claim.paper_numbers["values"]):
            if config.measure == "ensemble":
                want = TABLE5["G+P2+P3 (Single)"][3]
            else:
                want = table5_row(config.overrides.get("model_options", {}).get("variant", "mgn"))["mAP"]
            assert value == want, (claim.id, config.label)
            checked += 1
    assert checked >= 8
    assert (PAPER["mgn"]["rank1"], PAPER["mgn"]["mAP"]) == TABLE2["SQ"]
