"""The match review list: pairs too uncertain to merge automatically, decided by a person.

Why keep decisions: a rejected pair must stay apart and a confirmed pair together in every later
run, even when the records change; identity resolution reads these rows as hard constraints.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlmodel import select

from unified_model import tables as t
from unified_model.store import HubStore


class ReviewError(ValueError):
    """The review id does not exist or was already decided."""


def pending_reviews(store: HubStore) -> list[dict[str, Any]]:
    """Pending pairs with readable labels, best score first."""
    with store.session() as s:
        rows = list(s.exec(select(t.MatchReview).where(t.MatchReview.status == "pending")))
        names = {(a.source, a.source_id): a.name for a in s.exec(select(t.SourceAccount))}
    out = []
    for r in sorted(rows, key=lambda r: (-r.score, r.id or 0)):
        left = f"{r.left_source}:{r.left_id} {names.get((r.left_source, r.left_id)) or ''}"
        right = f"{r.right_source}:{r.right_id} {names.get((r.right_source, r.right_id)) or ''}"
        out.append(
            {
                "id": r.id,
                "score": r.score,
                "left": left.strip(),
                "right": right.strip(),
                "reason": r.reason,
            }
        )
    return out


def decide(store: HubStore, review_id: int, status: str, *, now: dt.datetime) -> None:
    """Confirm or reject a pending pair; the next sync's identity resolution applies it."""
    if status not in ("confirmed", "rejected"):
        raise ReviewError(f"status must be 'confirmed' or 'rejected', not {status!r}")
    with store.session() as s:
        row = s.get(t.MatchReview, review_id)
        if row is None:
            raise ReviewError(
                f"no match review #{review_id}; list them with 'crmhub matches review'"
            )
        row.status = status
        row.decided_at = now
        s.add(row)
        s.commit()
