"""Run configuration: typed, validated, stored as TOML.

A config is a base checkpoint, a data mixture, judges and weights, and a stage plan. Every
default here is ours (the paper does not publish them) and is labelled as a default in the GUI.
"""
from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import StudioError
from .paths import REPO_ROOT
from .scoring import check_weights
from .vocab import CATEGORIES, KINDS, STAGE_TYPES  # noqa: F401  (CATEGORIES: re-exported)

Kind = Literal[KINDS]  # a Literal, so the setup form lists the kinds


class ConfigError(StudioError, ValueError):
    """A config that cannot run; the message names the field and the bad value."""


Loc = tuple[str | int, ...]  # where a problem is: ("stages", 0, "learning_rate")


class FieldError(ValueError):
    """A cross-field check's failure, carrying the location of the field it names: pydantic
    reports model-level errors at (), and the GUI marks fields by location, not by parsing text."""

    def __init__(self, loc: Loc, msg: str):
        super().__init__(f"{'.'.join(map(str, loc))}: {msg}")
        self.loc, self.msg = loc, msg


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSpec(_Strict):
    base: str = "embedded"  # "embedded" | local folder | hub id | "run:<run_id>[:<tag>]"
    revision: str | None = None
    allow_unsafe_weights: bool = False  # pickle (.bin) weights; off: safetensors only
    trust_remote_code: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"

    @field_validator("base")
    @classmethod
    def _base_nonempty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("base checkpoint must not be empty")
        return v.strip()


class DatasetSpec(_Strict):
    name: str
    source: str  # file (json/jsonl/csv/parquet) or hub id
    format: Literal["auto", "records", "alpaca", "sharegpt", "squad", "cnn_dailymail", "xsum",
                    "ifeval", "custom"] = "auto"
    kind: Kind | None = None  # required when the format does not imply it
    columns: dict[str, str] = Field(default_factory=dict)  # record field -> source column
    subset: str | None = None  # hub config name
    split: str = "train"
    weight: float | None = 1.0  # share of the mixture (normalised over data sets)
    budget: int | None = None  # or an exact example count; overrides weight
    eval_source: str | None = None  # held-out file; else a deterministic slice of the source
    eval_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    eval_size: int | None = Field(None, ge=1)

    @field_validator("weight")
    @classmethod
    def _weight_nonneg(cls, v: float | None) -> float | None:
        if v is not None and v < 0:
            raise ValueError(f"weight must be >= 0, got {v}")
        return v

    @field_validator("budget")
    @classmethod
    def _budget_pos(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError(f"budget must be >= 1 example, got {v}")
        return v


class DecodingSpec(_Strict):
    name: str
    temperature: float = Field(0.0, ge=0.0, le=5.0)  # 0 = greedy
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    n: int = Field(1, ge=1, le=64)  # candidates drawn with this setting

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


class EndpointSpec(_Strict):
    base_url: str = ""  # OpenAI-compatible, e.g. a local `vllm serve`
    model: str = ""
    api_key_env: str = "OPENAI_API_KEY"  # the key itself is never stored
    timeout_s: float = Field(60.0, gt=0)


class LocalLLMJudgeSpec(_Strict):
    """The LLM judge on a local causal-LM folder instead of an endpoint: rated by the probabilities
    of the rating tokens 1..10 (expected rating, deterministic), or by greedy generation."""
    model_path: str
    scoring: Literal["expected", "generate"] = "expected"
    device: str = "cpu"

    @field_validator("model_path")
    @classmethod
    def _folder_exists(cls, v: str) -> str:
        path = Path(v).expanduser()
        if not path.is_dir():
            raise ValueError(f"folder not found: {v}")
        if not (path / "config.json").is_file():
            raise ValueError(f"{v} has no config.json (not a model folder)")
        return str(path)


# the faithfulness judges a config may name (backend.judges.registry, category faithfulness);
# auto = SummaC-ZS > faith_lm (the embedded LM's likelihood) > MiniLM > lexical; faith_factcc
# (trained once, cached) is opt-in
FAITHFULNESS_JUDGES = ("auto", "faith_summac", "faith_lm", "faith_minilm", "faith_factcc",
                       "faith_lexical")


class JudgeSpec(_Strict):
    task: list[str] = Field(default_factory=lambda: ["rouge_l", "token_f1"])
    faithfulness: str = "auto"  # one of FAITHFULNESS_JUDGES
    instruction_following: list[str] = Field(default_factory=lambda: ["ifeval"])
    nli_model: str | None = None  # local NLI model folder for SummaC-ZS
    llm_endpoint: EndpointSpec | None = None  # enables llm_judge
    llm_judge: LocalLLMJudgeSpec | None = None  # or: llm_judge on a local model folder
    weights: dict[str, float] = Field(default_factory=lambda: {
        "task": 0.3, "faithfulness": 0.4, "instruction_following": 0.3})

    @field_validator("weights")
    @classmethod
    def _weights_ok(cls, v: dict[str, float]) -> dict[str, float]:
        check_weights(v)  # the rule the judge and select stages apply
        return v

    @model_validator(mode="after")
    def _one_llm_judge(self) -> "JudgeSpec":
        if self.llm_judge is not None and self.llm_endpoint is not None and self.llm_endpoint.base_url:
            raise ValueError("set llm_endpoint or llm_judge.model_path, not both: the LLM judge "
                             "runs either on an endpoint or on a local model")
        return self

    @field_validator("faithfulness")
    @classmethod
    def _faith_known(cls, v: str) -> str:
        if v not in FAITHFULNESS_JUDGES:
            raise ValueError(f"unknown faithfulness judge {v!r}; use one of "
                             f"{', '.join(FAITHFULNESS_JUDGES)}")
        return v


class _Stage(_Strict):
    name: str = ""


class TrainStage(_Stage):
    type: Literal["train"] = "train"
    init: str = "base"  # "base" | "previous" | an earlier train stage | "run:<run_id>:<tag>"
    data: list[str] = Field(default_factory=list)  # mixture names; empty = whole mixture
    selection: str | None = None  # a select stage, or "sel:<run_id>:<name>"; replaces `data`
    # "selected": the selection's responses; "reference": the ORIGINAL references of the same
    # prompts (the control: as much extra training, without the self-generated data)
    targets: Literal["selected", "reference"] = "selected"
    method: Literal["lora", "full"] = "lora"
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    # 0, as LLaMA-Factory and Unsloth default: dropout on the adapters' inputs keeps a masked
    # copy of the 7 target modules' inputs in every layer (0.33 GB for a 1 x 384 step of the
    # embedded model) and cost 12 % of a CPU step
    lora_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    learning_rate: float = Field(2e-4, gt=0.0, lt=1.0)
    epochs: float = Field(1.0, gt=0.0)
    max_steps: int | None = Field(None, ge=1)
    max_examples: int | None = Field(None, ge=1)
    batch_size: int = Field(4, ge=1)
    grad_accum: int = Field(1, ge=1)
    max_length: int = Field(256, ge=16)
    warmup_ratio: float = Field(0.0, ge=0.0, lt=1.0)
    weight_decay: float = Field(0.0, ge=0.0)
    logging_steps: int = Field(1, ge=1)
    save_steps: int = Field(10, ge=1)
    eval_steps: int = Field(10, ge=1)  # generation-length probe every N steps
    probe_size: int = Field(4, ge=0)
    probe_max_new_tokens: int = Field(48, ge=1)
    # share of the stage's time the probes may take: a due probe waits (a later step) while they
    # are over it, so the curve thins out rather than slow training; step 0 and the last step
    # always probe; 1 = every probe on its step (a schedule that does not depend on timing)
    probe_budget: float = Field(0.04, ge=0.0, le=1.0)
    # what a batch of LoRA snapshots reads the frozen base weights as: auto = bf16 where the
    # hardware has it and the weights are fp32 (2.3x cheaper probes on the demo; greedy lengths
    # of the bf16-rounded weights), float32 = the weights' own lengths
    probe_dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    group_by_length: bool = True


class SampleStage(_Stage):
    type: Literal["sample"] = "sample"
    source: str = "previous"  # checkpoint to sample from: "previous" | a train stage name
    data: list[str] = Field(default_factory=list)  # prompts the checkpoint was trained on
    # the train stage whose trained-on prompts are sampled; empty: those of `source`. A later
    # ReSet round samples its latest checkpoint on ALL prompts seen since MTL (backend/plans.py)
    prompts: str = ""
    budget_per_kind: dict[str, int] = Field(default_factory=dict)  # kind -> prompts; empty = all
    decoding: list[DecodingSpec] = Field(default_factory=lambda: [
        DecodingSpec(name="greedy", temperature=0.0),
        DecodingSpec(name="t0.7_p0.9", temperature=0.7, top_p=0.9),
        DecodingSpec(name="t1.0", temperature=1.0),
    ])
    max_new_tokens: int = Field(96, ge=1)
    batch_size: int = Field(8, ge=1)
    backend: Literal["hf", "vllm", "openai"] = "hf"
    endpoint: EndpointSpec | None = None

    @field_validator("budget_per_kind")
    @classmethod
    def _kinds(cls, v: dict[str, int]) -> dict[str, int]:
        for k, n in v.items():
            if k not in KINDS:
                raise ValueError(f"unknown kind {k!r}; use one of {list(KINDS)}")
            if n < 0:
                raise ValueError(f"budget for {k} must be >= 0, got {n}")
        return v


class JudgeStage(_Stage):
    type: Literal["judge"] = "judge"
    samples: str = "previous"  # sample stage name
    batch_size: int = Field(32, ge=1)


class SelectStage(_Stage):
    type: Literal["select"] = "select"
    samples: str = "previous"
    threshold: float = Field(0.5, ge=0.0, le=1.0)
    per_kind_quota: dict[str, int] = Field(default_factory=dict)  # per-kind budgets (at most)
    budget: int | None = Field(None, ge=1)
    weights: dict[str, float] | None = None  # overrides judges.weights for this selection
    # ReSet-S: the ReSet threshold this stricter selection is measured against (same candidates
    # and weights, no quota or budget); the selection records its size relative to that one
    reset_threshold: float | None = Field(None, ge=0.0, le=1.0)


class EvaluateStage(_Stage):
    type: Literal["evaluate"] = "evaluate"
    checkpoints: list[str] = Field(default_factory=list)  # train stage names; empty = all
    include_base: bool = False
    eval_size: int = Field(20, ge=1)  # per data set
    max_new_tokens: int = Field(96, ge=1)
    batch_size: int = Field(8, ge=1)


Stage = Annotated[Union[TrainStage, SampleStage, JudgeStage, SelectStage, EvaluateStage],
                  Field(discriminator="type")]


_SLURM_TIME = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$")  # sbatch --time forms: M, M:S, H:M:S, D-H[:M[:S]]
_SLURM_MEM = re.compile(r"^\d+[KMGT]?$", re.IGNORECASE)


class SlurmSpec(_Strict):
    """What a user sets for a batch job; everything else is Slurm's site default."""
    partition: str | None = None
    account: str | None = None
    time_limit: str = "01:00:00"  # sbatch --time
    mem: str | None = None  # sbatch --mem, e.g. "32G"
    extra_sbatch: list[str] = Field(default_factory=list)  # e.g. ["--qos=high"]; "#SBATCH" added
    setup: str = ""  # shell lines run before the worker, e.g. "module load cuda/12.4"
    max_requeues: int = Field(3, ge=0, le=100)  # TIMEOUT / PREEMPTED resubmissions

    @field_validator("time_limit")
    @classmethod
    def _time(cls, v: str) -> str:
        v = v.strip()
        if not _SLURM_TIME.match(v):
            raise ValueError(f"time_limit must be minutes, H:M:S or D-H:M:S, got {v!r}")
        return v

    @field_validator("mem")
    @classmethod
    def _mem(cls, v: str | None) -> str | None:
        if v is not None and not _SLURM_MEM.match(v.strip()):
            raise ValueError(f"mem must be a number with an optional K/M/G/T unit, got {v!r}")
        return v.strip() if v else v

    @field_validator("extra_sbatch")
    @classmethod
    def _extra(cls, v: list[str]) -> list[str]:
        out = []
        for line in v:
            line = line.strip().removeprefix("#SBATCH").strip()
            if not line.startswith("-") or "\n" in line:
                raise ValueError(f"extra_sbatch lines are sbatch options such as '--qos=high', "
                                 f"got {line!r}")
            out.append(line)
        return out

    @field_validator("partition", "account")
    @classmethod
    def _word(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or any(c.isspace() for c in v.strip())):
            raise ValueError(f"must be one word, got {v!r}")
        return v.strip() if v else v


class ComputeSpec(_Strict):
    """Where and how wide a run executes: data-parallel processes per node, nodes, executor."""
    executor: Literal["local", "slurm"] = "local"
    processes: int = Field(1, ge=1, le=64)  # data-parallel workers per node (torchrun)
    nodes: int = Field(1, ge=1, le=64)
    gpus_per_process: int = Field(0, ge=0, le=8)  # 0: CPU, or whatever model.device picks
    # how a train stage with several processes splits the work: "ddp" replicates the model (any
    # device); "fsdp" shards weights, gradients and optimizer state across GPUs (full fine-tuning)
    strategy: Literal["ddp", "fsdp"] = "ddp"
    slurm: SlurmSpec = Field(default_factory=SlurmSpec)

    @property
    def world_size(self) -> int:
        return self.processes * self.nodes

    @model_validator(mode="after")
    def _where(self) -> "ComputeSpec":
        if self.nodes > 1 and self.executor != "slurm":
            raise ValueError(f"nodes = {self.nodes} needs executor = \"slurm\" (a local run "
                             "has one machine)")
        return self


# trackers the Trainer can also report to -> the package each needs
TRACKERS = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb", "trackio": "trackio"}


class TrackingSpec(_Strict):
    """Trackers a train stage also reports to through the Trainer's own ``report_to``, besides the
    run log; all write locally under the run folder (W&B offline) unless their environment says
    otherwise (MLFLOW_TRACKING_URI, WANDB_MODE, ...)."""
    report_to: list[Literal["tensorboard", "mlflow", "wandb", "trackio"]] = Field(default_factory=list)

    @field_validator("report_to", mode="before")
    @classmethod
    def _names(cls, v: Any) -> Any:
        if v is None or v == "none" or v == ["none"]:
            return []
        if isinstance(v, str):
            v = [p.strip() for p in v.split(",") if p.strip()]
        if isinstance(v, list):
            bad = [x for x in v if isinstance(x, str) and x not in TRACKERS]
            if bad:
                raise ValueError(f"unknown tracker {bad[0]!r}; use {sorted(TRACKERS)} or \"none\"")
            v = list(dict.fromkeys(v))
            missing = [x for x in v if importlib.util.find_spec(TRACKERS[x]) is None]
            if missing:
                raise ValueError(f"report_to {missing[0]!r} needs the {TRACKERS[missing[0]]!r} "
                                 f"package: pip install {TRACKERS[missing[0]]}")
        return v


class RunConfig(_Strict):
    name: str = "run"
    preset: str = "custom"
    description: str = ""
    seed: int = 42
    # several seeds: one run per seed, grouped as one experiment (backend/experiments.py)
    seeds: list[int] = Field(default_factory=list)
    model: ModelSpec = Field(default_factory=ModelSpec)
    data: list[DatasetSpec] = Field(default_factory=list)
    judges: JudgeSpec = Field(default_factory=JudgeSpec)
    stages: list[Stage] = Field(default_factory=list)
    compute: ComputeSpec = Field(default_factory=ComputeSpec)
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if any(s < 0 for s in v) or len(set(v)) != len(v):
            raise ValueError(f"seeds must be distinct non-negative integers, got {v}")
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> "RunConfig":
        if self.compute.gpus_per_process and self.model.device == "cpu":
            raise FieldError(("compute", "gpus_per_process"), "model.device is \"cpu\"; set it to "
                             "\"auto\" or \"cuda\", or gpus_per_process = 0")
        if self.compute.strategy == "fsdp":
            # accelerate turns FSDP on for multi-GPU runs only: CPU processes would silently get DDP
            if not self.compute.gpus_per_process:
                raise FieldError(("compute", "strategy"), "FSDP shards across CUDA GPUs; set "
                                 "gpus_per_process >= 1, or strategy = \"ddp\" on CPU")
            lora = [st.name or f"stage {i}" for i, st in enumerate(self.stages)
                    if st.type == "train" and st.method == "lora"]
            if lora:
                raise FieldError(("compute", "strategy"), f"FSDP is for full fine-tuning; train "
                                 f"stage {lora[0]!r} uses LoRA (set method = \"full\", or "
                                 "strategy = \"ddp\")")
        names = [d.name for d in self.data]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise FieldError(("data",), f"duplicate data set names {dupes}")
        if self.data and all(d.budget is None for d in self.data) \
                and sum((d.weight or 0.0) for d in self.data) <= 0:
            raise FieldError(("data",), "mixture weights sum to zero; give at least one data set a "
                             "positive weight or a budget")
        if not self.stages:
            raise FieldError(("stages",), "the stage plan is empty")
        seen: dict[str, str] = {}
        for i, st in enumerate(self.stages):
            if not st.name:
                st.name = f"{st.type}{i}"
            if st.name in seen:
                raise FieldError(("stages", i, "name"), f"duplicate stage name {st.name!r}")
            for dname in getattr(st, "data", []) or []:
                if dname not in names:
                    raise FieldError(("stages", i, "data"), f"unknown data set {dname!r}; the "
                                     f"mixture has {names}")
            if getattr(st, "targets", "selected") == "reference" and not st.selection:
                raise FieldError(("stages", i, "targets"), "targets = \"reference\" trains on the "
                                 "references of a selection's prompts; set selection too")
            for ref_field in ("init", "source", "prompts", "samples", "selection"):
                ref = getattr(st, ref_field, None)
                if ref and ref.startswith(("run:", "sel:")):
                    continue  # a checkpoint or selection of an earlier run
                if ref and ref not in ("base", "previous") and ref not in seen:
                    raise FieldError(("stages", i, ref_field), f"{ref!r} is not an earlier stage")
            seen[st.name] = st.type
        return self

    # ---- helpers --------------------------------------------------------------------------------
    def stage_index(self, name: str) -> int:
        for i, st in enumerate(self.stages):
            if st.name == name:
                return i
        raise KeyError(name)

    def resolve_ref(self, idx: int, ref: str, want: str) -> int | None:
        """Index of the stage that `ref` ("previous" or a name) points to from stage idx."""
        if ref == "base":
            return None
        if ref == "previous":
            return next((j for j in range(idx - 1, -1, -1) if self.stages[j].type == want), None)
        return self.stage_index(ref)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(self.to_toml(), encoding="utf-8")
        tmp.replace(path)
        return path


def problems_of(exc: ValidationError) -> list[tuple[Loc, str]]:
    """pydantic's errors as (location, message): the message shows the bad value, and the
    discriminator tag pydantic puts in stage locations ("stages", 2, "train", "lr") is dropped."""
    out = []
    for err in exc.errors():
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, FieldError):
            out.append((cause.loc, cause.msg))
            continue
        loc = tuple(p for p in err["loc"] if not str(p).startswith("function-"))
        if loc[:1] == ("stages",) and len(loc) > 2 and loc[2] in STAGE_TYPES:
            loc = loc[:2] + loc[3:]
        value = err.get("input")
        shown = "" if isinstance(value, (dict, list)) or value is None else f" (got {value!r})"
        out.append((loc, err["msg"].removeprefix("Value error, ") + shown))
    return out


def check_dict(data: dict[str, Any]) -> tuple[RunConfig | None, list[tuple[Loc, str]]]:
    """The validated config, or None and every problem as (location, message)."""
    for i, st in enumerate(data.get("stages") if isinstance(data.get("stages"), list) else []):
        if isinstance(st, dict) and st.get("type") not in STAGE_TYPES:
            return None, [(("stages", i, "type"), f"unknown stage type {st.get('type')!r}; "
                                                  f"use one of {list(STAGE_TYPES)}")]
    data = dict(data)
    rounds = data.pop("rounds", None)  # multi-round ReSet: expanded into explicit stages
    try:
        cfg = RunConfig.model_validate(data)
    except ValidationError as exc:
        return None, problems_of(exc)
    if rounds is None:
        return cfg, []
    from .plans import with_rounds  # plans imports this module

    try:
        return with_rounds(cfg, rounds), []
    except FieldError as exc:
        return None, [(exc.loc, exc.msg)]
    except ValidationError as exc:
        return None, problems_of(exc)


def format_problems(found: list[tuple[Loc, str]], where: str = "") -> str:
    return f"invalid config {where}:\n  " + "\n  ".join(
        f"{'.'.join(map(str, loc)) or 'config'}: {msg}" for loc, msg in found)


def config_from_dict(data: dict[str, Any], where: str = "") -> RunConfig:
    cfg, found = check_dict(data)
    if cfg is None:
        raise ConfigError(format_problems(found, where))
    return cfg


def loads(text: str, where: str = "<string>") -> RunConfig:
    from .presets import resolve  # `extends` / `stage_defaults`; presets imports this module

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML: {exc}") from None
    return config_from_dict(resolve(data, where), where)


def load(path: str | Path) -> RunConfig:
    from .presets import resolve_file

    path = Path(path)
    cfg = config_from_dict(resolve_file(path), str(path))
    return absolutize(cfg, path.parent)


def absolutize(cfg: RunConfig, base: Path) -> RunConfig:
    """Data paths in a config are relative to the config file, or to the repo for assets/."""
    for d in cfg.data:
        for attr in ("source", "eval_source"):
            value = getattr(d, attr)
            if not value or Path(value).is_absolute():
                continue
            for root in (base, REPO_ROOT):
                candidate = (root / value).resolve()
                if candidate.exists():
                    setattr(d, attr, str(candidate))
                    break
    if cfg.model.base not in ("embedded",) and not cfg.model.base.startswith("run:"):
        candidate = (base / cfg.model.base)
        if candidate.exists():
            cfg.model.base = str(candidate.resolve())
    return cfg


def list_presets() -> dict[str, Path]:
    from .presets import list_presets as listed

    return listed()


def load_preset(name: str) -> RunConfig:
    presets = list_presets()
    if name not in presets:
        path = Path(name)
        if path.exists():
            return load(path)
        if path.suffix.lower() == ".toml" or "/" in name or "\\" in name:
            raise ConfigError(f"config file not found: {path}")
        raise ConfigError(f"unknown preset {name!r}; available: {', '.join(presets) or 'none'}")
    return load(presets[name])
