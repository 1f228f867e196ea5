"""Is a configured secret too weak to use? A pure check, applied at start-up.

A rough estimate that refuses the obviously guessable (`aaaa…`, a word repeated, a key of
a few distinct bytes), not a proof of randomness. The thresholds, and why:

- Text secrets (`CPSYNC_SECRET_KEY`, `CPSYNC_CRON_SECRET`): at least 32 characters, not
  one shorter pattern repeated, and at least 2.5 bits of Shannon entropy per character
  (measured on the value's own character frequencies, so it needs at least 6 distinct
  characters). 32 random hex digits measure 3.6 on average and never measured below 2.7
  in a million draws; `secrets.token_urlsafe(32)` measures about 4.8.
- Encryption keys (32 bytes): not a repeated pattern, and at least 4.0 bits per byte
  (16 distinct bytes at the very least). 32 random bytes measure 4.9 on average and
  never measured below 4.3 in 200,000 draws; 8 distinct bytes can reach 3.0 at most.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

MIN_TEXT_LENGTH = 32
MIN_TEXT_BITS_PER_CHARACTER = 2.5
MIN_KEY_BITS_PER_BYTE = 4.0
PLACEHOLDERS = frozenset(
    {"changeme", "change-me", "secret", "password", "placeholder", "example", "xxx"}
)
GENERATE_TEXT = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


def bits_per_symbol(value: Sequence[object]) -> float:
    """Shannon entropy of the value's own symbol frequencies, in bits per symbol."""
    if not value:
        return 0.0
    counts = Counter(value)
    total = len(value)
    return -sum(n / total * math.log2(n / total) for n in counts.values())


def repeats_a_pattern(value: Sequence[object]) -> bool:
    """True when the value is a shorter run written over and over (`abcabcabc`)."""
    size = len(value)
    return any(
        all(value[i] == value[i % period] for i in range(size))
        for period in range(1, size // 2 + 1)
    )


def text_weakness(value: str) -> str | None:
    """Why `value` is too weak for a text secret, or None when it passes."""
    if value.strip().lower() in PLACEHOLDERS:
        return "it is a placeholder"
    if len(value) < MIN_TEXT_LENGTH:
        return f"it has {len(value)} characters; at least {MIN_TEXT_LENGTH} are needed"
    if repeats_a_pattern(value):
        return "it repeats a shorter pattern"
    bits = bits_per_symbol(value)
    if bits < MIN_TEXT_BITS_PER_CHARACTER:
        return (
            f"its characters vary too little ({bits:.1f} bits each; "
            f"at least {MIN_TEXT_BITS_PER_CHARACTER} are needed)"
        )
    return None


def key_weakness(key: bytes) -> str | None:
    """Why a 32-byte encryption key looks non-random, or None when it passes."""
    if repeats_a_pattern(key):
        return "it repeats a shorter pattern"
    bits = bits_per_symbol(key)
    if bits < MIN_KEY_BITS_PER_BYTE:
        return (
            f"its bytes vary too little ({bits:.1f} bits each, {len(set(key))} distinct; "
            "random keys measure about 4.9)"
        )
    return None


def check_text_secret(variable: str, value: str) -> None:
    """ValueError naming the variable, why it is weak, and how to make a good one."""
    reason = text_weakness(value)
    if reason is not None:
        raise ValueError(f"{variable} is too weak: {reason}. Generate one with: {GENERATE_TEXT}")
