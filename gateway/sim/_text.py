"""Answer text for the simulator: realistic sentences picked by the prompt's topic and a hash of
its wording, optional rewording (a model's run-to-run noise), and a materially different answer
for the topics a profile is known to get wrong."""

from __future__ import annotations

import hashlib
import random
import re
from typing import Final

REFUSAL: Final = "I'm sorry, but I can't help with that."

_BANKS: Final[dict[str, tuple[str, ...]]] = {
    "code": (
        "Start with a small function that does one thing, and try it on an empty input first.",
        "Walk the structure once, keeping a reference to the previous element as you go.",
        "Handle the edge cases explicitly: an empty input, a single element and duplicates.",
        "The time complexity is linear and the extra memory stays constant.",
        "Name the variables after what they hold, so the loop reads like the explanation.",
        "A few unit tests make the behaviour clear and guard against regressions later.",
        "Avoid clever one-liners here; a plain loop is easier to read and to debug.",
        "If performance matters, measure it with a realistic input before optimising anything.",
        "Type hints help the next reader and let a checker catch mistakes early.",
    ),
    "data": (
        "Look at the query plan first; a sequential scan on a large table is the usual suspect.",
        "Statistics that are out of date can make the planner choose a much worse plan.",
        "A consistent naming scheme tells you the table, the columns and the kind of index.",
        "Composite indexes help only when the query filters on their leading columns.",
        "Check for lock waits as well, since a slow query is sometimes just a blocked one.",
        "Every extra index slows down writes a little, so keep the ones that earn their place.",
        "Compare the slow run with a fast one to see which step changed.",
        "Connection pool exhaustion looks like slowness from the application side.",
    ),
    "systems": (
        "The key idea is to separate what must be consistent from what may be briefly stale.",
        "Under a network partition you choose between answering with old data or refusing.",
        "Reusing a connection saves a handshake on every request, which matters for short calls.",
        "Readiness says when to send traffic; liveness says when to restart the process.",
        "Idle timeouts on both sides must agree, or a reused connection can be closed under you.",
        "A process has its own memory, while threads share the memory of their process.",
        "Credentials that were rotated need to be reloaded by every service that caches them.",
        "Measure before tuning, because the bottleneck is rarely where you expect it.",
        "Retries need a budget and some jitter, or they turn a small outage into a large one.",
    ),
    "support": (
        "Thanks for reaching out, I can help you with that.",
        "You can review your recent charges in the account settings under Payments.",
        "Refunds for damaged items go back to the original payment method within five days.",
        "A charge that appears twice is usually a pending authorisation that drops off on its own.",
        "Our support team can confirm the details if you reply with your order number.",
        "You can change the billing date once per cycle from the subscription page.",
        "Annual plans cancelled early are refunded for the remaining full months.",
        "Contact details can be updated at any time under your profile settings.",
    ),
    "writing": (
        "Keep the first sentence short and say why you are writing.",
        "A friendly tone works best when the request itself is precise.",
        "Close with the next step and a date, so nothing is left open.",
        "Mention the change once, clearly, rather than apologising several times.",
        "Read it aloud once; awkward phrasing is easier to hear than to see.",
        "Concrete images carry more feeling than abstract words in a short piece.",
        "A translation should keep the meaning and the register, not every word.",
    ),
    "travel": (
        "Spend the first day in the old town, where most sights are within walking distance.",
        "Public transport passes usually pay off after three or four rides a day.",
        "Book museums in the morning; they are quieter before the tour groups arrive.",
        "Local markets are the cheapest way to eat well and see everyday life.",
        "Keep an afternoon free for a viewpoint at sunset, it is the highlight for many visitors.",
        "Staying a little outside the centre saves money if the metro is close.",
        "A day trip by train is an easy way to see the coast without renting a car.",
    ),
    "food": (
        "A stir-fry with tofu and whatever vegetables you have is ready in twenty minutes.",
        "Pasta with chickpeas, garlic and spinach is filling and needs one pot.",
        "Shakshuka works for dinner too, with bread to soak up the sauce.",
        "A quick curry with lentils and coconut milk tastes better the next day.",
        "Keep a few staples at hand, such as rice, tinned beans and frozen greens.",
        "Roasting vegetables on one tray saves both time and washing up.",
    ),
    "history": (
        "Several long-running causes came together, and a few short-term shocks set them off.",
        "Public finances were in crisis after years of costly wars and debt.",
        "Bad harvests raised the price of bread, which hit ordinary families hardest.",
        "New ideas about rights and representation spread quickly through pamphlets and clubs.",
        "The old order could not reform itself fast enough to absorb the pressure.",
        "Historians still debate how much weight each of these factors deserves.",
    ),
    "general": (
        "Here is a short overview of the main points.",
        "The answer depends on the details, but the common case is simple.",
        "A practical approach is to start small and adjust as you learn more.",
        "It helps to write down what you want to achieve before choosing an option.",
        "Most people find that the simplest option is also the easiest to keep up.",
        "If you share more about your situation I can give a more specific answer.",
        "Try two or three candidates and keep the one that feels right after a day.",
    ),
}
# Topics are tried in this order; the one with most keyword hits wins.
_KEYWORDS: Final[dict[str, tuple[str, ...]]] = {
    topic: tuple(words.split(", "))
    for topic, words in {
        "code": "python, function, code, linked list, palindrome, algorithm, bug",
        "data": "database, postgres, query, index, sql, table",
        "systems": "kubernetes, cap theorem, keep-alive, http, process, thread, proxy, api key, "
        "server, latency",
        "support": "refund, billing, charge, card, order, subscription, email, iban, account, plan",
        "writing": "draft, write, note, haiku, poem, reminder, translate, letter",
        "travel": "itinerary, travel, trip, lisbon, hotel, flight, station",
        "food": "dinner, recipe, vegetarian, cook, meal, lunch",
        "history": "revolution, history, war, empire, century",
    }.items()
}
_OPENERS: Final = (
    'You asked: "{subject}".',
    'Here is my answer to "{subject}".',
    'On "{subject}", here is what matters most.',
    'Let me help with "{subject}".',
)
_CLOSERS: Final = (
    "I hope this helps.",
    "Let me know if you want more detail on any of these points.",
    "Happy to go deeper on any part of this.",
    "",
)
_DIVERGENT: Final = (
    "Unfortunately this is not possible once the order has been processed.",
    "Requests like this must be sent by post to our head office.",
    "Please contact your bank directly, as we cannot see payment details.",
    "Changes cannot be made until the end of the annual term.",
    "We do not offer exceptions to this policy for any reason.",
    "The charge is correct and cannot be reviewed again.",
    "There is a processing fee of twenty percent for every change of this kind.",
    "Your case will be looked at within sixty working days.",
)
# Rewordings that keep the meaning in every sentence of the banks above.
_SYNONYMS: Final = tuple(
    (old, new)
    for old, new in (
        pair.split("=")
        for pair in (
            "usually=often, start=begin, short=brief, help=assist, large=big, check=verify, "
            "clear=obvious, matters=counts, cheapest=least expensive, every=each, slow=sluggish, "
            "rarely=seldom, common=typical, a few=several, quickly=rapidly, important=essential, "
            "choose=pick"
        ).split(", ")
    )
)
_HEDGES: Final = ("In practice, ", "Generally, ", "As a rule, ", "In most cases, ")
_PLAIN_WORD: Final = re.compile(r"[a-z]+")
_POLITE_PREFIX: Final = re.compile(
    r"^(?:(?:hi|hello|hey)(?: there)?|please|can you|could you|would you|kindly)\b[\s,!]*",
    re.IGNORECASE,
)
_SUBJECT_WORDS: Final = 12
_TRAILING: Final = "\"'.,;:!?()"


def _plain(token: str) -> str | None:
    """The token as a plain lowercase word, or None for names, numbers, addresses, placeholders."""
    word = token.strip(_TRAILING)
    return word if _PLAIN_WORD.fullmatch(word) else None


def prompt_key(prompt: str) -> int:
    """A hash of the prompt's plain lowercase words. Names, numbers, addresses and scrubber
    placeholders are left out, so a PII-scrubbed copy of a prompt is answered like the original."""
    words = [w for w in map(_plain, prompt.split()) if w]
    digest = hashlib.blake2b(" ".join(words).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def topic_of(prompt: str) -> str:
    """The bank a prompt's answer is drawn from."""
    lowered = prompt.lower()
    hits = {topic: sum(word in lowered for word in words) for topic, words in _KEYWORDS.items()}
    best = max(hits, key=lambda topic: hits[topic])
    return best if hits[best] else "general"


def subject_of(question: str) -> str:
    """What the question is about, in the asker's words: its first sentence with some plain
    words, cut after a dozen of them (counting only plain words keeps the cut at the same place
    in a scrubbed copy)."""
    sentences = re.split(r"(?<=[.?!])\s+", question.strip())
    chosen = next(
        (s for s in sentences if sum(1 for t in s.split() if _plain(t)) >= 3), sentences[0]
    )
    while (stripped := _POLITE_PREFIX.sub("", chosen)) != chosen:
        chosen = stripped
    kept: list[str] = []
    plain_seen = 0
    for token in chosen.split():
        kept.append(token)
        plain_seen += _plain(token) is not None
        if plain_seen >= _SUBJECT_WORDS:
            break
    return " ".join(kept).strip(_TRAILING + " ") or "your request"


def _whole(word: str) -> re.Pattern[str]:
    # Hyphens count as part of a word: "short-term" is not "short".
    return re.compile(rf"(?<![\w-]){re.escape(word)}(?![\w-])")


def _reword(sentence: str, noise: random.Random) -> str:
    """The same sentence said a little differently; always changes something."""
    options = [(old, new) for old, new in _SYNONYMS if _whole(old).search(sentence)]
    if options:
        old, new = noise.choice(options)
        return _whole(old).sub(new, sentence, count=1)
    first = sentence.split(" ", 1)[0]
    # Keep "I", acronyms and the like capitalised.
    lowered = (
        sentence if first == "I" or first[1:2].isupper() else sentence[:1].lower() + sentence[1:]
    )
    return noise.choice(_HEDGES) + lowered


def _words(sentences: list[str]) -> int:
    return sum(len(s.split()) for s in sentences)


def answer_text(
    prompt: str, question: str, *, diverge: bool, variation: float, noise: random.Random
) -> str:
    """A 30-200 word answer. The choice of sentences depends on the prompt only, so two models
    agree unless told to `diverge` (a materially different answer); `noise` rewords about
    `variation` of the sentences, the run-to-run noise of a sampled model."""
    local = random.Random(prompt_key(prompt))
    opener = local.choice(_OPENERS).format(subject=subject_of(question))
    body: list[str] = []
    closer = ""
    if diverge:
        body = local.sample(_DIVERGENT, k=local.randint(4, 6))
    else:
        # Sized without the opener, whose length changes when a copy of the prompt is scrubbed.
        target = local.randint(35, 130)
        topical, filler = _BANKS[topic_of(prompt)], _BANKS["general"]
        shuffled = local.sample(topical, k=len(topical)) + local.sample(filler, k=len(filler))
        for sentence in shuffled:
            if _words(body) >= target or _words(body) + len(sentence.split()) > 150:
                break
            body.append(sentence)
        closer = local.choice(_CLOSERS)
    if variation:
        body = [_reword(s, noise) if noise.random() < variation else s for s in body]
    return " ".join(s for s in (opener, *body, closer) if s)
