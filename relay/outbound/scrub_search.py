"""Finding a pair's addresses in text without compiling a pattern for the pair.

Owns ``replace``: the matches of relay.outbound.scrub_forms' one pattern
(``address_pattern``), exactly, replaced, found without compiling that
pattern, which costs ~15 ms per pair and most messages of a relay serving
thousands of pairs would pay it. Only small patterns are compiled, once per
character (and once for the invisible characters) for all pairs.

How: every address holds an "@", so every match holds a form of it. The
forms of "@" are found with one pattern compiled at import. From each, the
local part is read backwards (on the reversed text, where a form of a
character is a small reversed pattern), through invisible characters,
giving every place a match could start. From those places, left to right,
the match itself is made forwards the way the regular-expression engine
makes it: addresses in the pattern's order, each character's forms in
order, a ";" taken before it is left, invisible characters taken greedily
and given back one by one (backtracking; results remembered per place).
Where the text makes that too much work (a budget of steps, a nesting
bound), or an address has no "@", the one pattern is compiled and used.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass

from relay.outbound.scrub_forms import Piece, char_pieces, compiled_pattern, invisible

Matcher = Callable[[str, int], "re.Match[str] | None"]

# Steps (piece look-ups, ~2-3 us each) one text may take before the one pattern is
# compiled instead: a few dozen for a letter with quoted addresses. With more "@" forms
# times addresses than AT_BOUND the search is not tried at all. Both bounds keep a text
# made of thousands of "@" forms or invisible characters from costing much more than the
# compile it would have cost before.
STEP_BUDGET = 5_000
AT_BOUND = 1_000
# Nested calls of the forward search (two per character plus one per invisible
# character taken), kept well inside Python's recursion limit.
DEPTH_BOUND = 300


class _GiveUp(Exception):
    """This text takes more work than compiling the one pattern."""


@dataclass(frozen=True)
class _Compiled:
    forward: Matcher
    backward: Matcher
    semicolon: bool


@dataclass(frozen=True)
class _Forms:
    """A set of pieces (one character's forms, or the invisible characters), compiled."""

    pieces: tuple[_Compiled, ...]
    any_forward: Matcher  # None: no piece starts here
    any_backward: Matcher  # None (on the reversed text): no piece ends here


def _compile(pieces: tuple[Piece, ...]) -> _Forms:
    def one(source: str) -> Matcher:
        return re.compile(source, re.IGNORECASE).match

    return _Forms(
        tuple(_Compiled(one(p.forward), one(p.backward), p.semicolon) for p in pieces),
        one("(?:" + "|".join(p.forward for p in pieces) + ")"),
        one(";?(?:" + "|".join(p.backward for p in pieces) + ")"),
    )


@functools.lru_cache(maxsize=4096)
def _char_forms(char: str) -> _Forms:
    return _compile(char_pieces(char))


@functools.lru_cache(maxsize=2)
def _invisible_forms(markup: bool) -> _Forms:
    return _compile(invisible(markup))


# Each form of "@" starts with one of @ % & = \ and holds none of them after its first
# character, so no form starts inside another: finditer's matches, which do not overlap,
# start at every form (a lookahead would find the same, five times slower).
_AT_FORMS = re.compile("|".join(piece.forward for piece in char_pieces("@")), re.IGNORECASE)


def replace(addresses: tuple[str, ...], text: str, replacement: str, markup: bool) -> str:
    """``address_pattern(addresses, markup=markup).sub(replacement, text)``, found faster.

    ``addresses`` in scrub_forms.search_order.
    """
    if not addresses:
        return text
    spans = find(addresses, text, markup) if "\\" not in replacement else None
    if spans is None:  # sub() reads escapes in a replacement; so does the fallback
        return compiled_pattern(addresses, markup).sub(replacement, text)
    if not spans:
        return text
    pieces = []
    position = 0
    for start, end in spans:
        pieces += [text[position:start], replacement]
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def find(addresses: tuple[str, ...], text: str, markup: bool) -> list[tuple[int, int]] | None:
    """The spans the one pattern's sub() would replace; None where it must be compiled."""
    if not all("@" in address for address in addresses):
        return None
    most = AT_BOUND // len(addresses)
    at_forms = [found.start() for found in itertools.islice(_AT_FORMS.finditer(text), most + 1)]
    if not at_forms:
        return []
    if len(at_forms) > most:
        return None
    search = _Search(text, _invisible_forms(markup))
    try:
        starts: set[int] = set()
        for address in addresses:
            for at in at_forms:
                starts |= search.starts(address, at)
        spans = []
        position = 0
        for start in sorted(starts):
            if start < position:
                continue
            for address in addresses:
                end = search.match(address, start)
                if end >= 0:
                    spans.append((start, end))
                    position = end
                    break
        return spans
    except (_GiveUp, RecursionError):  # a caller already deep (nested parts) has less room
        return None


class _Search:
    """One text's search; remembers what it learnt about each place."""

    def __init__(self, text: str, hidden: _Forms) -> None:
        self.text = text
        self.length = len(text)
        self.reversed = text[::-1]
        self.hidden = hidden
        self.steps = STEP_BUDGET
        self.hidden_before: dict[int, list[int]] = {}
        self.results: dict[tuple[str, int, int, bool], int] = {}

    def _step(self) -> None:
        self.steps -= 1
        if self.steps < 0:
            raise _GiveUp

    # -- right to left: where could a match that reaches this "@" start? ------------

    def starts(self, address: str, at: int) -> set[int]:
        """Every place from which address's part before its first "@" reaches ``at``."""
        frontier = {at}
        for char in reversed(address[: address.index("@")]):
            forms = _char_forms(char)
            frontier = {
                start
                for end in self._through_hidden(frontier)
                for start in self._backward(forms, end)
            }
            if not frontier:
                break
        return frontier

    def _through_hidden(self, ends: set[int]) -> set[int]:
        """The places reached from ``ends`` going back over any number of invisible pieces."""
        seen = set(ends)
        todo = list(ends)
        while todo:
            end = todo.pop()
            before = self.hidden_before.get(end)
            if before is None:
                before = self.hidden_before[end] = self._backward(self.hidden, end)
            for start in before:
                if start not in seen:
                    seen.add(start)
                    todo.append(start)
        return seen

    def _backward(self, forms: _Forms, end: int) -> list[int]:
        """Where each piece that ends at ``end`` starts."""
        self._step()
        at = self.length - end
        if forms.any_backward(self.reversed, at) is None:
            return []
        starts = []
        semicolon = end > 0 and self.text[end - 1] == ";"
        for piece in forms.pieces:
            found = piece.backward(self.reversed, at)
            if found is not None:
                starts.append(self.length - found.end())
            if piece.semicolon and semicolon:
                found = piece.backward(self.reversed, at + 1)
                if found is not None:
                    starts.append(self.length - found.end())
        return starts

    # -- left to right: the match the engine would make ----------------------------------

    def match(self, address: str, start: int) -> int:
        """Where the pattern's alternative for address, tried at ``start``, ends; -1: none."""
        return self._char(address, 0, start, 0)

    def _forward(self, forms: _Forms, start: int) -> list[int]:
        """Every end of every piece at ``start``, in the order the engine tries them."""
        self._step()
        text = self.text
        if forms.any_forward(text, start) is None:
            return []
        ends = []
        for piece in forms.pieces:
            found = piece.forward(text, start)
            if found is not None:
                end = found.end()
                if piece.semicolon and text.startswith(";", end):
                    ends.append(end + 1)  # ";?" is greedy: with the ";" first
                ends.append(end)
        return ends

    def _char(self, address: str, index: int, start: int, depth: int) -> int:
        """Character ``index`` in one of its forms at ``start``, then the rest."""
        key = (address, index, start, False)
        known = self.results.get(key)
        if known is not None:
            return known
        if depth > DEPTH_BOUND:
            raise _GiveUp
        result = -1
        last = index == len(address) - 1
        for end in self._forward(_char_forms(address[index]), start):
            result = end if last else self._hidden(address, index + 1, end, depth + 1)
            if result >= 0:
                break
        self.results[key] = result
        return result

    def _hidden(self, address: str, index: int, start: int, depth: int) -> int:
        """Invisible pieces, as many as can be taken, then character ``index`` and the rest."""
        key = (address, index, start, True)
        known = self.results.get(key)
        if known is not None:
            return known
        if depth > DEPTH_BOUND:
            raise _GiveUp
        result = -1
        for end in self._forward(self.hidden, start):
            result = self._hidden(address, index, end, depth + 1)
            if result >= 0:
                break
        if result < 0:
            result = self._char(address, index, start, depth + 1)
        self.results[key] = result
        return result
