"""LLM and embedding benchmarks against a running node (scripts/bench-llm).

Prints, for SmolLM2-135M (GGUF Q4_1) on the node:
  - time to first token and decode tokens/s of one streamed chat (128 tokens);
  - aggregate tokens/s with 1, 4 and 8 concurrent chats;
  - the teacher-forced audit's time against the generation's (ratio), both
    timed the same way: the wall time of one HTTP request, at the client;
  - with VOUCH_LLAMA_REF set to a scripts/llama_ref.cpp executable linked
    with the node's own libllama (scripts/bench-llm builds it), greedy
    decode on the node against llama.cpp's own loop, same GGUF, prompt
    tokens and thread count, rounds interleaved;
and embeddings/s of MiniLM int8 against onnxruntime + tokenizers in Python
(VOUCH_BENCH_ONLY=embeddings: only those; VOUCH_BENCH_ONLY=llm: all but those;
VOUCH_BENCH_ONLY=decode: only the decode against llama.cpp;
VOUCH_BENCH_ONLY=audit: only the audit of VOUCH_BENCH_AUDIT below;
VOUCH_BENCH_ONLY=constrained: only what structured outputs and logprobs
cost: free text, a JSON schema and logprobs with 5 alternatives, rounds
interleaved, generation and audit time per token for each).
VOUCH_BENCH_AUDITS=N audits N answers instead of 3 (past the third, greedy
ones among them, and 8 more generated concurrently), each audit printing its
closest call (the smallest rtol at which every token passes);
VOUCH_BENCH_SAVE=DIR writes the audited answers there (answer-SEED.json,
concurrent-SEED.json), and VOUCH_BENCH_AUDIT=DIR first audits every answer
saved there, by another machine, on this node: an honest answer from other
hardware must pass. VOUCH_BENCH_JSON=FILE writes every number measured,
each round's included, to FILE.
Given a second URL (a node without the model, joined to the first), also
the same streamed chat routed through it, interleaved with direct ones.
"""

import concurrent.futures as cf
import json
import os
import pathlib
import subprocess
import sys
import time
import urllib.request

import numpy as np

URL = sys.argv[1]
GATEWAY = sys.argv[2] if len(sys.argv) > 2 else None
MODELS = pathlib.Path(os.environ.get("VOUCH_MODELS", pathlib.Path.home() / ".cache/vouch/models"))
LLM = "smollm2-135m"
N = 128
MESSAGES = [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Write a long story about a dragon who learns to bake bread."}]


# The node's admin token (audits are operator actions); the bench scripts
# pass it from the node's data directory.
TOKEN = os.environ.get("VOUCH_TOKEN")
# Every number measured, for VOUCH_BENCH_JSON.
RESULTS = {}


def post(path, body, base=None):
    headers = {"content-type": "application/json"}
    if TOKEN:
        headers["authorization"] = f"Bearer {TOKEN}"
    req = urllib.request.Request((base or URL) + path, data=json.dumps(body).encode(), headers=headers)
    return urllib.request.urlopen(req, timeout=600)


def chat(max_tokens=N, seed=0, stream=True, base=None, temperature=0.7):
    """One streamed chat: (ttft s, total s, tokens, response vouch object)."""
    body = {"model": LLM, "messages": MESSAGES, "max_tokens": max_tokens, "temperature": temperature,
            "seed": seed, "stream": stream}
    t0 = time.perf_counter()
    first, n, last = None, 0, None
    with post("/v1/chat/completions", body, base) as r:
        for line in r:
            line = line.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            d = json.loads(line[6:])
            if "token" in d.get("vouch", {}):
                n += 1
                first = first or time.perf_counter()
            if "receipt" in d.get("vouch", {}):
                last = d
    return first - t0, time.perf_counter() - t0, n, last


def whole(seed, temperature=0.7):
    body = {"model": LLM, "messages": MESSAGES, "max_tokens": N, "temperature": temperature, "seed": seed}
    t0 = time.perf_counter()
    with post("/v1/chat/completions", body) as r:
        d = json.loads(r.read())
    return time.perf_counter() - t0, d


def median(xs):
    return float(np.median(xs))


def main():
    if os.environ.get("VOUCH_BENCH_ONLY") == "embeddings":
        return embeddings()
    chat(16)  # warm up: loads the model
    if os.environ.get("VOUCH_BENCH_AUDIT"):
        audit_saved(pathlib.Path(os.environ["VOUCH_BENCH_AUDIT"]))
    if os.environ.get("VOUCH_BENCH_ONLY") == "audit":
        return
    if os.environ.get("VOUCH_BENCH_ONLY") == "decode":
        return decode_against_llama_ref(os.environ["VOUCH_LLAMA_REF"])
    if os.environ.get("VOUCH_BENCH_ONLY") == "constrained":
        return constrained()
    runs = [chat(seed=s) for s in range(3)]
    ttft = median([r[0] for r in runs])
    tps = median([(r[2] - 1) / (r[1] - r[0]) for r in runs])
    print(f"single chat: ttft {ttft * 1000:.1f} ms, decode {tps:.1f} tok/s ({runs[0][2]} tokens)")
    RESULTS["single_chat"] = [{"ttft_ms": r[0] * 1000, "decode_tok_s": (r[2] - 1) / (r[1] - r[0]), "tokens": r[2]}
                              for r in runs]

    if GATEWAY:
        chat(16, base=GATEWAY)  # warm up the route
        direct, routed = [], []
        for s in range(5):
            direct.append(chat(seed=200 + s))
            routed.append(chat(seed=200 + s, base=GATEWAY))
            assert routed[-1][3]["vouch"]["receipt"]["output"] == direct[-1][3]["vouch"]["receipt"]["output"]
        for name, rs in (("direct", direct), ("routed through a second node", routed)):
            print(f"{name}: ttft {median([r[0] for r in rs]) * 1000:.1f} ms, decode "
                  f"{median([(r[2] - 1) / (r[1] - r[0]) for r in rs]):.1f} tok/s")
        RESULTS["routing"] = {name: [{"ttft_ms": r[0] * 1000, "decode_tok_s": (r[2] - 1) / (r[1] - r[0])} for r in rs]
                              for name, rs in (("direct", direct), ("routed", routed))}
        print(f"one routing hop adds {(median([r[0] for r in routed]) - median([r[0] for r in direct])) * 1000:.1f} ms "
              f"to the time to first token; decode ratio routed/direct "
              f"{median([(r[2] - 1) / (r[1] - r[0]) for r in routed]) / median([(r[2] - 1) / (r[1] - r[0]) for r in direct]):.2f}")

    for k in (1, 4, 8):
        t0 = time.perf_counter()
        with cf.ThreadPoolExecutor(k) as ex:
            res = list(ex.map(lambda s: chat(seed=s), range(k)))
        wall = time.perf_counter() - t0
        toks = sum(r[2] for r in res)
        print(f"{k} concurrent chats: {toks / wall:.1f} tok/s aggregate, worst ttft {max(r[0] for r in res) * 1000:.0f} ms")
        RESULTS[f"concurrent_{k}"] = {"tok_s": toks / wall, "worst_ttft_ms": max(r[0] for r in res) * 1000}

    # The timed audits: three answers at temperature 0.7, one after another;
    # VOUCH_BENCH_AUDITS=N audits N, the rest greedy or at 1.0, and 8 more
    # generated concurrently (their batches mix sequences).
    gen, audit, closest, beyond, seconds = [], [], [], [], {True: [], False: []}
    count = int(os.environ.get("VOUCH_BENCH_AUDITS", "3"))
    answers = []
    for s in range(count):
        g, d = whole(100 + s, 0.7 if s < 3 else [0.0, 1.0, 0.7][s % 3])
        answers.append((f"answer-{100 + s}", d))
        if s < 3:
            gen.append(g)
    if count > 3:
        with cf.ThreadPoolExecutor(8) as ex:
            answers += [(f"concurrent-{300 + s}", d)
                        for s, (_, d) in enumerate(ex.map(lambda s: whole(300 + s, 0.7), range(8)))]
    for i, (name, d) in enumerate(answers):
        t0 = time.perf_counter()
        check = audit_answer(d)
        wall = time.perf_counter() - t0
        if not check["ok"]:
            print(f"{name} FAILS its own node's audit at token {check['failed_at']}: {check['reason']}")
        closest.append(check.get("tolerance") or 0.0)
        beyond.append(check.get("beyond") or 0)
        seconds[d["vouch"]["transcript"]["request"]["sampling"]["temperature"] == 0].append(check["seconds"])
        if os.environ.get("VOUCH_BENCH_SAVE"):
            save = pathlib.Path(os.environ["VOUCH_BENCH_SAVE"])
            save.mkdir(parents=True, exist_ok=True)
            (save / f"{name}.json").write_text(json.dumps(d))
        if i < 3:
            audit.append(wall)
    print(f"{len(answers)} answers audited by their own node: {sum(c == 0 for c in closest)} exact, "
          f"closest calls (rtol) {sorted(round(c, 4) for c in closest if c > 0)}; tokens failing per answer "
          f"{sorted(beyond)}; median audit "
          f"{median(seconds[True] or [0]) * 1000:.0f} ms greedy, {median(seconds[False]) * 1000:.0f} ms sampled")
    print(f"teacher-forced audit of a {N}-token answer: {median(audit) * 1000:.0f} ms vs generation "
          f"{median(gen) * 1000:.0f} ms, each one HTTP request timed at the client: ratio "
          f"{median(audit) / median(gen):.3f} (target <= 0.25)")
    RESULTS["audit_vs_generation"] = {"audit_s": audit, "generation_s": gen, "ratio": median(audit) / median(gen)}

    if os.environ.get("VOUCH_LLAMA_REF"):
        decode_against_llama_ref(os.environ["VOUCH_LLAMA_REF"])

    if os.environ.get("VOUCH_BENCH_ONLY") != "llm":
        embeddings()


def decode_against_llama_ref(ref, rounds=7):
    """Greedy decode of the same chat on the node (streamed over HTTP, timed
    at the client from the first token's event to the last's) and in
    llama.cpp's own loop on the same libllama (in process, from the first
    token chosen to the last), rounds interleaved: llama.cpp with the node's
    thread counts, and with every core for every token (its best here, with
    no HTTP path beside it). Both decode the same prompt tokens (the chat
    template rendered as the node renders it) and stop at the same token."""
    prompt = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
              "Write a long story about a dragon who learns to bake bread.<|im_end|>\n<|im_start|>assistant\n")
    cpus = str(os.cpu_count())
    threads = os.environ.get("VOUCH_BENCH_THREADS", cpus)
    node, same, every = [], [], []

    def llama(decode_threads):
        out = subprocess.run([ref, str(MODELS / "smollm2-135m-instruct.q4_1.gguf"), str(N), prompt, "1",
                              decode_threads, cpus], capture_output=True, text=True, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    chat(16, temperature=0.0)  # warm up
    for r in range(rounds):
        ttft, total, n, last = chat(temperature=0.0, seed=r)
        node.append({"ttft_ms": ttft * 1000, "decode_tok_s": (n - 1) / (total - ttft), "tokens": n})
        same.append(llama(threads))
        every.append(llama(cpus))
        for theirs in (same[-1], every[-1]):
            assert theirs["tokens"] == n, f"llama.cpp made {theirs['tokens']} tokens, the node {n}"
    rate = lambda xs: median([x["decode_tok_s"] for x in xs])  # noqa: E731
    ratios = [a["decode_tok_s"] / b["decode_tok_s"] for a, b in zip(node, same)]
    best = [a["decode_tok_s"] / b["decode_tok_s"] for a, b in zip(node, every)]
    print(f"greedy decode, {node[0]['tokens']} tokens, {rounds} interleaved rounds: node over HTTP "
          f"({threads} decode threads of {cpus}) {rate(node):.1f} tok/s; llama.cpp's own loop on the same libllama "
          f"with the node's threads {rate(same):.1f} tok/s, ratio {median(ratios):.2f} at the median "
          f"({min(ratios):.2f}-{max(ratios):.2f}; target >= 1.0); with {cpus} decode threads {rate(every):.1f} tok/s, "
          f"ratio {median(best):.2f} ({min(best):.2f}-{max(best):.2f}); ttft {median([x['ttft_ms'] for x in node]):.1f} "
          f"ms against {median([x['ttft_ms'] for x in same]):.1f} ms")
    RESULTS["decode_vs_llama_ref"] = {"threads": threads, "cpus": cpus, "node": node, "llama_ref_same_threads": same,
                                      "llama_ref_every_core": every, "ratios_same_threads": ratios,
                                      "ratios_every_core": best}


def constrained(rounds=7, tokens=64):
    """Generation and audit time per token: free text, a JSON schema (the
    mask computed every token, replayed by the audit) and logprobs with 5
    alternatives, each one whole request, rounds interleaved."""
    schema = {"type": "object", "properties": {"title": {"type": "string"}, "story": {"type": "string"}},
              "required": ["title", "story"], "additionalProperties": False}
    kinds = {
        "free": {},
        "json_schema": {"response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}},
        "logprobs_5": {"logprobs": True, "top_logprobs": 5},
    }
    per = {k: {"generate_ms_per_token": [], "audit_ms_per_token": []} for k in kinds}
    for r in range(rounds + 1):
        for kind, extra in kinds.items():
            body = {"model": LLM, "messages": MESSAGES, "max_tokens": tokens, "temperature": 0.7, "seed": r, **extra}
            t0 = time.perf_counter()
            with post("/v1/chat/completions", body) as resp:
                d = json.loads(resp.read())
            wall = time.perf_counter() - t0
            n = len(d["vouch"]["transcript"]["tokens"])
            check = audit_answer(d)
            assert check["ok"], check
            if r == 0:
                continue  # warm-up round: the first schema indexes the vocabulary
            per[kind]["generate_ms_per_token"].append(wall * 1000 / n)
            per[kind]["audit_ms_per_token"].append(check["seconds"] * 1000 / n)
    base = {k: median(per["free"][k]) for k in per["free"]}
    print(f"structured outputs and logprobs ({rounds} interleaved rounds, {tokens}-token answers, median ms per token):")
    print("| answer | generation ms/token | vs free text | audit ms/token | vs free text |")
    print("|---|---|---|---|---|")
    for kind in kinds:
        g, a = median(per[kind]["generate_ms_per_token"]), median(per[kind]["audit_ms_per_token"])
        print(f"| {kind} | {g:.2f} | {g / base['generate_ms_per_token']:.2f}x | {a:.2f} | "
              f"{a / base['audit_ms_per_token']:.2f}x |")
    RESULTS["constrained"] = per


def audit_answer(d):
    """The node's teacher-forced audit of a chat response `d`."""
    return json.loads(post("/v1/audit/llm", {"receipt": d["vouch"]["receipt"],
                                             "transcript": d["vouch"]["transcript"]}).read())


def audit_saved(folder):
    """Audits each answer another machine generated and saved (a chat
    response with its `vouch` object) on this node, by teacher forcing."""
    for path in sorted(folder.glob("*.json")):
        d = json.loads(path.read_text())
        check = audit_answer(d)
        verdict = "passes" if check["ok"] else f"FAILS at token {check['failed_at']}: {check['reason']}"
        print(f"answer {path.name} (node {str(d['vouch']['receipt'].get('node', '?'))[:24]}...): "
              f"the teacher-forced audit here {verdict}; closest call: rtol {check.get('tolerance')}; "
              f"{check.get('beyond')} of {check['tokens']} tokens fail")


def embeddings():
    """Embeddings/s of MiniLM int8: the node over HTTP against onnxruntime +
    tokenizers in process, each in its best configuration on this machine,
    interleaved over rounds (medians)."""
    import threading
    import onnxruntime as ort
    from tokenizers import Tokenizer

    topics = ["cats", "the stock market", "guitars", "rain", "bread", "dragons", "a long train journey",
              "the history of mathematics", "why the sky looks blue at noon"]
    texts = []
    for i in range(96):
        t = f"Sentence number {i} is about {topics[i % len(topics)]}."
        texts.append(t + " It goes on for a while, and then it says more." * (i % 3))
    batch = 8
    batches = [texts[i:i + batch] for i in range(0, len(texts), batch)]
    cpus = os.cpu_count()

    tok = Tokenizer.from_file(str(MODELS / "minilm.tokenizer.json"))
    tok.enable_padding()

    def session(threads):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        return ort.InferenceSession(str(MODELS / "minilm-int8.onnx"), opts)

    wide = session(cpus)
    local = threading.local()

    def ort_batch(texts, sess):
        enc = tok.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        h = sess.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
        pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    def runs(lengths, run_cost=16):
        """The node's split of a batch into runs of similar length
        (vouch_engine::embed::runs): fewest padded tokens plus run_cost per
        run."""
        order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
        best, cut = [0], [0]
        for j in range(1, len(order) + 1):
            c, k = min((best[k] + run_cost + (j - k) * lengths[order[j - 1]], k) for k in range(j))
            best.append(c)
            cut.append(k)
        out, j = [], len(order)
        while j > 0:
            out.append([order[i] for i in range(cut[j], j)])
            j = cut[j]
        return out[::-1]

    plain = Tokenizer.from_file(str(MODELS / "minilm.tokenizer.json"))
    plain.no_padding()

    def ort_split(texts):
        lengths = [len(e.ids) for e in plain.encode_batch(texts)]
        return [ort_batch([texts[i] for i in run], wide) for run in runs(lengths)]

    def ort_split_narrow(texts):
        if not hasattr(local, "sess"):
            local.sess = session(1)
        lengths = [len(e.ids) for e in plain.encode_batch(texts)]
        return [ort_batch([texts[i] for i in run], local.sess) for run in runs(lengths)]

    def ort_narrow(texts):
        if not hasattr(local, "sess"):
            local.sess = session(1)
        return ort_batch(texts, local.sess)

    def vouch(texts):
        post("/v1/embeddings", {"model": "minilm-int8", "input": texts}).read()

    def rate(fn, clients):
        t0 = time.perf_counter()
        with cf.ThreadPoolExecutor(clients) as pool:
            list(pool.map(fn, batches))
        return len(texts) / (time.perf_counter() - t0)

    configs = {
        "vouch over HTTP, 1 client": (vouch, 1),
        f"vouch over HTTP, {cpus} clients": (vouch, cpus),
        f"vouch over HTTP, {2 * cpus} clients": (vouch, 2 * cpus),
        f"onnxruntime, {cpus} intra-op threads, 1 caller": (lambda b: ort_batch(b, wide), 1),
        f"onnxruntime, 1 intra-op thread, {cpus} callers": (ort_narrow, cpus),
        f"reference: onnxruntime, {cpus} intra-op threads, batches split into the node's runs": (ort_split, 1),
        f"reference: onnxruntime, 1 intra-op thread, {cpus} callers, batches split into the node's runs":
            (ort_split_narrow, cpus),
    }
    for fn, clients in configs.values():
        rate(fn, clients)  # warm up (sessions, caches, the node's model)
    rates = {k: [] for k in configs}
    for _ in range(3):
        for k, (fn, clients) in configs.items():
            rates[k].append(rate(fn, clients))
    print(f"embeddings, {len(texts)} texts of 9-41 tokens in batches of {batch} (median of 3 interleaved rounds):")
    for k, v in rates.items():
        print(f"  {k}: {median(v):.0f}/s")

    def best(prefix):
        return max(median(v) for k, v in rates.items() if k.startswith(prefix))

    one = median(rates["vouch over HTTP, 1 client"]) / median(rates[f"onnxruntime, {cpus} intra-op threads, 1 caller"])
    split = best("reference: onnxruntime")
    print(f"embeddings ratio, best vouch / best onnxruntime: {best('vouch') / best('onnxruntime'):.2f} "
          f"(target >= 1.0); one client / onnxruntime with {cpus} threads: {one:.2f}; "
          f"best vouch / onnxruntime given the node's runs (its best threading): {best('vouch') / split:.2f}")
    RESULTS["embeddings"] = {"rates_per_s": rates, "best_vouch_over_best_ort": best("vouch") / best("onnxruntime"),
                             "best_vouch_over_ort_same_runs": best("vouch") / split}

if __name__ == "__main__":
    main()
    if os.environ.get("VOUCH_BENCH_JSON"):
        pathlib.Path(os.environ["VOUCH_BENCH_JSON"]).write_text(json.dumps(RESULTS, indent=1) + "\n")
