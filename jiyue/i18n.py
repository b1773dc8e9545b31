"""Report labels in Chinese (the default) and English, kept in one place for every domain.

Labels live in `jiyue/labels/*.yaml`, one file per domain (`common.yaml`, `audit.yaml`, and later
`baseline.yaml`, `network.yaml`, `migration.yaml`), each mapping a dotted key to its two texts::

    verdict.zombie: {zh: 僵尸, en: Zombie}

A key defined twice, or a label missing a language, is an error when the labels load: a report
must never show a raw key in one language only. Enum values are looked up as `PREFIX.VALUE`
(`category.public_service`, `zone.extranet`) with `enum_label`.
"""

from __future__ import annotations

from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any

import yaml

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"
LABEL_DIR = Path(__file__).resolve().parent / "labels"


class LabelError(ValueError):
    pass


def check_lang(lang: str) -> str:
    if lang not in LANGS:
        raise LabelError(f"unknown language {lang!r}: use one of {', '.join(LANGS)}")
    return lang


@cache
def labels() -> dict[str, dict[str, str]]:
    """Every label of every domain: {key: {"zh": …, "en": …}}."""
    out: dict[str, dict[str, str]] = {}
    for path in sorted(LABEL_DIR.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for key, texts in data.items():
            if key in out:
                raise LabelError(f"{path.name}: label {key!r} is already defined in another labels file")
            if not isinstance(texts, dict) or any(not isinstance(texts.get(lang), str) for lang in LANGS):
                raise LabelError(f"{path.name}: label {key!r} needs a text for each of {', '.join(LANGS)}")
            out[str(key)] = {lang: texts[lang] for lang in LANGS}
    return out


def t(key: str, lang: str = DEFAULT_LANG, **fmt: Any) -> str:
    """The label for `key` in `lang`, with `{name}` placeholders filled from `fmt`."""
    try:
        text = labels()[key][check_lang(lang)]
    except KeyError:
        raise LabelError(f"no label {key!r}: add it to a file in {LABEL_DIR}") from None
    return text.format(**fmt) if fmt else text


def has(key: str) -> bool:
    return key in labels()


def enum_label(prefix: str, value: Enum | str | None, lang: str = DEFAULT_LANG) -> str:
    """`category` + Category.public_service -> 公共服务; an unknown value is shown as it is."""
    if value is None:
        return ""
    raw = value.value if isinstance(value, Enum) else str(value)
    key = f"{prefix}.{raw}"
    return t(key, lang) if has(key) else raw


def bilingual(text: str, lang: str = DEFAULT_LANG) -> str:
    """Pick one side of a "中文 / English" message (the form audit criteria use); others pass through."""
    zh, sep, en = text.partition(" / ")
    if not sep:
        return text
    return zh if check_lang(lang) == "zh" else en


def translator(lang: str):
    """A one-argument `t` bound to a language, for templates (`{{ t('key') }}`)."""
    check_lang(lang)

    def _t(key: str, **fmt: Any) -> str:
        return t(key, lang, **fmt)

    return _t
