"""Keep the English translation complete: `python -m fivestar.i18n_tools update|check|compile`.

`update` extracts every Chinese message id from the code and templates, merges them into
`translations/en/LC_MESSAGES/messages.po` (new ones empty, vanished ones dropped) and compiles the
`.mo`. `check` lists message ids without an English translation (the test suite runs it too).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from fivestar.paths import PACKAGE_DIR, templates_dir, translations_dir

KEYWORDS = {"_": None, "_l": None, "gettext": None, "lazy_gettext": None, "ngettext": (1, 2)}
PO_PATH = translations_dir() / "en" / "LC_MESSAGES" / "messages.po"
MO_PATH = PO_PATH.with_suffix(".mo")


def extract() -> Catalog:
    catalog = Catalog(locale=None, project="fivestar", charset="utf-8")
    sources: list[tuple[Path, list[tuple[str, str]]]] = [
        (PACKAGE_DIR, [("**/migrations/**", "ignore"), ("**.py", "python")]),
        (templates_dir(), [("**.html", "jinja2"), ("**.txt", "jinja2")]),
    ]
    for root, method_map in sources:
        for filename, lineno, message, comments, context in extract_from_dir(
            str(root), method_map=method_map, keywords=KEYWORDS, comment_tags=("TRANSLATORS:",),
            options_map={"**.html": {"extensions": "jinja2.ext.do"}},
        ):
            catalog.add(message, None, [(f"{root.name}/{filename}", lineno)], auto_comments=comments, context=context)
    return catalog


def load_po() -> Catalog:
    if not PO_PATH.exists():
        return Catalog(locale="en", project="fivestar", charset="utf-8")
    with PO_PATH.open("rb") as handle:
        return read_po(handle, locale="en")


def missing_translations() -> list[str]:
    template = extract()
    translated = load_po()
    missing = []
    for message in template:
        if not message.id:
            continue
        found = translated.get(message.id, context=message.context)
        strings = found.string if found is not None else None
        empty = not all(strings) if isinstance(strings, tuple | list) else not strings
        if found is None or empty or found.fuzzy:
            missing.append(message.id if isinstance(message.id, str) else message.id[0])
    return missing


def compiled_bytes(catalog: Catalog) -> bytes:
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    return buffer.getvalue()


def update() -> int:
    catalog = load_po()
    catalog.update(extract(), update_header_comment=False)
    catalog.obsolete.clear()
    PO_PATH.parent.mkdir(parents=True, exist_ok=True)
    with PO_PATH.open("wb") as handle:
        write_po(handle, catalog, width=100, sort_output=False, include_previous=False)
    compile_mo()
    return len(missing_translations())


def compile_mo() -> None:
    MO_PATH.write_bytes(compiled_bytes(load_po()))


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "check"
    if command == "update":
        missing = update()
        print(f"updated {PO_PATH}; {missing} message(s) still need English")
        return 0
    if command == "compile":
        compile_mo()
        return 0
    missing_ids = missing_translations()
    for message_id in missing_ids:
        print(message_id)
    return 1 if missing_ids else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
