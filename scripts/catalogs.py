"""Bring the translation catalogs up to date with the code and templates, in one step.

    .venv/bin/python scripts/catalogs.py [--zh new.json ...]

1. extracts every message (``pybabel extract -F babel.cfg -k lazy_gettext``) into
   ``translations/messages.pot`` and updates ``translations/{zh,en}`` from it, dropping
   obsolete entries and never guessing a translation (no fuzzy matching);
2. fills the English catalog (message ids are the English text) and adds the Chinese
   translations of each ``--zh`` file (a JSON object: English id → Chinese);
3. compiles the ``.mo`` files, and lists the ids still without a Chinese translation.

It holds a lock on ``translations/.lock`` while it works, so several people (or scripts)
running it at once do not overwrite each other's catalogs.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "translations"
PYBABEL = str(Path(sys.executable).with_name("pybabel"))


def _run(*args: str) -> None:
    subprocess.run([PYBABEL, "--quiet", *args], cwd=ROOT, check=True)


def _po(lang: str) -> Path:
    return TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po"


def update(chinese: dict[str, str]) -> list[str]:
    """Extract, update, translate and compile; the ids still untranslated in Chinese."""
    _run("extract", "-F", "babel.cfg", "-k", "lazy_gettext", "--no-location", "--sort-output",
         "--project", "science-event-scheduler", "--version", "0.1.0", "-o", "translations/messages.pot", ".")
    _run("update", "-i", "translations/messages.pot", "-d", "translations", "--ignore-obsolete", "--no-fuzzy-matching")
    missing: list[str] = []
    for lang in ("en", "zh"):
        with _po(lang).open("rb") as file:
            catalog = read_po(file)
        catalog.fuzzy = False
        for message in catalog:
            if not message.id:
                continue
            if lang == "en":
                message.string = message.id
            elif message.id in chinese:
                message.string = chinese[message.id]
            elif not message.string:
                missing.append(str(message.id))
            if message.string and message.fuzzy:
                message.flags.discard("fuzzy")
        with _po(lang).open("wb") as file:
            write_po(file, catalog, width=76, sort_output=True)
        _run("compile", "-i", str(_po(lang)), "-o", str(_po(lang).with_suffix(".mo")))
    return missing


def main() -> int:
    """Parse the arguments, take the lock, update the catalogs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zh", action="append", default=[], type=Path, help="JSON: English id → Chinese")
    args = parser.parse_args()
    chinese: dict[str, str] = {}
    for path in args.zh:
        chinese.update(json.loads(path.read_text(encoding="utf-8")))
    with (TRANSLATIONS / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        missing = update(chinese)
    for message_id in missing:
        print(f"untranslated (zh): {message_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
