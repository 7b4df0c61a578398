"""Money as people read it in messages: exact decimal, two places, thousands separators.

One home for the digests' conversion rows and the experiment lines (revenue risk): both the digest
package and models/experiment_digest.py import it, neither importing the other for it.
"""

from __future__ import annotations

from decimal import Decimal


def money(amount: Decimal) -> str:
    """`1,234.50`: exact decimal, two places, thousands separators."""
    return f"{Decimal(amount).quantize(Decimal('0.01')):,.2f}"
