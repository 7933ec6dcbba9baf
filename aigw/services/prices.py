"""Model prices for the cost view: shipped defaults, overridden per model by `settings.prices`.

Prices are US dollars per 1,000,000 tokens, (input, output), from OpenAI's public price list.
They change; an operator sets their own in config (AIGW_PRICES='{"gpt-4o": [2.5, 10]}').
"""

from __future__ import annotations

Price = tuple[float, float]

DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-4": (30.00, 60.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o1": (15.00, 60.00),
    "o1-mini": (1.10, 4.40),
    "o3": (2.00, 8.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
}


def price_table(overrides: dict[str, tuple[float, float]] | None = None) -> dict[str, Price]:
    table = dict(DEFAULT_PRICES)
    table.update({name: (float(i), float(o)) for name, (i, o) in (overrides or {}).items()})
    return table


def price_for(model: str | None, table: dict[str, Price]) -> Price | None:
    """The price of `model`: an exact entry, else the longest entry it starts with, so a dated
    snapshot (gpt-4o-2024-08-06) is priced as its family; None when unknown."""
    if not model:
        return None
    if model in table:
        return table[model]
    family = [name for name in table if model.startswith(name + "-")]
    return table[max(family, key=len)] if family else None


def cost_usd(price: Price | None, tokens_in: int, tokens_out: int) -> float | None:
    if price is None:
        return None
    return (tokens_in * price[0] + tokens_out * price[1]) / 1_000_000
