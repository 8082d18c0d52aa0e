"""Code blocks compared as code: token by token with whitespace, line breaks and comments
left out, so reformatting stays quiet and a changed operator (`<=` → `<`), constant or name
inside a function is found. Blocks are paired in order; a block added or dropped is noted."""

from __future__ import annotations

import re
from typing import Final

from rapidfuzz.distance import Levenshtein

from gateway.records import Evidence
from scoring.signals._pair import PairView, evidence
from scoring.signals.parse import CodeBlock

_TOKEN: Final = re.compile(
    r"""(?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`(?:\\.|[^`\\])*`)"""
    r"|(?P<number>\d+(?:\.\d+)?(?:e[+-]?\d+)?)"
    r"|(?P<word>[A-Za-z_]\w*)"
    r"|(?P<op>===|!==|\*\*=|//=|>>=|<<=|==|!=|<=|>=|\*\*|//|&&|\|\||->|=>|<<|>>|\+=|-=|\*=|/=|%="
    r"|::|\+\+|--|[^\s\w])",
    re.S,
)
_HASH_COMMENTS: Final = frozenset(
    "python py sh bash shell ruby rb yaml yml toml r perl makefile dockerfile".split()
)
_DASH_COMMENTS: Final = frozenset({"sql", "lua", "haskell", "hs"})
_OPTIONAL_SEMICOLON: Final = frozenset(
    "javascript js typescript ts jsx tsx go kotlin swift scala sql python py".split()
)


def _strip_comments(code: str, language: str) -> str:
    if language in _HASH_COMMENTS:
        return re.sub(r"(?m)(?<![\"'\w])#.*$", "", code)
    if language in _DASH_COMMENTS:
        return re.sub(r"(?m)--.*$", "", code)
    code = re.sub(r"/\*.*?\*/", "", code, flags=re.S)
    return re.sub(r"(?m)(?<![:\"'])//.*$", "", code)


def code_tokens(block: CodeBlock) -> list[tuple[str, int, int]]:
    """(token, start, end) of a block's code, offsets into the answer text."""
    code = _strip_comments(block.code, block.language)
    # Comments are cut, so offsets are recomputed against the original code.
    out = []
    at = 0
    optional_semicolon = block.language in _OPTIONAL_SEMICOLON
    for m in _TOKEN.finditer(code):
        token = m.group()
        if optional_semicolon and token == ";":
            continue
        where = block.code.find(token, at)
        where = where if where >= 0 else at
        at = where + len(token)
        out.append((token, block.start + where, block.start + where + len(token)))
    # A trailing comma before a closing bracket is style, not meaning.
    return [
        t
        for n, t in enumerate(out)
        if not (t[0] == "," and n + 1 < len(out) and out[n + 1][0] in ")]}")
    ]


def compare(pair: PairView) -> list[Evidence]:
    p, c = pair.production, pair.candidate
    if not p.code and not c.code:
        return []
    found: list[Evidence] = []
    for before, after in zip(p.code, c.code, strict=False):
        a, b = code_tokens(before), code_tokens(after)
        if [t[0] for t in a] == [t[0] for t in b]:
            continue
        for op in Levenshtein.opcodes([t[0] for t in a], [t[0] for t in b]):
            if op.tag == "equal":
                continue
            old = a[op.src_start : op.src_end]
            new = b[op.dest_start : op.dest_end]
            old_text = " ".join(t[0] for t in old)
            new_text = " ".join(t[0] for t in new)
            p_span = (old_text, old[0][1], old[-1][2]) if old else None
            c_span = (new_text, new[0][1], new[-1][2]) if new else None
            found.append(
                evidence(
                    "code",
                    "high",
                    f"code `{old_text or '∅'}` → `{new_text or '∅'}`",
                    p_span,
                    c_span,
                )
            )
    if len(p.code) != len(c.code):
        found.append(evidence("code", "medium", f"{len(p.code)} code blocks → {len(c.code)}"))
    return found
