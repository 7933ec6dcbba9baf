"""Redaction: secrets and personal data removed from payloads before anything touches disk.

What goes, anywhere in nested JSON (keys, values, and JSON text inside strings):
  * the value of any field whose name carries a secret (authorization, api keys, tokens,
    passwords, cookies, secrets, credentials, private keys) → "[REDACTED]";
  * the configured secrets themselves (OPENAI_API_KEY, gateway keys, the Supabase key);
  * values shaped like OpenAI or gateway keys (sk-…, vkey-…), JWTs, bearer tokens;
  * e-mail addresses, phone numbers, credit-card numbers (Luhn-checked), Brazilian CPF and
    CNPJ numbers (check digits verified) — as text, or as numbers with 11+ digits;
  * whatever the user's own patterns (AIGW_REDACT_PATTERNS, regular expressions) match.
Matches become a marker naming the kind, e.g. "[REDACTED:email]". A payload still larger than
the size cap afterwards is replaced by {"aigw_truncated": <bytes>, "head": <first bytes>}.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from aigw.errors import ConfigError

if TYPE_CHECKING:
    from aigw.settings import Settings

MARK = "[REDACTED]"

# Field names that carry secrets. "tokens" (plural) is usage accounting, not a credential.
SECRET_NAME = re.compile(
    r"authori[sz]ation|api[-_ ]?key|apikey|secret|passw|passphrase|pwd|cookie|credential"
    r"|private[-_ ]?key|session[-_ ]?id|signature|(?:^|[-_ ])key$|token(?!s|_count|izer)",
    re.IGNORECASE,
)


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _mod11(digits: str, length: int, top: int) -> bool:
    """A Brazilian CPF (`top` 11) or CNPJ (`top` 9) number: its last two digits check the ones
    before them, mod 11, with weights 2, 3, … `top` (then 2 again) from the right."""
    if len(digits) != length or digits == digits[0] * length:
        return False
    for size in (length - 2, length - 1):
        weighted = (int(d) * (2 + i % (top - 1)) for i, d in enumerate(reversed(digits[:size])))
        remainder = sum(weighted) % 11
        if (0 if remainder < 2 else 11 - remainder) != int(digits[size]):
            return False
    return True


def _card_inside(run: str) -> bool:
    """Whether some consecutive digit groups of `run` (split at its separators) form a
    13–19-digit number that passes Luhn: a card may follow other numbers in the text."""
    groups = re.split(r"[ -]", run)
    for first in range(len(groups)):
        digits = ""
        for group in groups[first:]:
            digits += group
            if len(digits) > 19:
                break
            if len(digits) >= 13 and _luhn(digits):
                return True
    return False


def _only_digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


Check = Callable[[str], bool] | None
# (kind, pattern, check on the digits or None). Order matters: longer, stricter shapes first.
RULES: list[tuple[str, re.Pattern[str], Check]] = [
    ("jwt", re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*"), None),
    ("bearer", re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}"), None),
    ("key", re.compile(r"(?<![A-Za-z])(?:sk|vkey)-[A-Za-z0-9_-]{8,}"), None),
    (
        "email",
        re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
        None,
    ),
    # A whole run of digit groups is taken, then checked group by group (see _card_inside).
    (
        "card",
        re.compile(r"(?<!\d)\d(?:[ -]?\d){12,}(?!\d)"),
        _card_inside,
    ),
    (
        "cnpj",
        re.compile(r"(?<!\d)\d{2}\.?\d{3}\.?\d{3}/?\d{4}-?\d{2}(?!\d)"),
        lambda d: _mod11(_only_digits(d), 14, 9),
    ),
    (
        "cpf",
        re.compile(r"(?<!\d)\d{3}\.?\d{3}\.?\d{3}-?\d{2}(?!\d)"),
        lambda d: _mod11(_only_digits(d), 11, 11),
    ),
    (
        "phone",
        re.compile(
            r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,5}[ .-]?\d{4}"
            r"(?!\d)|(?<![\w+])\+\d{10,15}(?!\d)"
        ),
        None,
    ),
]


class Redactor:
    """Redacts JSON values and text. Build one per process; `redact` is safe to call often."""

    def __init__(
        self,
        patterns: Iterable[str] = (),
        *,
        secrets: Iterable[str] = (),
        max_bytes: int = 16_384,
    ):
        self.max_bytes = max_bytes
        self.rules = list(RULES)
        literal = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
        if literal:
            self.rules.insert(0, ("secret", re.compile("|".join(map(re.escape, literal))), None))
        for pattern in patterns:
            try:
                self.rules.append(("pattern", re.compile(pattern), None))
            except re.error as exc:
                raise ConfigError(
                    f"invalid AIGW_REDACT_PATTERNS entry {pattern!r}: {exc}",
                    hint="each entry is a Python regular expression",
                ) from None

    def text(self, value: str) -> str:
        """A string with every match of every rule replaced by its marker."""
        stripped = value.strip()
        if stripped[:1] in ("{", "[") and len(stripped) > 1:
            try:  # JSON inside a string: redact it as JSON, so names are seen too
                inner = json.loads(stripped)
            except ValueError:
                pass
            else:
                if isinstance(inner, dict | list):
                    return json.dumps(self.value(inner), ensure_ascii=False)
        for kind, pattern, check in self.rules:
            value = pattern.sub(_replacer(kind, check), value)
        return value

    def value(self, value: Any) -> Any:
        """A JSON value (dicts, lists, strings, numbers…) with secrets redacted, recursively."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            result: dict[str, Any] = {}
            for key, item in value.items():
                name = str(key)
                clean_key = self.text(name)
                result[clean_key] = MARK if SECRET_NAME.search(name) else self.value(item)
            return result
        if isinstance(value, list | tuple):
            return [self.value(item) for item in value]
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**10:
            text = str(value)
            return value if self.text(text) == text else MARK  # a card/CPF sent as a number
        return value

    def payload(self, value: Any) -> Any:
        """What is stored for a payload: redacted, then capped at max_bytes."""
        clean = self.value(value)
        text = json.dumps(clean, ensure_ascii=False, separators=(",", ":"))
        size = len(text.encode())
        if size <= self.max_bytes:
            return clean
        head = text.encode()[: self.max_bytes].decode(errors="ignore")
        return {"aigw_truncated": size, "head": head}


def _replacer(kind: str, check: Check) -> Callable[[re.Match[str]], str]:
    marker = f"[REDACTED:{kind}]"

    def replace(match: re.Match[str]) -> str:
        if check is not None and not check(match.group(0)):
            return match.group(0)
        return marker

    return replace


def redactor_for(settings: Settings) -> Redactor:
    """The Redactor for these settings: the user's patterns, the cap, the configured secrets."""
    secrets = [
        secret.get_secret_value()
        for secret in (
            settings.openai_api_key,
            settings.gateway_api_key,
            settings.gateway_api_key_next,
            settings.supabase_service_role_key,
        )
        if secret is not None
    ]
    secrets += settings.gateway_keys
    return Redactor(settings.redact_patterns, secrets=secrets, max_bytes=settings.payload_max_bytes)
