"""The LLM audit's statistical rule, re-implemented from its specification
(`docs/llm-audit.md`) and run over the committed calibration corpus
(`tests/data/llm-calibration.json`): the threshold and decision of every
stored answer must be what the Rust implementation recorded, every honest
answer passes (and every answer of other kernels: flash attention off), and
the exact binomial tail (computed another way, with logarithms and
`math.comb`) agrees with the threshold."""

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
        if a["kind"] in ("honest", "kernel"):
            honest += 1
            assert got["pass"], (a["variant"], a["prompt"])
    assert honest == 96


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


# Each variant's answers as one pool (docs/llm-audit.md, Pooling): tokens,
# tokens beyond the tolerance, the pool's threshold, and whether it fails.
# crates/engine/tests/llm_calibration.rs asserts the same table.
POOLS = {
    "reference": (1907, 0, 84, False),
    "threads-1": (1907, 0, 84, False),
    "ubatch-1": (1907, 0, 84, False),
    "ubatch-128": (1907, 0, 84, False),
    "batched-4": (1907, 0, 84, False),
    "flash-off": (1870, 1, 83, False),
    "temperature-1.2": (1856, 940, 83, True),
    "seed": (931, 186, 50, True),
    "edit-1": (1633, 5, 75, False),
    "edit-4": (1592, 30, 74, False),
    "edit-16": (1694, 141, 77, True),
    "runner-up": (2018, 1305, 88, True),
    "substitute-q8_0": (1895, 1, 84, False),
    "substitute-q5_0": (1684, 109, 77, True),
    "substitute-q4_0": (1749, 318, 79, True),
}


def test_pooled_answers_are_judged_as_the_spec_says(corpus):
    rule = corpus["rule"]
    tolerance = corpus["tolerance"]
    pools = {}
    for a in corpus["answers"]:
        n, k = pools.get(a["variant"], (0, 0))
        beyond = sum(1 for _, s in a["scores"] if s is None or s > tolerance)
        pools[a["variant"]] = (n + len(a["tokens"]), k + beyond)
    assert set(pools) == set(POOLS)
    for variant, (n, k) in pools.items():
        c = threshold(n, rule["exceed_rate"], rule["alpha"])
        assert (n, k, c, k >= c) == POOLS[variant], variant
