"""The Jinja2 environment: templates from the package, every value autoescaped, and certificate text made
visible (control and bidi characters shown as escapes, as on the terminal) before it is escaped."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import jinja2
from aiohttp import web

from ctsentinel.terminal import safe_text
from ctsentinel.timefmt import rfc3339


def _visible(value: object) -> str:
    if value is None:
        return ""
    return safe_text(str(value))


def _when(value: datetime | None) -> str:
    return "" if value is None else rfc3339(value)


def make_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("ctsentinel.web", "templates"),
        autoescape=True,  # every template, whatever its name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["visible"] = _visible
    env.filters["when"] = _when
    return env


_ENVIRONMENT = make_environment()


def render(template: str, context: Mapping[str, Any], *, status: int = 200) -> web.Response:
    body = _ENVIRONMENT.get_template(template).render(**context)
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")
