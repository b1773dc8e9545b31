"""Each platform's CLI as data, and its configuration parsed as hier_config sees it.

What differs between platforms (commands, prompts, error texts, commit features, which hier_config
driver parses the configuration) is data in `jiyue/platforms.yaml`; `cli(platform)` reads it. The
device sessions (jiyue.device), the push engine and the graded-protection device checks all read
configurations through `parse`, so a configuration means the same to every one of them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from hier_config import HConfig, Platform, get_hconfig

PLATFORMS_FILE = Path(__file__).resolve().with_name("platforms.yaml")
_SEPARATOR = re.compile(r"^[#!]\s*$")  # at column 0; IOS's indented " !" inside a section is not one


@dataclass(frozen=True)
class Commit:
    method: str  # none, trial, delay, revert_timer
    arm: str = ""
    confirm: str = ""
    abort: str = ""
    seconds: int = 600
    minutes: int = 10

    def arm_command(self) -> str:
        return self.arm.format(seconds=self.seconds, minutes=self.minutes)

    @property
    def timer_seconds(self) -> float:
        """How long the vendor's safety net waits before it undoes an unconfirmed change (VRP8's trial
        in seconds, Comware's delay and IOS's revert timer in minutes). A platform without one (`none`)
        gives the same length in `seconds`: the push engine derives every device's deadline from it."""
        return float(self.minutes * 60 if self.method in ("delay", "revert_timer") else self.seconds)


@dataclass(frozen=True)
class PlatformCLI:
    """One platform's CLI as jiyue/platforms.yaml describes it."""

    name: str
    device_type: str
    hier_config: str
    negation: str
    show_running: str
    enter_config: str
    leave_config: tuple[str, ...]
    config_prompt: str
    error_pattern: str
    save: dict[str, str]
    commit: Commit
    ignore: tuple[str, ...]
    paging_off: str = ""
    leave_question: str = ""
    leave_answer: str = "n"
    cmd_verify: bool = True
    negate_rewrite: tuple[tuple[str, str], ...] = ()
    section_exit: str = ""
    _ignore_re: re.Pattern = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_ignore_re", re.compile("|".join(f"(?:{p})" for p in self.ignore)))

    def rewrite(self, line: str) -> str:
        """A line to send, with the platform's negation rewrites applied."""
        for pattern, replacement in self.negate_rewrite:
            line = re.sub(pattern, replacement, line)
        return line

    def config_text(self, raw: str) -> str:
        """The running config as configuration only: `show` banners, comments and separators gone.

        A separator line (`#`, `!`) starts a new top-level block; a block whose first line is
        indented (Comware prints global commands with one leading space) is shifted left by that
        much, so every top-level command parses as top-level whatever the vendor's layout."""
        out: list[str] = []
        base: int | None = 0
        for line in raw.replace("\r", "").splitlines():
            line = line.rstrip()
            if _SEPARATOR.match(line):
                base = None
                continue
            if not line.strip() or self._ignore_re.search(line):
                continue
            indent = len(line) - len(line.lstrip())
            if base is None:
                base = indent
            out.append(line[min(base, indent):])
        return "\n".join(out) + "\n"


@cache
def _platform_data() -> dict[str, Any]:
    return yaml.safe_load(PLATFORMS_FILE.read_text(encoding="utf-8"))


@cache
def cli(platform: str) -> PlatformCLI:
    """The CLI description of a platform (`huawei_vrp`, `huawei_vrpv8`, `hp_comware`, `cisco_ios`, `ruijie_os`)."""
    data = dict(_platform_data().get(str(platform)) or {})
    if not data:
        raise KeyError(f"{PLATFORMS_FILE.name} has no platform {platform!r}")
    return PlatformCLI(
        name=str(platform), device_type=data["device_type"], hier_config=data["hier_config"],
        negation=data["negation"], show_running=data["show_running"], enter_config=data["enter_config"],
        leave_config=tuple(data["leave_config"]), config_prompt=data["config_prompt"],
        error_pattern=data["error_pattern"], save=dict(data["save"]), commit=Commit(**data["commit"]),
        ignore=tuple(data.get("ignore", ())), paging_off=data.get("paging_off", ""),
        leave_question=data.get("leave_question", ""), leave_answer=data.get("leave_answer", "n"),
        cmd_verify=bool(data.get("cmd_verify", True)),
        negate_rewrite=tuple((str(a), str(b)) for a, b in data.get("negate_rewrite", ())),
        section_exit=data.get("section_exit", ""))


@cache
def _hier_config_platform(name: str) -> Platform:
    return Platform[cli(name).hier_config]


def parse(platform: str, text: str | Sequence[str]) -> HConfig:
    """A configuration (running-config text, or intended lines with one-space indentation) as hier_config."""
    if not isinstance(text, str):
        text = "\n".join(text)
    return get_hconfig(_hier_config_platform(platform), cli(platform).config_text(text))
