"""English is complete beside Chinese: every message id has a translation, compiled."""

from __future__ import annotations

from babel.messages.mofile import read_mo

from fivestar import i18n_tools


def test_every_message_has_an_english_translation() -> None:
    missing = i18n_tools.missing_translations()
    assert missing == [], f"{len(missing)} untranslated; run `python -m fivestar.i18n_tools update`: {missing[:20]}"


def test_compiled_catalogue_is_up_to_date() -> None:
    with i18n_tools.MO_PATH.open("rb") as handle:
        compiled = read_mo(handle)
    source = i18n_tools.load_po()
    expected = {message.id: message.string for message in source if message.id and not message.fuzzy}
    actual = {message.id: message.string for message in compiled if message.id}
    assert actual == expected, "run `python -m fivestar.i18n_tools compile`"
