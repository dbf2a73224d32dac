"""``hf-shared-prefix``: lm-eval's HF backend, computing each distinct prompt token about once.

Three kinds of wasted work are removed, all exactly:

1. **Within a document.** lm-eval's ``hf`` backend runs context + continuation once per
   request, and reuses a forward pass only when every continuation is a single token. A
   multiple-choice document with multi-token labels (FinRED's 29 relation names,
   "hawkish"/"dovish") pays for its context once per label. Here each context and all its
   continuations are packed into one row::

       [context c0..cn][cont 1 tokens, minus the last][cont 2 tokens, minus the last]...

   with a 4-D attention mask under which each continuation sees the context and its own
   earlier tokens only, and position ids that restart after the context for every
   continuation.

2. **Across documents.** Every document of a task starts with the same head (the chat
   template's system turn, the instruction, fixed few-shot examples): 64% of the context
   tokens of the financial suite. Rows are grouped by the head they share
   (:mod:`harness.backend.prefix_cache`), the head runs once per group, and every batch of the
   group starts from its key/value cache (expanded across the batch as a view). Documents
   that go on sharing tokens after the head (FinRED: one sentence, several entity pairs)
   are packed into one row as a token tree, each shared token computed once
   (:mod:`harness.backend.row_packing`). Greedy generation reuses heads too: each document's
   remaining prompt is computed once from its head's cache, without padding.

3. **Idle rows in generation.** hf decodes a batch until its longest answer ends, so a
   row whose answer stopped early computes nothing of use. Greedy answers are decoded
   with refilled rows instead (:mod:`harness.backend.continuous_decode`): a finished row takes
   the next prompt at once. ``HFLM.generate_until`` then runs unchanged on the answers
   decoded ahead, so batching, stop-string cutting and caching are lm-eval's own.

One forward pass then yields every log-likelihood the ``hf`` backend would compute, up to
float rounding, and only the logits of scored positions are projected onto the vocabulary
(``logits_to_keep``). ``prefix_reuse=False`` in the model args switches parts 2 and 3
off, ``refill_rows=False`` part 3.

Everything else (sampling, chat templates, PEFT, dtype, device, batch size, truncation,
errors) is inherited from ``HFLM`` unchanged. Requests this scheme cannot serve exactly
go to ``HFLM``'s own code: seq2seq models, continuations longer than the window, sampled
generations, and generations on sliding-window models that would outgrow the window.
Log-likelihood rows wider than a sliding window (or longer than ``max_length``) are scored
one at a time with hf's truncation, only their answer positions projected onto the
vocabulary (:meth:`SharedPrefixLM._score_alone`).
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import inspect

import torch
import torch.nn.functional as F
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils import handle_stop_sequences, normalize_gen_kwargs
from tqdm import tqdm

from harness.backend.continuous_decode import Prompt, decode_greedily, plain_greedy
from harness.backend import precision_check
from harness.backend.precision_check import CheckedTask, Scored
from harness.backend.prefix_cache import PrefixGroup, PrefixKV, group_by_shared_prefix
from harness.lm_eval_adapters import write_without_waiting
from harness.progress import DocProgress, by_documents
from harness.backend.row_packing import PackedRow, Request, TreeRow, build_rows, pack_batch, tree_row, tree_rows

__all__ = ["SharedPrefixLM", "build_rows", "pack_batch", "PackedRow"]


@register_model("hf-shared-prefix")
class SharedPrefixLM(HFLM):
    """``hf`` with one forward pass per context for log-likelihood requests."""

    # One bar counting documents and finished tasks (harness/progress.py). Log-likelihood
    # answers are reported as their batch finishes (the requests reach
    # _loglikelihood_tokens in the same order, one to one), so batching is unchanged.
    _doc_progress: DocProgress | None = None

    def __init__(self, *args, prefix_reuse: bool | str = True, refill_rows: bool | str = True,
                 checked_bfloat16: bool | str = False, **kwargs):
        # prefix_reuse=False (``--model_args prefix_reuse=False``) scores every document from
        # its first token, as before cross-document reuse; refill_rows=False decodes each
        # batch with generate() until its longest answer ends, as before continuous
        # batching. Both kept for benchmarks and bisecting. checked_bfloat16=True: the
        # float32 model scores in a bfloat16 copy and answers in float32 every document that
        # bfloat16 could have answered otherwise (harness/backend/precision_check.py).
        super().__init__(*args, **kwargs)
        self._float32: torch.nn.Module | None = None
        self.checked: list[CheckedTask] = []  # what the last checked loglikelihood call did, per task
        self._encoded: list[Request] | None = None  # the checked pass's requests as _loglikelihood_tokens got them
        if str(checked_bfloat16).lower() in {"true", "1", "yes"}:
            if self.model.dtype != torch.float32:
                raise ValueError(f"checked_bfloat16 needs the model loaded in float32 (dtype=float32), "
                                 f"not {self.model.dtype}")
            self._float32, self._model = self._model, copy.deepcopy(self._model).to(torch.bfloat16)
            self.softmax_dtype = torch.float32  # only scored positions: the softmax costs nothing in float32
        self._split_across_cpu_ranks()
        self.prefix_reuse = str(prefix_reuse).lower() not in {"false", "0", "no"}
        self.refill_rows = str(refill_rows).lower() not in {"false", "0", "no"}
        self._generation_head: tuple[int, ...] | None = None  # the head of the batch being generated
        self._head_kv: dict[tuple[int, ...], PrefixKV] = {}  # heads computed in one generate_until call
        # Answers decoded ahead with refilled rows, by (prompt tokens, max new tokens, stops).
        self._decoded: dict[tuple, list[int]] | None = None

    def set_cache_hook(self, cache_hook) -> None:
        """lm-eval's request cache, written without waiting on each answer's commit."""
        super().set_cache_hook(cache_hook)
        write_without_waiting(cache_hook)

    def _split_across_cpu_ranks(self) -> None:
        """Data parallelism on CPU processes too. lm-eval's ``hf`` takes its rank from accelerate
        only when it counts more than one GPU (and accelerate reports one process on CPU unless
        told ``cpu=True``), so under ``torchrun`` (gloo) every process kept rank 0 of 1 and
        scored every document. Here each takes its share, as on GPUs: lm-eval hands rank r the
        documents r, r + W, ... of every task (so each rank still shares every task's heads),
        pads the request lists to one length, and gathers the answers on rank 0, which alone
        writes the results. The collectives go through torch.distributed directly."""
        import torch.distributed as dist

        if (self._world_size == 1 and self.device.type == "cpu" and dist.is_available() and dist.is_initialized()
                and dist.get_world_size() > 1):
            self._rank, self._world_size = dist.get_rank(), dist.get_world_size()
            self._cpu_ranks = True

    _cpu_ranks = False  # ranks set by _split_across_cpu_ranks (no accelerator behind them)

    def all_gather(self, tensor):
        if not self._cpu_ranks:
            return super().all_gather(tensor)
        import torch.distributed as dist

        tensor = tensor[None] if tensor.ndim == 0 else tensor  # as accelerate's gather: concatenated on dim 0
        parts = [torch.empty_like(tensor) for _ in range(self._world_size)]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts)

    def barrier(self):
        if not self._cpu_ranks:
            return super().barrier()
        import torch.distributed as dist

        dist.barrier()

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        progress = DocProgress(requests, "loglikelihood", disable=disable_tqdm or self.rank != 0)
        self._doc_progress = progress
        try:
            if self._float32 is None:
                return super().loglikelihood(requests, disable_tqdm=True)
            return self._checked_loglikelihood(requests)
        finally:
            progress.close()
            self._doc_progress = None

    @contextlib.contextmanager
    def _in_float32(self):
        """The float32 model in place of the bfloat16 copy (no-op unless checked_bfloat16)."""
        if self._float32 is None:
            yield
            return
        fast, self._model = self._model, self._float32
        try:
            yield
        finally:
            self._model = fast

    def _checked_loglikelihood(self, requests) -> list[tuple[float, bool]]:
        """Every request in bfloat16; then in float32 the probed documents (to measure the error)
        and the close calls (precision_check.py). Only final answers reach lm-eval's request
        cache, so a run killed between the passes never leaves a bfloat16 answer to reuse."""
        hook, self.cache_hook = self.cache_hook, type(self.cache_hook)(None)
        try:
            self._encoded = []
            low = super().loglikelihood(requests, disable_tqdm=True)
            encoded, self._encoded, self._doc_progress = self._encoded, None, None
            scored = [Scored(doc=(r.task_name or "", r.doc_id if r.doc_id is not None else i), tokens=len(continuation),
                             chars=len(r.args[1]))
                      for i, (r, (_, _, continuation)) in enumerate(zip(requests, encoded, strict=True))]
            docs = precision_check.documents(scored)
            probed = precision_check.probe_documents(docs)
            exact = self._float32_answers(encoded, [i for key in sorted(probed) for i in docs[key]])
            indices = sorted(exact)
            gaps = precision_check.per_token_bounds([scored[i] for i in indices], [low[i][0] for i in indices],
                                                    [exact[i][0] for i in indices], probed)
            rest = {key: members for key, members in docs.items() if key not in probed}
            close = precision_check.close_calls(scored, [ll for ll, _ in low], rest,
                                                {task: per_token for task, (_, per_token) in gaps.items()})
            exact.update(self._float32_answers(encoded, [i for key in sorted(close) for i in docs[key]]))
            self.checked = precision_check.summarize(docs, probed, close, gaps)
        finally:
            self.cache_hook, self._encoded = hook, None
        answers = [exact.get(i, answer) for i, answer in enumerate(low)]
        for request, answer in zip(requests, answers):
            hook.add_partial("loglikelihood", request.args, answer)
        return answers

    def get_model_info(self) -> dict:
        """lm-eval's model record (it asks after scoring), with what checked_bfloat16 did per task:
        ``harness.evaluate`` moves it into the run record's ``precision_check``. Answers read
        from the request cache were checked when they were computed and are not counted again."""
        with self._in_float32():
            info = super().get_model_info()
        if self._float32 is not None:
            info["precision_check"] = {  # evidence.records.PrecisionCheckRecord per task
                c.task: {**{k: v for k, v in dataclasses.asdict(c).items() if k != "task"},
                         "float32_docs": list(c.float32_docs)} for c in self.checked}
        return info

    def _float32_answers(self, encoded: list[Request], indices: list[int]) -> dict[int, tuple[float, bool]]:
        """The float32 model's answers to the requests at ``indices``, already tokenized by the first pass."""
        if not indices:
            return {}
        with self._in_float32():
            answers = self._loglikelihood_tokens([encoded[i] for i in indices], disable_tqdm=True)
        return dict(zip(indices, answers, strict=True))

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        with self._in_float32():  # a perplexity is its own value: no answer to protect
            return super().loglikelihood_rolling(requests, disable_tqdm=disable_tqdm)

    def generate_until(self, requests, disable_tqdm: bool = False):
        """hf's generation, with each task's shared head run once.

        Requests are put in head order (documents sharing a head side by side) and served a
        chunk of whole documents at a time; within a chunk each head's documents go to
        ``HFLM.generate_until`` together, which batches them by length as usual, and
        :meth:`_model_generate` starts their batch from the head's key/value cache.
        """
        with self._in_float32():  # a generated text has no margin to check: float32's own
            return self._generate_until(requests, disable_tqdm)

    def _generate_until(self, requests, disable_tqdm: bool) -> list[str]:
        disable = disable_tqdm or self.rank != 0
        run_hf = super(SharedPrefixLM, self).generate_until
        if not (self.prefix_reuse and self._fast_path_ok()) or not requests:
            return by_documents(
                requests, lambda chunk: run_hf(chunk, disable_tqdm=True), "generate_until", disable=disable
            )
        if self._continuous_ok():
            return self._generate_continuously(requests, disable)
        head_of: dict[int, tuple[int, ...]] = {}
        order: list[int] = []
        encoded = []
        for request in requests:
            gen_kwargs = (request.args[1] if len(request.args) > 1 else {}) or {}
            encoded.append(self._prompt_tokens(request.args[0], int(gen_kwargs.get("max_gen_toks", self.max_gen_toks))))
        for head, members in self._generation_heads(encoded):
            order += members
            head_of.update((id(requests[i]), head) for i in members)

        def run(chunk):
            answers: dict[int, str] = {}
            by_head: dict[tuple[int, ...], list[int]] = {}
            for j, request in enumerate(chunk):
                by_head.setdefault(head_of[id(request)], []).append(j)
            for head, members in by_head.items():
                self._generation_head = head or None
                try:
                    outs = run_hf([chunk[j] for j in members], disable_tqdm=True)
                finally:
                    self._generation_head = None
                answers.update(zip(members, outs, strict=True))
            return [answers[j] for j in range(len(chunk))]

        try:
            in_order = by_documents([requests[i] for i in order], run, "generate_until", disable=disable)
        finally:
            self._head_kv.clear()
        answers: list[str | None] = [None] * len(requests)
        for position, i in enumerate(order):
            answers[i] = in_order[position]
        return answers

    def _prompt_tokens(self, context: str, max_new: int) -> list[int]:
        """A prompt encoded and left-truncated as ``HFLM.generate_until`` will feed it."""
        return self.tok_encode(context)[-max(1, self.max_length - max_new):]

    def _generation_heads(self, encoded: list[list[int]]) -> list[tuple[tuple[int, ...], list[int]]]:
        """(head tokens, prompt indices) per group of encoded prompts; an empty head for
        prompts that share none. :meth:`_model_generate` checks every row against its head
        before using it."""
        groups = group_by_shared_prefix(encoded, caps=[len(t) - 1 for t in encoded])
        return [(tuple(encoded[g.members[0]][: g.prefix_len]), g.members) for g in groups]

    def _continuous_ok(self) -> bool:
        """Greedy answers can be decoded with refilled rows: a model without sliding-window
        layers, whose generation config adds nothing to argmax, no autocast (hf would decode
        under it), and no reasoning-trace cut."""
        return (
            self.refill_rows and self._sliding_window() is None and self._accepts_logits_to_keep()
            and getattr(self, "mixed_precision_dtype", None) is None
            and plain_greedy(self.model.generation_config) and self.think_end_token is None
            and self._pad_id() in set(self.tokenizer.all_special_ids)
        )

    def _pad_id(self) -> int | None:
        """The token generate() writes after a row's end-of-sequence token."""
        if self.tokenizer.pad_token_id is not None:
            return self.tokenizer.pad_token_id
        eos = self.model.generation_config.eos_token_id
        return eos[0] if isinstance(eos, list) and eos else eos

    def _generate_continuously(self, requests, disable: bool) -> list[str]:
        """Every greedy answer decoded first with refilled rows (:mod:`harness.backend.continuous_decode`),
        then handed to ``HFLM.generate_until`` so its batching, text cutting and caching run
        unchanged; requests decoded otherwise (sampling, extra generation arguments) go to
        hf's ``generate()`` there as before."""
        eos_text = self.tok_decode(self.eot_token_id, skip_special_tokens=False)
        jobs: list[tuple[int, tuple[int, ...], int, tuple[str, ...]]] = []  # request, prompt, max new, stops
        for i, request in enumerate(requests):
            gen_kwargs = dict(request.args[1]) if len(request.args) > 1 and request.args[1] else {}
            if "max_length" in gen_kwargs:
                continue
            kwargs = normalize_gen_kwargs(gen_kwargs, self.max_gen_toks)
            until = kwargs.pop("until", None)
            until = tuple(handle_stop_sequences(list(until) if isinstance(until, list) else until, eos=eos_text))
            max_new = int(kwargs.pop("max_gen_toks"))
            if kwargs.get("do_sample") or kwargs.get("temperature") or set(kwargs) - {"do_sample", "temperature"}:
                continue
            tokens = self._prompt_tokens(request.args[0], max_new)
            if not tokens:
                continue
            jobs.append((i, tuple(tokens), max_new, until))

        heads: dict[tuple[int, ...], PrefixKV] = {}
        head_of: dict[int, tuple[int, ...]] = {}
        for head, members in self._generation_heads([list(job[1]) for job in jobs]):
            head_of.update((j, head) for j in members)
        keep_logits = self._accepts_logits_to_keep()
        prompts = []
        for j, (_, tokens, max_new, _) in enumerate(jobs):
            head = head_of.get(j) or ()
            if head and head not in heads:
                heads[head] = PrefixKV(self.model, head, self.device, keep_logits)
            prompts.append(Prompt(tokens, max_new, heads.get(head)))

        progress = DocProgress(requests, "generate_until", disable=disable)
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [] if eos is None else [eos])

        def text_done(j: int, tokens: list[int]) -> bool:
            text = self.tok_decode(tokens)
            return any(stop and stop in text for stop in jobs[j][3])

        answers = decode_greedily(
            self.model, prompts, self._rows_per_batch(), eos_ids, text_done, self.device,
            on_done=lambda j, tokens: progress.answered(jobs[j][0]),
        )
        self._decoded = {(tokens, max_new, stops): answer for (_, tokens, max_new, stops), answer in zip(jobs, answers)}
        try:
            out = super().generate_until(requests, disable_tqdm=True)
        finally:
            self._decoded = None
        decoded = {job[0] for job in jobs}
        for i in range(len(requests)):
            if i not in decoded:
                progress.answered(i)
        progress.close()
        return out

    def _model_generate(self, context, max_length: int, stop: list[str], **generation_kwargs):
        """hf's generation; a batch whose rows all start with the current head starts from its cache.

        hf left-pads: [pads][head][rest]. Here each row becomes [head][pads][rest] with the
        same width and the attention mask to match; the head comes from its cache, each
        rest but its last token is computed once without padding, and generate() starts at
        the last prompt token (positions follow the mask, as in hf). Sliding-window models
        reuse a head only when the whole generation fits their window: their window is
        counted in cache slots, which the moved pads would shift.
        """
        head = self._generation_head
        attention_mask = generation_kwargs.get("attention_mask")
        if self._decoded is not None and attention_mask is not None:
            ready = self._decoded_batch(context, attention_mask, max_length, stop)
            if ready is not None:
                return ready
        window = self._sliding_window()
        if (
            head is None or attention_mask is None or generation_kwargs.get("do_sample")
            or (window is not None and max_length > window)
        ):
            return super()._model_generate(context, max_length, stop, **generation_kwargs)
        n_head = len(head)
        head_ids = torch.tensor(head, device=context.device)
        rows = [context[b][attention_mask[b].bool()] for b in range(context.shape[0])]
        if any(len(r) <= n_head or not torch.equal(r[:n_head], head_ids) for r in rows):
            return super()._model_generate(context, max_length, stop, **generation_kwargs)
        width = context.shape[1]
        moved = context.clone()
        mask = torch.zeros_like(attention_mask)
        for b, row in enumerate(rows):
            rest = len(row) - n_head
            moved[b, :n_head] = head_ids
            moved[b, n_head: width - rest] = self.tokenizer.pad_token_id or 0
            moved[b, width - rest:] = row[n_head:]
            mask[b, :n_head] = 1
            mask[b, width - rest:] = 1
        keep_logits = self._accepts_logits_to_keep()
        kv = self._head_kv.get(head)
        if kv is None:
            kv = self._head_kv[head] = PrefixKV(self.model, head, self.device, keep_logits)
        cache = kv.cache_for_rows(
            self.model, [r[n_head:].tolist() for r in rows], width, max_length, self.device, keep_logits,
        )
        generation_kwargs.update(attention_mask=mask, past_key_values=cache)
        return super()._model_generate(moved, max_length, stop, **generation_kwargs)

    def _decoded_batch(self, context, attention_mask, max_length: int, stop: list[str]) -> torch.Tensor | None:
        """What ``generate()`` returns for this batch, from the answers decoded ahead: each
        row's prompt as given, its answer, then the pad token generate() writes after a
        row has ended. None when a row was not decoded ahead."""
        width = context.shape[1]
        rows = [tuple(context[b][attention_mask[b].bool()].tolist()) for b in range(context.shape[0])]
        answers = [self._decoded.get((row, max_length - width, tuple(stop))) for row in rows]
        if any(answer is None for answer in answers):
            return None
        out = torch.full((len(rows), width + max(map(len, answers))), self._pad_id(), dtype=context.dtype,
                         device=context.device)
        out[:, :width] = context
        for b, answer in enumerate(answers):
            out[b, width: width + len(answer)] = torch.tensor(answer, dtype=context.dtype)
        return out

    def _fast_path_ok(self) -> bool:
        return self.backend == "causal"

    def _sliding_window(self) -> int | None:
        """The attention window of sliding-window layers, if the model has any."""
        config = self.model.config
        if "sliding_attention" in (getattr(config, "layer_types", None) or []) or getattr(
            config, "use_sliding_window", False
        ) or config.model_type in {"mistral", "mixtral"}:
            return getattr(config, "sliding_window", None)
        return None

    def _mixed_layers(self) -> bool:
        """Full and sliding layers side by side: the model takes one mask per layer type."""
        types = set(getattr(self.model.config, "layer_types", None) or [])
        return {"full_attention", "sliding_attention"} <= types

    def _accepts_logits_to_keep(self) -> bool:
        forward = getattr(self.model, "get_base_model", lambda: self.model)().forward
        return "logits_to_keep" in inspect.signature(forward).parameters

    def _hf_batch_size(self, requests: list[Request], override_bs: int | None) -> int:
        """Rows per batch for requests served by ``HFLM``, which log-softmaxes every position
        of a batch over the whole vocabulary: with Gemma-3's 262k tokens, four 2,000-token
        one-shot prompts took 15 GB. Rows are capped so that this stays near 2 GiB."""
        wanted = override_bs or self._rows_per_batch()
        config = self.model.config
        vocab = getattr(getattr(config, "get_text_config", lambda: config)(), "vocab_size", None) or 0
        longest = max(len(context) + len(cont) for _, context, cont in requests)
        fits = (2 * 1024**3) // max(1, longest * vocab * 4 * 2)  # float32 logits and their log-softmax
        return max(1, min(wanted, fits))

    def _rows_per_batch(self) -> int:
        size = self.batch_size
        return int(size) if str(size).isdigit() and int(size) > 0 else 8

    def _loglikelihood_tokens(
        self,
        requests: list[Request],
        disable_tqdm: bool = False,
        override_bs: int | None = None,
    ) -> list[tuple[float, bool]]:
        progress = self._doc_progress
        if self._encoded is not None:  # checked_bfloat16: its float32 pass reuses these tokens
            self._encoded.extend(requests)
        if not self._fast_path_ok():
            answers = super()._loglikelihood_tokens(requests, disable_tqdm, override_bs)
            for i in range(len(requests)) if progress else ():
                progress.answered(i)
            return answers
        rows, leftover = build_rows(requests, self.max_length)
        window = self._sliding_window()
        if window is not None:
            too_wide = [r for r in rows if r.span > window]
            rows = [r for r in rows if r.span <= window]
            leftover += [i for r in too_wide for ids in r.requests.values() for i in ids]

        answers: list[tuple[float, bool] | None] = [None] * len(requests)
        keep_logits = self._accepts_logits_to_keep()
        if leftover and keep_logits:
            # Rows wider than the sliding window (or longer than max_length): each scored on its
            # own by the model's own attention, projecting only its answer positions onto the
            # vocabulary. hf log-softmaxes every position: one 777-token Yelp row with two
            # reviews as examples took over 3 GB with Gemma-3's 262k-token vocabulary, and a
            # study's 2-shot sentiment set grew past 24 GB.
            for i in sorted(leftover, key=lambda i: (-len(requests[i][1]) - len(requests[i][2]), i)):
                answers[i] = self._score_alone(requests[i][1], requests[i][2])
                if requests[i][0] is not None:
                    self.cache_hook.add_partial("loglikelihood", requests[i][0], answers[i])
                if progress:
                    progress.answered(i)
        elif leftover:
            left = [requests[i] for i in leftover]
            for i, answer in zip(leftover, super()._loglikelihood_tokens(
                left, disable_tqdm=True, override_bs=self._hf_batch_size(left, override_bs)
            )):
                answers[i] = answer
                if progress:
                    progress.answered(i)

        per_batch = override_bs or self._rows_per_batch()
        pbar = tqdm(total=len(requests) - len(leftover), disable=(disable_tqdm or self.rank != 0 or bool(progress)),
                    desc="Running loglikelihood requests (shared prefix)")
        for head_len, members in self._prefix_groups(rows):
            # Each context keeps its last token out of the head: it scores the first answer token.
            head = (
                PrefixKV(self.model, members[0].first_context[:head_len], self.device, keep_logits)
                if head_len
                else None
            )
            for start in range(0, len(members), per_batch):
                batch = members[start: start + per_batch]
                for i, answer in self._score_batch(batch, window, keep_logits, head):
                    answers[i] = answer
                    key = requests[i][0]
                    if key is not None:
                        self.cache_hook.add_partial("loglikelihood", key, answer)
                    pbar.update(1)
                    if progress:
                        progress.answered(i)
        pbar.close()
        return answers  # type: ignore[return-value]

    @torch.no_grad()
    def _score_alone(self, context: list[int], continuation: list[int]) -> tuple[float, bool]:
        """One request as hf scores it (the same left truncation to ``max_length``), but with
        only the answer positions' logits computed (``logits_to_keep``)."""
        # hf's own checks, so a request hf refuses is refused the same way.
        assert len(context) > 0 and len(continuation) > 0
        assert len(continuation) <= self.max_length
        tokens = (list(context) + list(continuation))[-(self.max_length + 1):][:-1]
        logits = self.model(input_ids=torch.tensor([tokens], device=self.device), use_cache=False,
                            logits_to_keep=len(continuation)).logits[0]
        logprobs = F.log_softmax(logits, dim=-1, dtype=self.softmax_dtype)
        target = torch.tensor(continuation, device=logprobs.device)
        greedy = bool((logprobs.argmax(dim=-1) == target).all())
        return float(logprobs.gather(1, target[:, None]).sum()), greedy

    def _prefix_groups(self, rows: list[PackedRow]) -> list[tuple[int, list[TreeRow]]]:
        """Rows grouped by the head they share and packed into token trees, longest first
        within and across groups (as in hf: an out-of-memory error comes early)."""
        if self.prefix_reuse:
            groups = group_by_shared_prefix([r.context for r in rows], caps=[len(r.context) - 1 for r in rows])
        else:
            groups = [PrefixGroup(0, list(range(len(rows))))]
        ordered = []
        for g in groups:
            members = [rows[i] for i in g.members]
            # Trees need the 4-D mask. Rows whose labels are all one token run without one
            # (attention's fused causal kernel), which costs less than the few tokens a tree
            # would share there; so only groups that need the mask anyway are packed as trees.
            needs_mask = any(len(c) > 1 for m in members for c in m.continuations)
            packed = tree_rows(members, g.prefix_len) if self.prefix_reuse and needs_mask else [
                tree_row([m], g.prefix_len) for m in members]
            ordered.append((g.prefix_len, sorted(packed, key=lambda r: (-r.length, r.first_context))))
        return sorted(ordered, key=lambda item: (-item[1][0].length, item[1][0].first_context))

    @torch.no_grad()
    def _score_batch(self, batch: list[TreeRow], window: int | None, keep_logits: bool, head: PrefixKV | None = None):
        pad_id = self.tokenizer.pad_token_id
        if pad_id is None:
            pad_id = self.tokenizer.eos_token_id or 0
        dtype = self.model.dtype if self.model.dtype.is_floating_point else torch.float32
        if all(r.plain for r in batch):
            # One context per row and one-token labels only: plain causal attention over
            # right-padded rows, as in hf, lets attention use its fused causal kernel
            # instead of an explicit mask.
            kinds: tuple[str, ...] = ()
        elif window is not None and self._mixed_layers():
            kinds = ("full_attention", "sliding_attention")
        else:
            kinds = ("sliding_attention" if window is not None else "full_attention",)
        skip = len(head) if head is not None else 0
        input_ids, positions, width, masks = pack_batch(batch, pad_id, dtype, window, kinds, head=skip)
        if not kinds:
            mask, positions = None, None
        elif len(kinds) == 1:
            mask = masks[kinds[0]].to(self.device)
        else:
            mask = {kind: m.to(self.device) for kind, m in masks.items()}
        # Each answer token is scored at one layout index: cont[0] at the context's last
        # token, cont[t] (t >= 1) at the index of cont[t-1] (TreeRow.reads).
        scored = [(b, row, cont, where) for b, tree in enumerate(batch) for row, cont, where in tree.reads]
        # Only those indices are projected onto the vocabulary: with Gemma-3's 262k-token
        # vocabulary, a span from the shortest context to the end cost ~15 GB for 4 long rows.
        keep = sorted({w for *_, where in scored for w in where})
        column = {w: j for j, w in enumerate(keep)} if keep_logits else {w: w for w in range(width)}
        kwargs = {"logits_to_keep": torch.tensor(keep, device=self.device)} if keep_logits else {}
        if head is not None:
            kwargs["past_key_values"] = head.cache_for(len(batch), read_only=True)
        logits = self.model(
            input_ids=input_ids.to(self.device), attention_mask=mask,
            position_ids=None if positions is None else positions.to(self.device), use_cache=False, **kwargs,
        ).logits
        for b, row, cont, where in scored:
            picked = logits[b, [column[w] for w in where]]
            logprobs = F.log_softmax(picked, dim=-1, dtype=self.softmax_dtype)
            target = torch.tensor(cont, device=logprobs.device)
            greedy = bool((logprobs.argmax(dim=-1) == target).all())
            total = float(logprobs.gather(1, target[:, None]).sum())
            for i in row.requests[cont]:
                yield i, (total, greedy)
