"""Answer texts for the simulator: realistic sentences chosen by the prompt's topic, with
optional rewording (run-to-run noise) and a materially different answer for chosen topics."""

from __future__ import annotations

import random
import re
from typing import Final

REFUSAL: Final = "I'm sorry, but I can't help with that."

_TOPICS: Final[dict[str, tuple[str, ...]]] = {
    "code": (
        "Start with a small function that does one thing and test it on an empty input first.",
        "Walk the structure once, keeping a pointer to the previous node as you go.",
        "Handle the edge cases explicitly: an empty list, a single element and duplicates.",
        "The time complexity is linear and the extra memory stays constant.",
        "Name the variables after what they hold, so the loop reads like the explanation.",
        "A few unit tests with pytest make the behaviour clear and guard against regressions.",
    ),
    "travel": (
        "Spend the first day in the old town, where most sights are within walking distance.",
        "Public transport passes usually pay off after three or four rides a day.",
        "Book museums in the morning; they are quieter before the tour groups arrive.",
        "Local markets are the cheapest way to eat well and see everyday life.",
        "Keep an afternoon free for a viewpoint at sunset, it is the highlight for many visitors.",
    ),
    "systems": (
        "The key idea is to separate what must be consistent from what may be briefly stale.",
        "Under a partition you choose between answering with possibly old data or refusing.",
        "Connection reuse removes a handshake from every request, which matters for short calls.",
        "Readiness says when to send traffic; liveness says when to restart the process.",
        "Measure before tuning: a slow query is often a missing index or a changed plan.",
        "Idle timeouts on both sides must agree, or a reused connection can be closed under you.",
    ),
    "writing": (
        "Keep the first sentence short and say why you are writing.",
        "A friendly tone works best when the request itself is precise.",
        "Close with the next step and a date, so nothing is left open.",
        "Mention the change once, clearly, rather than apologising several times.",
    ),
    "general": (
        "Here is a short overview of the main points.",
        "The answer depends on the details, but the common case is simple.",
        "Several factors contributed, and they reinforced each other over time.",
        "A practical approach is to start small and adjust as you learn more.",
        "In summary, the most important thing is to be consistent.",
        "If you share more about your situation I can give a more specific answer.",
    ),
    "support": (
        "Thanks for reaching out, I can help you with that.",
        "You can review your recent charges in the account settings under Payments.",
        "Refunds for damaged items are issued to the original payment method within five days.",
        "A charge that appears twice is usually a pending authorisation that drops off.",
        "Our support team can confirm the details if you reply with your order number.",
    ),
}
_KEYWORDS: Final[dict[str, tuple[str, ...]]] = {
    "code": ("python", "function", "code", "linked list", "string", "index"),
    "travel": ("itinerary", "travel", "trip", "lisbon", "train"),
    "systems": ("kubernetes", "cap theorem", "keep-alive", "postgres", "http", "process"),
    "writing": ("draft", "write", "note", "haiku", "reminder", "translate"),
    "support": ("refund", "billing", "charge", "card", "order", "subscription", "email"),
}
_REWORDINGS: Final = (
    ("usually", "often"),
    ("start", "begin"),
    ("clear", "obvious"),
    ("short", "brief"),
    ("important", "essential"),
    ("help", "assist"),
    ("within", "in under"),
)
_DIVERGENT: Final = (
    "Unfortunately refunds are not possible once an order has shipped.",
    "Billing questions must be sent by post to our head office.",
    "Please contact your bank directly, we cannot see card charges.",
    "Subscriptions cannot be changed until the end of the annual term.",
    "We do not offer refunds or billing adjustments for any reason.",
)


def _topic(prompt: str) -> str:
    lowered = prompt.lower()
    for topic, words in _KEYWORDS.items():
        if any(word in lowered for word in words):
            return topic
    return "general"


def _reword(sentence: str, bank: tuple[str, ...], noise: random.Random) -> str:
    for old, new in _REWORDINGS:
        if re.search(rf"\b{old}\b", sentence) and noise.random() < 0.5:
            return re.sub(rf"\b{old}\b", new, sentence, count=1)
    # Nothing to reword: say something else on the same topic instead.
    return noise.choice(bank)


def answer_text(
    prompt: str, local: random.Random, *, variation: float, noise: random.Random
) -> str:
    """A 30-200 word answer on the prompt's topic; `local` is seeded by the prompt, `noise`
    rewords about `variation` of the sentences so repeated prompts differ slightly."""
    bank = _TOPICS[_topic(prompt)]
    count = local.randint(3, min(len(bank) + 4, 14))
    sentences = [local.choice(bank) for _ in range(count)]
    if variation:
        sentences = [
            _reword(s, bank, noise) if noise.random() < variation else s for s in sentences
        ]
    subject = " ".join(prompt.split()[:6]).rstrip("?.!,")
    return f"About {subject!s}: " + " ".join(sentences)


def divergent_text(prompt: str, local: random.Random) -> str:
    """A materially different answer, for the topics a candidate is known to get wrong."""
    sentences = local.sample(_DIVERGENT, k=3)
    return " ".join(sentences)
