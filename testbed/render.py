"""``@NAME@`` substitution for the testbed's sipp scenarios (``testbed/scenarios/*.xml``).

Test-only: the Asterisk side and the controller config are not templates, they are rendered
from the site config by ``callctl render-conf`` (``controller/site``). sipp's own syntax uses
``[field]`` keywords, so a distinct, dumb marker keeps scenarios readable and free of escaping.
Rendering is strict: a placeholder without a value is an error naming the template, so a typo
cannot leave a literal ``@RING_S@`` in a running scenario.
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
