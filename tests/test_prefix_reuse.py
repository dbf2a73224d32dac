"""Cross-document prefix reuse: the head every document of a task shares is run once, and
every answer is still the one lm-eval's hf backend gives."""
import random

import pytest
from lm_eval.models.huggingface import HFLM

from harness.backend import prefix_cache
from harness.backend.prefix_cache import group_by_shared_prefix
from harness.backend.shared_prefix_lm import SharedPrefixLM
from tests.helpers.checkpoints import build_tiny_gemma3

TOL = 1e-4  # float32


def task_like_requests(vocab: int, seed: int = 0, window: int = 64):
    """Two 'tasks', each a fixed 30-token head (system turn + instruction) before every
    document, multi-token answers; a few documents long enough to be cut from the left."""
    rng = random.Random(seed)
    heads = [[rng.randrange(vocab) for _ in range(30)] for _ in range(2)]
    reqs = []
    for t, head in enumerate(heads):
        for d in range(9):
            body = [rng.randrange(vocab) for _ in range(rng.randrange(2, 20))]
            if d == 8:
                body += [rng.randrange(vocab) for _ in range(window)]  # longer than the window
            for k, length in enumerate((1, 2, 3)):
                cont = [rng.randrange(vocab) for _ in range(length)]
                reqs.append(((f"task{t}-doc{d}", f"label{k}"), head + body, cont))
    return heads, reqs


def assert_same(expected, got):
    assert len(expected) == len(got)
    for (ll_a, greedy_a), (ll_b, greedy_b) in zip(expected, got):
        assert ll_b == pytest.approx(ll_a, abs=TOL)
        assert greedy_a == greedy_b


@pytest.fixture
def heads_run(monkeypatch):
    """Records the length of every head the backend computes."""
    lengths = []
    original = prefix_cache.PrefixKV.__init__

    def spy(self, model, tokens, device, keep_logits):
        lengths.append(len(tokens))
        original(self, model, tokens, device, keep_logits)

    monkeypatch.setattr(prefix_cache.PrefixKV, "__init__", spy)
    return lengths


def test_each_task_head_runs_once_and_every_answer_matches_hf(tiny_checkpoint, heads_run):
    args = dict(pretrained=str(tiny_checkpoint), device="cpu", dtype="float32", batch_size=4, max_length=64)
    hf, fast = HFLM(**args), SharedPrefixLM(**args)
    heads, reqs = task_like_requests(hf.model.config.vocab_size)
    assert_same(hf._loglikelihood_tokens(reqs, disable_tqdm=True), fast._loglikelihood_tokens(reqs, disable_tqdm=True))
    # One head per task, at least the 30 shared tokens; the truncated documents share none.
    assert len([n for n in heads_run if n >= 30]) == 2, heads_run


def test_prefix_reuse_off_computes_no_head(tiny_checkpoint, heads_run):
    args = dict(pretrained=str(tiny_checkpoint), device="cpu", dtype="float32", batch_size=4, max_length=64)
    hf, plain = HFLM(**args), SharedPrefixLM(**args, prefix_reuse="False")
    _, reqs = task_like_requests(hf.model.config.vocab_size, seed=3)
    assert_same(hf._loglikelihood_tokens(reqs, disable_tqdm=True), plain._loglikelihood_tokens(reqs, disable_tqdm=True))
    assert heads_run == []


def test_sliding_window_model_matches_hf_inside_and_beyond_its_window(tiny_checkpoint, tmp_path, heads_run):
    """Gemma-3's mix of sliding-window and full layers: rows that fit the window reuse the
    head under both masks; rows wider than the window are served by hf itself."""
    gemma = build_tiny_gemma3(tmp_path / "gemma", tiny_checkpoint, sliding_window=48)
    args = dict(pretrained=str(gemma), device="cpu", dtype="float32", batch_size=4, max_length=96)
    hf, fast = HFLM(**args), SharedPrefixLM(**args)
    assert fast._mixed_layers() and fast._sliding_window() == 48
    _, reqs = task_like_requests(hf.model.config.vocab_size, seed=1, window=96)
    assert_same(hf._loglikelihood_tokens(reqs, disable_tqdm=True), fast._loglikelihood_tokens(reqs, disable_tqdm=True))
    assert heads_run, "the rows inside the window reused a head"


def test_grouping_keeps_each_task_on_its_own_head():
    system = [1, 2, 3, 4, 5, 6, 7, 8, 9]  # shared by everything, like a chat system turn
    task_a = system + [10] * 20
    task_b = system + [11] * 20
    seqs = [task_a + [d, d + 1] for d in range(5)] + [task_b + [d] for d in range(4)] + [[99, 98, 97]]
    groups = group_by_shared_prefix(seqs)
    heads = sorted((g.prefix_len, sorted(g.members)) for g in groups)
    assert heads == [(0, [9]), (len(task_a), [0, 1, 2, 3, 4]), (len(task_b), [5, 6, 7, 8])]


def test_grouping_respects_caps_and_short_heads():
    # Identical sequences may not take their whole length as the head when capped.
    groups = group_by_shared_prefix([[5] * 12, [5] * 12], caps=[11, 11])
    assert [(g.prefix_len, sorted(g.members)) for g in groups] == [(11, [0, 1])]
    # A head shorter than min_prefix is not worth a forward pass of its own.
    groups = group_by_shared_prefix([[1, 2, 3, 4], [1, 2, 3, 5]], min_prefix=8)
    assert all(g.prefix_len == 0 for g in groups)
    assert sorted(i for g in groups for i in g.members) == [0, 1]
    assert group_by_shared_prefix([]) == []


def generation_requests(tokenizer, seed: int = 0, long_docs: int = 1):
    """Prompts of two 'tasks' (a chat-style head and an instruction, then the document),
    as lm-eval builds generate_until requests; one long document per task is truncated."""
    from lm_eval.api.instance import Instance

    rng = random.Random(seed)
    words = "profit sales fell rose outlook company shares market revenue quarter".split()
    heads = ["<|system|>You are a helpful assistant.\n<|user|>Summarize the article in one line.\nArticle: ",
             "<|system|>You are a helpful assistant.\n<|user|>Write a question about the passage.\nPassage: "]
    reqs = []
    for t, head in enumerate(heads):
        for d in range(7):
            n_words = 60 if d < long_docs else rng.randrange(3, 25)
            text = head + " ".join(rng.choice(words) for _ in range(n_words)) + "\n<|assistant|>"
            kwargs = {"until": ["\n\n"], "max_gen_toks": 10, "do_sample": False, "temperature": 0.0}
            reqs.append(Instance("generate_until", {}, (text, kwargs), 0, (f"task{t}", d, 1)))
    return reqs


@pytest.mark.parametrize("refill_rows", [True, False])
def test_generation_reuses_each_head_and_matches_hf_token_for_token(tiny_checkpoint, heads_run, refill_rows):
    args = dict(pretrained=str(tiny_checkpoint), device="cpu", dtype="float32", batch_size=4, max_length=96)
    hf, fast = HFLM(**args), SharedPrefixLM(**args, refill_rows=refill_rows)
    reqs = generation_requests(hf.tokenizer)
    expected = hf.generate_until(reqs, disable_tqdm=True)
    assert fast.generate_until(reqs, disable_tqdm=True) == expected
    assert any(expected), "the tiny model generates something"
    assert len([n for n in heads_run if n >= 15]) == 2, heads_run


def test_generation_on_a_sliding_window_model_matches_hf(tiny_checkpoint, tmp_path, heads_run):
    """Within the window the head is reused; a generation that would outgrow it goes to hf."""
    gemma = build_tiny_gemma3(tmp_path / "gemma", tiny_checkpoint, sliding_window=128)
    args = dict(pretrained=str(gemma), device="cpu", dtype="float32", batch_size=3, max_length=200)
    hf, fast = HFLM(**args), SharedPrefixLM(**args)
    reqs = generation_requests(hf.tokenizer, seed=2, long_docs=2)
    assert fast.generate_until(reqs, disable_tqdm=True) == hf.generate_until(reqs, disable_tqdm=True)
    assert heads_run, "short documents reused their head"


CHAT = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def _answers(model: str, backend: str, tasks: list[str], limit: int, shots: int | None, chat: str):
    from harness.evaluate import EvalRequest, run_eval

    out = run_eval(EvalRequest(model=model, tasks=tasks, limit=limit, num_fewshot=shots, log_samples=True,
                               backend=backend, chat_template=chat, use_cache=False))
    answers = {(task, s["doc_id"]): [r[0] for r in s["resps"]] for task, samples in out.results["samples"].items()
               for s in samples}
    return out.results["results"], answers


def assert_same_answers(expected: dict, got: dict):
    assert expected.keys() == got.keys()
    for key, answers in expected.items():
        for a, b in zip(answers, got[key], strict=True):
            if isinstance(a, str):
                assert a == b, key
            else:
                assert float(b[0]) == pytest.approx(float(a[0]), abs=TOL) and bool(a[1]) == bool(b[1]), key


def test_chat_template_and_few_shot_prompts_match_hf(tmp_path):
    """A chat checkpoint, two-shot prompts, multiple-choice and generative tasks of both
    suites in one run: the same answers, document by document, and the same metrics."""
    from tests.helpers.checkpoints import build_tiny_checkpoint

    chat = str(build_tiny_checkpoint(tmp_path / "chat", chat_template=CHAT))
    tasks = ["fin_fpb", "fin_finred", "generative_fin_fomc", "gen_question_socialiqa"]
    base, base_answers = _answers(chat, "hf", tasks, 3, 2, "on")
    fast, fast_answers = _answers(chat, "hf-shared-prefix", tasks, 3, 2, "on")
    assert_same_answers(base_answers, fast_answers)
    assert base == fast


def test_embedded_model_generates_as_hf_token_for_token():
    """SmolLM2-135M-Instruct with its chat template, one-shot question generation (60 new
    tokens), where the shared head is the system turn, the instruction and the example."""
    tasks = ["gen_question_socialiqa"]
    base, base_answers = _answers("smollm2-135m-instruct", "hf", tasks, 4, 1, "auto")
    fast, fast_answers = _answers("smollm2-135m-instruct", "hf-shared-prefix", tasks, 4, 1, "auto")
    assert_same_answers(base_answers, fast_answers)
    assert all(answers[0] for answers in base_answers.values()), "the model answered every document"
    assert base == fast


def test_refilled_rows_answer_as_hf_with_early_stops_and_mixed_budgets(tiny_checkpoint, monkeypatch):
    """Rows end at different steps (a one-letter stop string the random model writes often,
    budgets of 4 and 16 tokens); each finished row takes the next prompt at once. Every
    answer is hf's, and fewer decoding steps are run than hf's batches take."""
    from lm_eval.api.instance import Instance

    import harness.backend.shared_prefix_lm as backend

    args = dict(pretrained=str(tiny_checkpoint), device="cpu", dtype="float32", batch_size=3, max_length=96)
    hf, fast = HFLM(**args), SharedPrefixLM(**args)
    reqs = [
        Instance("generate_until", {}, (req.args[0], {"until": ["e", "\n\n"], "max_gen_toks": 4 if k % 5 == 0 else 16,
                                                       "do_sample": False, "temperature": 0.0}), 0, req.metadata)
        for k, req in enumerate(generation_requests(hf.tokenizer, seed=3))
    ]
    # One request hf decodes itself (an argument the refilled rows do not take).
    reqs.append(Instance("generate_until", {}, (reqs[0].args[0], {"until": ["\n\n"], "max_gen_toks": 5,
                                                               "do_sample": False, "top_k": 1}), 0, ("task9", 0, 1)))
    def batched_steps(model):
        """Counts forward passes over more than one row: hf's batches (prefill, then one per
        new token) and the refilled rows' decoding steps (their prompts run one at a time)."""
        seen = {"steps": 0}

        def hook(_module, args, kwargs):
            ids = kwargs.get("input_ids", args[0] if args else None)
            seen["steps"] += ids is not None and ids.shape[0] > 1
        model.register_forward_pre_hook(hook, with_kwargs=True)
        return seen

    hf_steps = batched_steps(hf.model)
    expected = hf.generate_until(reqs, disable_tqdm=True)

    decoded_ahead = []
    original = backend.decode_greedily
    monkeypatch.setattr(backend, "decode_greedily",
                        lambda *a, **k: decoded_ahead.append(len(a[1])) or original(*a, **k))
    fast_steps = batched_steps(fast.model)
    assert fast.generate_until(reqs, disable_tqdm=True) == expected
    assert decoded_ahead == [len(reqs) - 1], "every greedy request but the top_k one was decoded ahead"
    lengths = [len(hf.tok_encode(answer)) for answer in expected[:-1]]
    assert min(lengths) < max(lengths), "the answers end at different steps"
    # hf runs each batch of 3 until its longest answer ends; refilled rows stay busy.
    assert 0 < fast_steps["steps"] < hf_steps["steps"], (fast_steps, hf_steps)


def test_a_tree_row_lays_out_shared_tokens_once():
    """Two contexts sharing [5, 6] after a 2-token head, one a prefix-sharing sibling of the
    other's label: each token appears once, positions are depths, subtrees are ranges."""
    from harness.backend.row_packing import PackedRow, tree_row

    a, b = PackedRow((1, 2, 5, 6, 7)), PackedRow((1, 2, 5, 6, 8))
    a.continuations, b.continuations = [(9, 4), (3,)], [(7,)]
    tree = tree_row([a, b], head=2)
    assert tree.tokens == [5, 6, 7, 9, 8]  # a's label body (9) hangs under a's last token (7)
    assert tree.positions == [2, 3, 4, 5, 4]
    assert tree.end == [5, 5, 4, 4, 5]  # 7's subtree is {7, 9}; 8 is a leaf
    reads = {(row.context, cont): where for row, cont, where in tree.reads}
    assert reads == {((1, 2, 5, 6, 7), (9, 4)): [2, 3], ((1, 2, 5, 6, 7), (3,)): [2], ((1, 2, 5, 6, 8), (7,)): [4]}


@pytest.mark.parametrize("model", ["llama", "gemma3"])
def test_documents_that_share_more_than_the_head_are_packed_as_trees_and_match_hf(
        tiny_checkpoint, tmp_path, monkeypatch, model):
    """FinRED-like: one sentence asked about several entity pairs, multi-token labels, and a
    context that a label of another document continues. Tokens shared after the task's
    head are computed once (tree rows), and every answer is still hf's; also under
    Gemma-3's pair of masks (sliding-window and full layers)."""
    import harness.backend.shared_prefix_lm as backend

    checkpoint = tiny_checkpoint if model == "llama" else build_tiny_gemma3(tmp_path / "g", tiny_checkpoint, 128)
    args = dict(pretrained=str(checkpoint), device="cpu", dtype="float32", batch_size=4, max_length=96)
    hf, fast = HFLM(**args), SharedPrefixLM(**args)
    rng = random.Random(5)
    vocab = hf.model.config.vocab_size
    head = [rng.randrange(vocab) for _ in range(50)]  # long enough to be worth more than the sentences
    labels = [[rng.randrange(vocab) for _ in range(n)] for n in (1, 2, 3)]
    reqs = []
    for s in range(4):
        sentence = [rng.randrange(vocab) for _ in range(12)]
        for p in range(3):
            pair = [rng.randrange(vocab) for _ in range(rng.randrange(1, 5))]
            reqs += [((f"s{s}p{p}", f"l{k}"), head + sentence + pair, label) for k, label in enumerate(labels)]
    # A context that is another's context followed by the start of its 3-token label.
    reqs.append((("tail", "l0"), reqs[2][1] + labels[2][:1], labels[0]))
    packed = []
    original = backend.SharedPrefixLM._score_batch

    def spy(self, batch, *a, **k):
        packed.extend(len(tree.members) for tree in batch)
        return original(self, batch, *a, **k)

    monkeypatch.setattr(backend.SharedPrefixLM, "_score_batch", spy)
    assert_same(hf._loglikelihood_tokens(reqs, disable_tqdm=True), fast._loglikelihood_tokens(reqs, disable_tqdm=True))
    assert max(packed) >= 3, packed  # the pairs of one sentence share a tree row
    assert sum(packed) == 13  # every distinct context scored once


@pytest.mark.parametrize("documents", [3, 24])
def test_refilled_rows_keep_no_autograd_graph_however_many_documents(tiny_checkpoint, documents):
    """Regression (2026-12-07): a class put between ``@torch.no_grad()`` and the decoder left
    autograd on, so every decoding step saved tensors for a backward pass that never comes
    and memory grew about 0.9 GB per generated document on SmolLM2. Decoding from a caller
    with autograd on (as lm-eval calls it) must save nothing for backward and run every
    forward pass without gradients, for a few documents as for many."""
    import torch

    from harness.backend.continuous_decode import Prompt, decode_greedily

    fast = SharedPrefixLM(pretrained=str(tiny_checkpoint), device="cpu", dtype="float32", batch_size=4, max_length=96)
    reqs = (generation_requests(fast.tokenizer, seed=documents) * 2)[:documents]
    prompts = [Prompt(fast.tok_encode(req.args[0]), 8) for req in reqs]
    forwards_with_grad, saved_bytes = [], [0]
    fast.model.register_forward_hook(lambda *_: forwards_with_grad.append(torch.is_grad_enabled()))

    def pack(tensor):
        saved_bytes[0] += tensor.numel() * tensor.element_size()
        return tensor

    assert torch.is_grad_enabled()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        answers = decode_greedily(fast.model, prompts, 4, set(), lambda *_: False, "cpu")
    assert [len(a) for a in answers] == [8] * documents
    assert forwards_with_grad and not any(forwards_with_grad), "a decoding step ran with autograd on"
    assert saved_bytes[0] == 0, f"{saved_bytes[0]} bytes kept for backward over {documents} documents"
