"""Ready-to-paste PyTorch code for a ``TrialConfig``: the optimizer and the LR scheduler, nothing else.

Torch-free (it only writes text), so the service, the SDK and the CLI all render the same snippet.

Where it can, the snippet is plain PyTorch (plus ``pytorch_optimizer`` for families that live there): a
reader sees every number and needs no optforge at training time. It mirrors what optforge trains with:
weight decay on matrices only (biases and norm gains get none), and the schedule as a factor on each
group's LR. Families built by an optforge builder (composites such as Muon + AdamW) and μP configurations
need optforge's parameter routing, so for those the snippet calls ``optforge.engine`` instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from optforge.catalog import Value, get_family, get_schedule
from optforge.spec._trial import TrialConfig

# Each schedule as the body of ``lr_factor(step)``: the multiplier on every group's peak LR after ``step``
# optimizer steps, the same formulas as ``optforge.engine.schedules.lr_factor``. Names in capitals are
# the schedule's parameters; warmup is linear over WARMUP_STEPS, the decay runs over the steps after it.
_WARMUP = """    if step < WARMUP_STEPS:
        return (step + 1) / (WARMUP_STEPS + 1)
    after = step - WARMUP_STEPS
    progress = min(1.0, after / max(1, TOTAL_STEPS - WARMUP_STEPS))
"""
_FACTOR_BODIES: dict[str, str] = {
    "constant": """    if step < WARMUP_STEPS:
        return (step + 1) / (WARMUP_STEPS + 1)
    return 1.0
""",
    "cosine": _WARMUP + "    return MIN_LR_RATIO + (1 - MIN_LR_RATIO) * 0.5 * (1 + math.cos(math.pi * progress))\n",
    "linear": _WARMUP + "    return MIN_LR_RATIO + (1 - MIN_LR_RATIO) * (1 - progress)\n",
    "polynomial": _WARMUP + "    return MIN_LR_RATIO + (1 - MIN_LR_RATIO) * (1 - progress) ** POWER\n",
    "wsd": """    if step < WARMUP_STEPS:
        return (step + 1) / (WARMUP_STEPS + 1)
    start = max(WARMUP_STEPS, TOTAL_STEPS - round(DECAY_FRACTION * TOTAL_STEPS))
    if step < start:
        return 1.0
    q = min(1.0, (step - start) / max(1, TOTAL_STEPS - start))
    return MIN_LR_RATIO + (1 - MIN_LR_RATIO) * (1 - q if COOLDOWN == "linear" else 1 - math.sqrt(q))
""",
    "sgdr": _WARMUP
    + """    t, cycle = after, max(1, round(FIRST_CYCLE_FRACTION * TOTAL_STEPS))
    while t >= cycle:
        t, cycle = t - cycle, cycle * CYCLE_MULT
    return MIN_LR_RATIO + (1 - MIN_LR_RATIO) * 0.5 * (1 + math.cos(math.pi * t / cycle))
""",
    "inverse_sqrt": """    if step < WARMUP_STEPS:
        return (step + 1) / (WARMUP_STEPS + 1)
    return math.sqrt(max(WARMUP_STEPS, 1) / max(step, 1))
""",
    "one_cycle": """    # OneCycleLR's two-phase cosine (anneal_strategy="cos"), as a factor of the peak LR.
    start, end = 1 / DIV_FACTOR, 1 / (DIV_FACTOR * FINAL_DIV_FACTOR)
    peak, last, step = WARMUP_FRACTION * TOTAL_STEPS - 1, TOTAL_STEPS - 1, min(step, TOTAL_STEPS - 1)
    if step <= peak:
        return 1.0 + (start - 1.0) / 2 * (math.cos(math.pi * step / peak) + 1) if peak > 0 else 1.0
    if last <= peak:
        return 1.0
    return end + (1.0 - end) / 2 * (math.cos(math.pi * (step - peak) / (last - peak)) + 1)
""",
}


def _py(value: object) -> str:
    """A Python literal for ``value`` (floats in their shortest exact repr)."""
    if isinstance(value, tuple):
        return "(" + ", ".join(_py(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def _kwargs(family_name: str, hparams: Mapping[str, Value]) -> tuple[float, float, dict[str, object]]:
    """``(lr, weight_decay, other constructor kwargs)`` with betas packed as the constructor wants them."""
    family = get_family(family_name)
    kwargs: dict[str, object] = dict(family.fixed)
    betas = [hparams[b] for b in ("beta1", "beta2", "beta3") if b in hparams] if family.pack_betas else []
    for name, value in hparams.items():
        if not (family.pack_betas and name in ("beta1", "beta2", "beta3")):
            kwargs[name] = value
    if betas:
        kwargs["betas"] = tuple(betas)
    lr = float(kwargs.pop("lr"))  # type: ignore[arg-type]
    weight_decay = float(kwargs.pop("weight_decay", 0.0))  # type: ignore[arg-type]
    return lr, weight_decay, kwargs


def _schedule_code(config: TrialConfig) -> list[str]:
    params = config.resolved_schedule_params()
    body = _FACTOR_BODIES[config.schedule]
    lines = [f"# Schedule {config.schedule!r}: {get_schedule(config.schedule).doc}."]
    for name, value in params.items():
        if name == "warmup_fraction" and "WARMUP_STEPS" in body:
            lines.append(f"WARMUP_STEPS = round({_py(value)} * TOTAL_STEPS)")
        elif name.upper() in body:
            lines.append(f"{name.upper()} = {_py(value)}")
    lines += ["", "", "def lr_factor(step: int) -> float:", body.rstrip("\n"), "", ""]
    lines.append("scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)")
    return lines


def _plain_torch(config: TrialConfig) -> list[str]:
    family = get_family(config.family)
    module, _, attr = family.constructor.partition(":")
    lr, weight_decay, kwargs = _kwargs(config.family, config.resolved_hparams())
    lines = [
        "def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:",
        '    """Weight decay on weight matrices only: biases and norm gains get none (as optforge trains)."""',
        "    params = [p for p in model.parameters() if p.requires_grad]",
        "    return [",
        '        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},',
        '        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},',
        "    ]",
        "",
        "",
        f"optimizer = {module}.{attr}(",
        f"    param_groups(model, weight_decay={_py(weight_decay)}),",
        f"    lr={_py(lr)},",
        *[f"    {name}={_py(value)}," for name, value in kwargs.items()],
        ")",
    ]
    return lines


def _via_optforge(config: TrialConfig) -> list[str]:
    payload = json.dumps(config.model_dump(mode="json"), sort_keys=True)
    return [
        f"config = TrialConfig.model_validate_json({payload!r})",
        "optimizer = build_optimizer(model, config)",
        "scheduler = build_scheduler(optimizer, config, total_steps=TOTAL_STEPS)",
    ]


def pytorch_snippet(config: TrialConfig, *, total_steps: int, header: str = "") -> str:
    """PyTorch code that builds ``optimizer`` and ``scheduler`` for a ``model`` already in scope.

    ``total_steps`` is the horizon the schedule was tuned for; call ``scheduler.step()`` once per
    ``optimizer.step()``. ``header`` becomes a leading comment (e.g. where the configuration came from).
    """
    module = get_family(config.family).constructor.partition(":")[0]
    lines = [f"# {line}" for line in header.splitlines()] if header else []
    plain = not config.mup and not module.startswith("optforge") and config.schedule in _FACTOR_BODIES
    if plain:
        needs_math = "math." in _FACTOR_BODIES[config.schedule]
        lines += [*(["import math", ""] if needs_math else []), "import torch"]
        lines += [f"import {module}"] if module != "torch.optim" else []
    else:
        why = "μP" if config.mup else f"family {config.family!r} is built by optforge"
        lines += [
            f"# {why}: this configuration needs optforge's parameter routing (pip install 'optforge[engine]').",
            "import torch",
            "",
            "from optforge.engine.optimizers import build_optimizer",
            "from optforge.engine.schedules import build_scheduler",
            "from optforge.spec import TrialConfig",
        ]
    lines += [
        "",
        f"TOTAL_STEPS = {total_steps}  # the horizon it was tuned for: scheduler.step() after each optimizer.step()",
    ]
    if not plain:
        return "\n".join([*lines, "", *_via_optforge(config)]) + "\n"
    return "\n".join([*lines, "", "", *_plain_torch(config), "", *_schedule_code(config)]) + "\n"
