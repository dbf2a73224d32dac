"""Reading a YAML recipe into a strict, typed schema: the one loader every recipe kind (and
the board's submission file) uses.

Unknown keys are errors (a typo such as ``learning_rte`` must not silently run with the
default), and every error names the file and the field.
"""
from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError


# The project's shipped recipes (recipes/training, recipes/merges, recipes/studies, ...).
RECIPES_DIR = Path(__file__).resolve().parents[1] / "recipes"


class RecipeError(ValueError):
    """A recipe that cannot be run; the message names the file and the field."""


def beside(folder: str | Path, paths: list[str]) -> list[str]:
    """``paths`` as a recipe file means them: a relative one is relative to the file's folder,
    wherever the command runs from."""
    return [p if Path(p).is_absolute() else str((Path(folder) / p).resolve()) for p in paths]


class Strict(BaseModel):
    """A recipe section: unknown keys refused, values frozen once read."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _format_errors(source: str, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            lines.append(f"{source}: {where}: unknown key")
        elif e["type"] == "missing":
            lines.append(f"{source}: {where}: required key is missing")
        else:
            got = repr(e.get("input"))  # a value can be megabytes: the message names it, briefly
            lines.append(f"{source}: {where}: {e['msg']} (got {got[:200] + ' ...' if len(got) > 200 else got})")
    return "\n".join(lines)


def validate_mapping(schema: type[BaseModel], data: object, source: str):
    """``data`` checked against a recipe schema; errors name the source and the field."""
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: expected a YAML mapping of fields, not {type(data).__name__}")
    try:
        return schema.model_validate(data)
    except ValidationError as err:
        raise RecipeError(_format_errors(source, err)) from None


def read_recipe_yaml(path: str | Path) -> object:
    """A recipe file's YAML; a missing file or a syntax error names the file and line."""
    from plumbing.yaml_data import AliasBomb, load_yaml_data

    path = Path(path)
    try:
        return load_yaml_data(path.read_text(), path)
    except AliasBomb as err:
        raise RecipeError(str(err)) from None
    except FileNotFoundError:
        raise RecipeError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise RecipeError(f"{path}: cannot read it ({err})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise RecipeError(f"{path}{where}: not valid YAML ({getattr(err, 'problem', err)})") from None


