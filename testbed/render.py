"""``@NAME@`` template substitution for Asterisk and controller config templates.

Asterisk's own syntax uses ``${...}``, ``$[...]`` and ``[...]``, so a distinct, dumb marker keeps
templates readable and free of escaping. Rendering is strict: a placeholder without a value,
or a value nobody asked for, is an error naming the template, so a typo cannot leave a literal
``@AMI_SECRET@`` in a running config.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

PLACEHOLDER = re.compile(r"@([A-Z][A-Z0-9_]*)@")


class TemplateError(ValueError):
    """A template and its values do not match."""


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def render(text: str, values: Mapping[str, str], source: str = "<template>") -> str:
    """Replace every ``@NAME@`` with ``values[NAME]``; unknown names raise ``TemplateError``."""
    missing = sorted(placeholders(text) - values.keys())
    if missing:
        raise TemplateError(f"{source}: no value for {', '.join('@' + m + '@' for m in missing)}")
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], text)
