"""Benchmark: hf-shared-prefix (with and without cross-document prefix reuse) against lm-eval's hf.

    python benchmarks/bench_shared_prefix.py [--model smollm2-135m-instruct] [--out FILE] [--quick]
                                             [--workload NAME ...]

Every run is one backend on one workload, in its own subprocess (so peak memory is its
own), on the same documents, with the model's chat template, float32, on this machine:

- ``hf bs1``: lm-eval's ``hf`` at its default batch size (1);
- ``hf bs8``: lm-eval's ``hf`` at batch size 8;
- ``shared bs8 (no reuse)``: ``hf-shared-prefix`` with ``prefix_reuse=False``, i.e. the
  backend before cross-document reuse (one forward pass per context for all its labels);
- ``shared bs8 (no refill)`` (generation only): ``hf-shared-prefix`` with
  ``refill_rows=False``: heads reused, but each batch decoded by ``generate()`` until its
  longest answer ends;
- ``shared bs8``: ``hf-shared-prefix`` as shipped (each task's shared head run once, and
  greedy answers decoded with refilled rows).

Token accounting, so the arithmetic can be checked: a hook on the model counts every
position each backend actually feeds through it (padding and heads included); the
*distinct* tokens of a workload are the nodes of a prefix tree over every token sequence
the work needs (each scored context + answer, each prompt + the tokens kept from its
generation), i.e. what "every distinct token computed once" would compute. The model's
plain forward speed (tokens/s, batch 8 x 256 tokens, no cache, one logit per row) is
measured in the same run, and ``limit docs/s = forward tokens/s / (distinct tokens /
docs)``; each backend's docs/s is shown as a fraction of it. The limit is optimistic for
generation: a decoding step computes one token per row, far below the batched speed.

Parity is checked per document against ``hf bs8`` (where a workload runs it; otherwise
against the backend without reuse): log-likelihoods within 1e-4 and the same greedy
flags, generations identical string for string, metrics identical.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from tabulate import tabulate

VARIANTS = {  # name: (lm-eval backend, batch size, extra model args)
    "hf bs1": ("hf", 1, {}),
    "hf bs8": ("hf", 8, {}),
    "shared bs8 (no reuse)": ("hf-shared-prefix", 8, {"prefix_reuse": False}),
    "shared bs8 (no refill)": ("hf-shared-prefix", 8, {"refill_rows": False}),
    "shared bs8": ("hf-shared-prefix", 8, {}),
    "shared bs8 bf16": ("hf-shared-prefix", 8, {"dtype": "bfloat16"}),
    # --dtype bfloat16-checked: bfloat16, every document it could answer otherwise re-scored in float32
    "shared bs8 bf16-checked": ("hf-shared-prefix", 8, {"checked_bfloat16": True}),
}
BF16 = ["shared bs8", "shared bs8 bf16", "shared bs8 bf16-checked"]
SHARED = ["shared bs8 (no reuse)", "shared bs8"]
ALL = ["hf bs1", "hf bs8", *SHARED]
GENERATION = ["hf bs1", "hf bs8", "shared bs8 (no reuse)", "shared bs8 (no refill)", "shared bs8"]
# (name, tasks, docs per task, shots, variants). The financial suite at --limit 100 is the
# README's main job; hf takes ~30 min on it at batch size 8 (27 min measured on 2026-11-30),
# so hf runs on the suite at 20 docs per task, and at 100 the answers are checked against
# the backend without reuse (itself checked against hf bs8 at 20 and on FPB).
WORKLOADS = [
    ("fin_fpb", ["fin_fpb"], 100, None, ALL),
    ("fin suite", ["finharness_all"], 100, None, SHARED),
    ("fin suite", ["finharness_all"], 20, None, ["hf bs8", *SHARED]),
    ("gen generative 1-shot", ["generalization_summary", "generalization_question"], 8, 1, GENERATION),
    # Peak memory against the number of documents generated (it must stay flat: a
    # regression once grew it ~0.9 GB per document), zero-shot as docs/tasks.md runs them.
    *[("gen memory", ["gen_summary_xsum", "gen_question_socialiqa"], n, None, ["hf bs8", "shared bs8"])
      for n in (5, 20, 100)],
    # bfloat16 against float32: answers (the label each document gets) must equal float32's
    # under bf16-checked; log-likelihoods of the documents it kept in bfloat16 may not.
    ("bf16 fin_fpb", ["fin_fpb"], 100, None, ["hf bs8", *BF16]),
    ("bf16 fin suite", ["finharness_all"], 100, None, BF16),
]
QUICK = [  # a smoke run of the script itself
    ("fin_fpb", ["fin_fpb"], 8, None, ALL),
    ("gen generative 1-shot", ["generalization_question"], 2, 1, GENERATION),
    ("bf16 fin_fpb", ["fin_fpb"], 20, None, BF16),
]


class Trie:
    """Counts distinct token prefixes: one node per token that must be computed once."""

    def __init__(self) -> None:
        self.root: dict = {}
        self.nodes = 0

    def add(self, tokens) -> None:
        node = self.root
        for t in tokens:
            nxt = node.get(t)
            if nxt is None:
                nxt = node[t] = {}
                self.nodes += 1
            node = nxt


def run_one(variant: str, model: str, tasks: list[str], limit: int, shots: int | None) -> dict:
    """One backend on one workload, in this process; returns timings, tokens and per-doc answers."""
    t0 = time.perf_counter()
    import lm_eval
    from lm_eval.api.registry import get_model
    from lm_eval.tasks import TaskManager

    import harness.backend.shared_prefix_lm  # noqa: F401
    from fin_tasks import TASKS_DIR
    from plumbing.offline import set_offline
    from plumbing.checkpoints import resolve_checkpoint

    set_offline(False)
    manager = TaskManager(include_path=str(TASKS_DIR), include_defaults=False)
    t_startup = time.perf_counter() - t0
    backend, batch_size, extra = VARIANTS[variant]
    t1 = time.perf_counter()
    lm = get_model(backend)(
        pretrained=str(resolve_checkpoint(model)), device="cpu", batch_size=batch_size, **{"dtype": "float32", **extra},
    )
    t_model = time.perf_counter() - t1

    computed = {"positions": 0, "calls": 0}

    def count(_module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None:
            computed["positions"] += ids.numel()
            computed["calls"] += 1

    lm.model.register_forward_pre_hook(count, with_kwargs=True)
    distinct = Trie()
    generated_docs: list[str] = []
    ll_tokens, gen_tokens = lm._loglikelihood_tokens, lm.generate_until

    def ll_spy(requests, *a, **k):
        for _, context, continuation in requests:
            distinct.add((list(context) + list(continuation))[-(lm.max_length + 1):][:-1])
        return ll_tokens(requests, *a, **k)

    def gen_spy(requests, *a, **k):
        outs = gen_tokens(requests, *a, **k)
        for request, out in zip(requests, outs):
            max_gen = request.args[1].get("max_gen_toks", lm.max_gen_toks)
            # The prompt as fed, then the answer's own tokens plus the one that stopped it.
            distinct.add(lm.tok_encode(request.args[0])[-(lm.max_length - max_gen):]
                         + lm.tok_encode(out, add_special_tokens=False) + [-1 - len(generated_docs)])
            generated_docs.append(out)
        return outs

    lm._loglikelihood_tokens, lm.generate_until = ll_spy, gen_spy
    t2 = time.perf_counter()
    # Autograd left as finharness eval and lm_eval leave it (on): a backend that forgets to
    # turn it off must show it here, in time and in peak memory.
    out = lm_eval.simple_evaluate(
        model=lm, tasks=tasks, task_manager=manager, limit=limit, num_fewshot=shots, apply_chat_template=True,
        bootstrap_iters=0, log_samples=True,
    )
    t_eval = time.perf_counter() - t2
    docs = sum(v["effective"] for v in out["n-samples"].values())
    metrics = {
        task: {k: v for k, v in vals.items() if k.endswith(",none") and isinstance(v, float)}
        for task, vals in out["results"].items()
    }
    answers = {
        f"{task}/{s['doc_id']}": [
            r[0] if isinstance(r[0], str) else [float(r[0][0]), bool(r[0][1])] for r in s["resps"]
        ]
        for task, samples in out["samples"].items()
        for s in samples
    }
    checked = [{k: v for k, v in vars(c).items() if k != "float32_docs"} for c in getattr(lm, "checked", [])]
    return {
        "variant": variant, "docs": docs, "startup_s": t_startup, "model_load_s": t_model, "eval_s": t_eval,
        "precision_check": checked,
        "docs_per_s": docs / t_eval, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "computed_positions": computed["positions"], "forward_calls": computed["calls"],
        "distinct_tokens": distinct.nodes, "metrics": metrics, "answers": answers,
    }


def forward_speed(model: str, batch: int = 8, length: int = 256, reps: int = 5) -> float:
    """The model's plain forward speed here, in tokens/s (no cache, one logit per row)."""
    import torch
    from transformers import AutoModelForCausalLM

    from plumbing.checkpoints import resolve_checkpoint

    lm = AutoModelForCausalLM.from_pretrained(resolve_checkpoint(model), dtype=torch.float32).eval()
    ids = torch.randint(0, lm.config.vocab_size, (batch, length), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        lm(input_ids=ids, use_cache=False, logits_to_keep=1)  # warm-up
        start = time.perf_counter()
        for _ in range(reps):
            lm(input_ids=ids, use_cache=False, logits_to_keep=1)
    return batch * length * reps / (time.perf_counter() - start)


def parity(reference: dict, run: dict) -> str:
    """'same' when every answer matches hf bs8's (log-likelihoods within 1e-4, same greedy
    flags, identical generations); otherwise how many documents differ."""
    differ = 0
    for key, answers in reference["answers"].items():
        got = run["answers"].get(key)
        same = got is not None and len(got) == len(answers) and all(
            a == b if isinstance(a, str) else (abs(a[0] - b[0]) <= 1e-4 and a[1] == b[1])
            for a, b in zip(answers, got)
        )
        differ += not same
    metrics = "metrics identical" if reference["metrics"] == run["metrics"] else "metrics differ"
    if not differ:
        return f"same, {metrics}"
    chosen = sum(_chosen(answers) != _chosen(run["answers"].get(key, []))
                 for key, answers in reference["answers"].items())
    return f"{differ}/{len(reference['answers'])} docs differ ({chosen} in the label chosen), {metrics}"


def _chosen(answers: list) -> object:
    """The label a multiple-choice document gets (its highest log-likelihood); a generation as is."""
    if not answers or isinstance(answers[0], str):
        return answers
    return max(range(len(answers)), key=lambda i: answers[i][0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--out", type=Path, default=None, help="also write the raw figures as JSON")
    parser.add_argument("--quick", action="store_true", help="a few documents per workload (checks the script)")
    parser.add_argument("--workload", action="append", default=None,
                        help="run only the workloads whose name starts with this (repeatable)")
    parser.add_argument("--one", nargs=4, metavar=("VARIANT", "TASKS", "LIMIT", "SHOTS"), help=argparse.SUPPRESS)
    parser.add_argument("--speed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        variant, tasks, limit, shots = args.one
        print(
            json.dumps(run_one(variant, args.model, tasks.split(","), int(limit), None if shots == "-" else int(shots)))
        )
        return
    if args.speed:
        print(json.dumps({"tokens_per_s": forward_speed(args.model)}))
        return

    def subprocess_json(*extra: str) -> dict:
        proc = subprocess.run([sys.executable, __file__, "--model", args.model, *extra],
                              capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"benchmark run {extra} failed:\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    speed = subprocess_json("--speed")["tokens_per_s"]
    print(f"plain forward speed of {args.model} here: {speed:,.0f} tokens/s (batch 8 x 256, float32)", file=sys.stderr)
    rows, raw = [], []
    workloads = [w for w in (QUICK if args.quick else WORKLOADS)
                 if not args.workload or any(w[0].startswith(prefix) for prefix in args.workload)]
    for name, tasks, limit, shots, variants in workloads:
        runs = {}
        for variant in variants:
            runs[variant] = subprocess_json(
                "--one", variant, ",".join(tasks), str(limit), "-" if shots is None else str(shots)
            )
            print(f"done: {name} @{limit} {variant}: {runs[variant]['eval_s']:.1f} s", file=sys.stderr)
        before = runs.get("shared bs8 (no reuse)")
        reference = runs.get("hf bs8")
        float32 = runs.get("shared bs8") if "shared bs8 bf16" in runs else None
        parity_name = next(name for name in ("hf bs8", "shared bs8 (no reuse)", "shared bs8") if name in runs)
        parity_reference = runs[parity_name]
        distinct = max(r["distinct_tokens"] for r in runs.values())
        docs = next(iter(runs.values()))["docs"]
        limit_docs_per_s = speed / (distinct / docs)
        for variant, r in runs.items():
            rows.append([
                f"{name} @{limit}", variant, r["docs"], f"{r['docs_per_s']:.2f}",
                f"{before['eval_s'] / r['eval_s']:.2f}x" if before else "",
                f"{reference['eval_s'] / r['eval_s']:.2f}x" if reference else "",
                f"{float32['eval_s'] / r['eval_s']:.2f}x" if float32 else "",
                f"{r['peak_rss_mb']:.0f}", f"{r['computed_positions']:,}", f"{distinct:,}",
                f"{r['computed_positions'] / distinct:.2f}", f"{limit_docs_per_s:.2f}",
                f"{r['docs_per_s'] / limit_docs_per_s:.0%}",
                parity(parity_reference, r) + ("" if reference else f" (vs {parity_name})")
                if parity_reference and variant != parity_name else "(reference)",
            ])
        raw.append({"workload": name, "tasks": tasks, "limit": limit, "shots": shots, "distinct_tokens": distinct,
                    "limit_docs_per_s": limit_docs_per_s,
                    "runs": {v: {k: x for k, x in r.items() if k != "answers"} for v, r in runs.items()}})
    print(tabulate(rows, tablefmt="github", headers=[
        "workload @docs/task", "backend", "docs", "docs/s", "vs no reuse", "vs hf bs8", "vs float32", "peak RSS MB",
        "positions computed", "distinct tokens", "computed/distinct", "limit docs/s", "of limit", "parity",
    ]))
    print(f"\nplain forward speed: {speed:,.0f} tokens/s; limit docs/s = that / (distinct tokens / docs)")
    checks = [[f"{w['workload']} @{w['limit']}", c["task"], c["documents"], c["probed"], c["rescored"],
               f"{c['largest_gap']:.4f}", f"{c['per_token_bound']:.4f}"]
              for w in raw for r in w["runs"].values() for c in r.get("precision_check", [])]
    if checks:
        print("\nbf16-checked, per task (documents answered in float32, and the error measured on the probed ones):")
        print(tabulate(checks, tablefmt="github", headers=[
            "workload", "task", "docs", "probed", "answered in float32", "largest gap", "per answer token"]))
    if args.out:
        args.out.write_text(json.dumps({"forward_tokens_per_s": speed, "runs": raw}, indent=2))


if __name__ == "__main__":
    main()
