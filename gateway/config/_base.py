"""What every section of the configuration tree shares: the frozen model that refuses unknown
fields, the constrained number types and the validators for URLs and regular expressions."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError
from yarl import URL

Percent = Annotated[float, Field(ge=0, le=100)]
Port = Annotated[int, Field(ge=0, le=65535)]
PositiveFloat = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(gt=0)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def compiles(pattern: str, where: str = "") -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{where}invalid regular expression: {exc}") from None
    return pattern


def http_url(value: str) -> str:
    try:
        url = URL(value)
    except ValueError as exc:
        raise ValueError(f"not a URL: {exc}") from None
    if url.scheme not in ("http", "https"):
        raise ValueError(f"scheme must be http or https, got {url.scheme or 'none'!r}")
    if not url.host:
        raise ValueError("URL has no host")
    if url.query_string or url.fragment:
        raise ValueError("URL must not carry a query or fragment")
    return str(url).rstrip("/")


def conflict(message: str) -> PydanticCustomError:
    """An error between fields of one section, reported without the section's values (they
    may hold a secret)."""
    return PydanticCustomError("conflict", message)
