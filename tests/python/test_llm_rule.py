"""The LLM audit's statistical rule, re-implemented from its specification
(`docs/llm-audit.md`) and run over the committed calibration corpus
(`tests/data/llm-calibration.json`): the threshold and decision of every
stored answer must be what the Rust implementation recorded, every honest
answer passes, and the exact binomial tail (computed another way, with
logarithms and `math.comb`) agrees with the threshold."""

import json
import math
import pathlib

import pytest

from llm_rule_ref import decide, threshold

CORPUS = pathlib.Path(__file__).resolve().parents[1] / "data" / "llm-calibration.json"
@pytest.fixture(scope="module")
def corpus():
    return json.loads(CORPUS.read_text())


def test_every_stored_decision_is_the_specs(corpus):
    rule = corpus["rule"]
    tolerance = corpus["tolerance"]
    honest = 0
    for a in corpus["answers"]:
        scores = [0.0] * len(a["tokens"])
        for i, s in a["scores"]:
            scores[i] = s
        got = decide(scores, tolerance, rule["exceed_rate"], rule["hard"], rule["alpha"])
        assert got == a["decision"], (a["variant"], a["prompt"], got, a["decision"])
        if a["kind"] == "honest":
            honest += 1
            assert got["pass"], (a["variant"], a["prompt"])
    assert honest == 80


def log_tail(n, p, c):
    """P[Binomial(n, p) >= c], by logarithms."""
    return sum(
        math.exp(math.log(math.comb(n, k)) + k * math.log(p) + (n - k) * math.log1p(-p))
        for k in range(c, n + 1)
    )


@pytest.mark.parametrize("n,p", [(16, 0.025), (64, 0.025), (128, 0.025), (128, 0.02), (512, 0.01), (2048, 0.05)])
def test_the_threshold_is_the_smallest_count_within_alpha(n, p):
    alpha = 1e-6
    c = threshold(n, p, alpha)
    assert log_tail(n, p, c) <= alpha * (1 + 1e-9)
    assert log_tail(n, p, c - 1) > alpha * (1 - 1e-9)
