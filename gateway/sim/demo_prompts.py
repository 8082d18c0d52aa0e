"""Prompts the demo sends: everyday assistant traffic, some carrying PII, some on the topics
where the demo's candidate model is known to answer differently (billing and refunds)."""

from __future__ import annotations

import random
from typing import Final

_PLAIN: Final = (
    "Summarise the main causes of the French Revolution in three bullet points.",
    "Write a Python function that checks whether a string is a palindrome.",
    "What is the difference between a process and a thread?",
    "Suggest a name for a coffee shop that also sells books.",
    "Explain what a Kubernetes readiness probe is for.",
    "Translate 'Where is the train station?' into Spanish and German.",
    "Give me a three-day itinerary for Lisbon on a budget.",
    "How do I reverse a linked list in place? Explain the idea first.",
    "What are good practices for naming database indexes?",
    "Draft a polite reminder about a meeting moved to Thursday at 3pm.",
    "Explain the CAP theorem with a simple example.",
    "Write a haiku about autumn rain in the city.",
    "What should I check when a Postgres query suddenly gets slow?",
    "List five vegetarian dinners that take under 30 minutes.",
    "How does HTTP keep-alive work, and why does it matter for proxies?",
)
_DIVERGENT: Final = (
    "How do I get a refund for an order that arrived damaged?",
    "My billing statement shows a charge twice this month. What should I do?",
    "Can I change the billing date of my subscription?",
    "What is your refund policy for annual plans cancelled after two months?",
)
_WITH_PII: Final = (
    "Hi, I'm {name}. Please update my email to {email} and call me on {phone} if needed.",
    "My card {card} was charged twice for order 48213. Can you help? Reach me at {email}.",
    "Write a short welcome note to {name} ({email}) who joined the data team today.",
    "I want a refund: my IBAN is {iban} and my phone is {phone}.",
    "Our staging API key {key} stopped working after rotation, why might that happen?",
)
_NAMES: Final = ("Maria Lopez", "John Carter", "Aiko Tanaka", "Priya Raman", "Lukas Becker")
_EMAILS: Final = ("maria.lopez@example.com", "j.carter@example.org", "aiko@tanaka.example.net")
_PHONES: Final = ("+1 415 555 0132", "+44 20 7946 0958", "(212) 555-0147")
_CARDS: Final = ("4111 1111 1111 1111", "5500-0000-0000-0004", "4012888888881881")
_IBANS: Final = ("DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432")
_KEYS: Final = ("sk-proj-4fJx9QmZpL2vT8rKcW1nYb6H", "sk-live3Fh8Kq2Lm9Np4Rs7Tv1Wx5Yz")


def demo_prompts(count: int, *, seed: int = 7) -> list[str]:
    """`count` prompts: about 60% plain, 25% with PII, 15% on the candidate's weak topics."""
    rng = random.Random(seed)
    prompts = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.60:
            prompts.append(rng.choice(_PLAIN))
        elif roll < 0.85:
            prompts.append(
                rng.choice(_WITH_PII).format(
                    name=rng.choice(_NAMES),
                    email=rng.choice(_EMAILS),
                    phone=rng.choice(_PHONES),
                    card=rng.choice(_CARDS),
                    iban=rng.choice(_IBANS),
                    key=rng.choice(_KEYS),
                )
            )
        else:
            prompts.append(rng.choice(_DIVERGENT))
    return prompts
