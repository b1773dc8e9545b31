"""Reading a YAML data file (policy, planning rules) into its pydantic model, with one error for every way it fails.

Policy an auditor tunes lives in YAML; a file that cannot be read, is not YAML or does not fit its model is
reported in one message naming the file and each field at fault, raised as the caller's own error type.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def load_model(path: Path, model: type[M], error: Callable[[str], Exception]) -> M:
    """`path` validated as `model`; `error(message)` is raised when it cannot be read, parsed or validated."""
    try:
        return model.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        raise error(f"{path}: " + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                            for e in exc.errors(include_url=False))) from None
