"""Word alignment of two answers: the blocks where they differ, found with rapidfuzz's
Levenshtein opcodes over word tokens (about 40x faster than difflib on 200-word answers and
free of its junk heuristic). Signals look only at these blocks; a sentence that moved shows
as a deletion in one place and an insertion in another, and signals match the two up."""

from __future__ import annotations

from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein

from scoring.signals._text import Token


@dataclass(frozen=True, slots=True)
class Change:
    """Tokens [p0, p1) of production replaced by tokens [c0, c1) of the candidate."""

    p0: int
    p1: int
    c0: int
    c1: int


def changes(production: list[Token], candidate: list[Token]) -> list[Change]:
    """Blocks of differing tokens, adjacent edits merged into one block."""
    a = [t.norm for t in production]
    b = [t.norm for t in candidate]
    if a == b:
        return []
    blocks: list[Change] = []
    for op in Levenshtein.opcodes(a, b):
        if op.tag == "equal":
            continue
        last = blocks[-1] if blocks else None
        if last is not None and last.p1 == op.src_start and last.c1 == op.dest_start:
            blocks[-1] = Change(last.p0, op.src_end, last.c0, op.dest_end)
        else:
            blocks.append(Change(op.src_start, op.src_end, op.dest_start, op.dest_end))
    return blocks


def changed_mask(length: int, blocks: list[Change], side: str) -> list[bool]:
    """Per token of one side (`production` or `candidate`): inside a changed block?"""
    mask = [False] * length
    for block in blocks:
        start, end = (block.p0, block.p1) if side == "production" else (block.c0, block.c1)
        for i in range(start, end):
            mask[i] = True
    return mask
