"""The LLM audit's statistical rule, re-implemented from its specification
(`docs/llm-audit.md`, The rule) in the standard library alone: used by
`test_llm_rule.py` and `scripts/llm-audit-report`."""

import math

MAX_RULE_TOKENS = 8192


def threshold(n, p, alpha):
    """The smallest c >= 1 with P[Binomial(n, p) >= c] <= alpha, by the
    spec's recursion: additions, multiplications and divisions only."""
    n = min(n, MAX_RULE_TOKENS)
    if p == 0 or n == 0:
        return 1
    q = 1.0 - p
    pmf0, base, e = 1.0, q, n
    while e > 0:
        if e & 1:
            pmf0 *= base
        base *= base
        e >>= 1
    pmf = [pmf0]
    for i in range(n):
        pmf.append(pmf[i] * (n - i) * p / ((i + 1) * q))
    tail, c = 0.0, n + 1
    for k in range(n, 0, -1):
        tail += pmf[k]
        if tail > alpha:
            break
        c = k
    return c


def decide(scores, tolerance, p, hard, alpha):
    """The rule's decision over per-token scores (None: infinite)."""
    scores = [math.inf if s is None else s for s in scores]
    above = [s > tolerance for s in scores]
    hard_at = next((i for i, s in enumerate(scores) if s > max(hard, tolerance)), None)
    fails = hard_at is not None
    for start in range(0, len(scores), MAX_RULE_TOKENS):
        window = above[start:start + MAX_RULE_TOKENS]
        if sum(window) >= threshold(len(window), p, alpha):
            fails = True
    return {
        "exceed": sum(above),
        "threshold": threshold(min(len(scores), MAX_RULE_TOKENS), p, alpha),
        "hard_at": hard_at,
        "pass": not fails,
    }
