"""Moving alerts between open, acknowledged and resolved, with who did it, when and why."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import bindparam, select, update

from ctsentinel.store.browse_models import AlertAction
from ctsentinel.store.database import Database, aware
from ctsentinel.store.errors import StoreError
from ctsentinel.store.issuances import chunks
from ctsentinel.store.models import AlertState
from ctsentinel.store.schema import alert_actions, alerts

# The states an alert may move to, and from which.
_FROM = {
    AlertState.ACKNOWLEDGED: frozenset({AlertState.OPEN}),
    AlertState.RESOLVED: frozenset({AlertState.OPEN, AlertState.ACKNOWLEDGED}),
}
MAX_NOTE = 4000
MAX_ACTOR = 64


class AlertNotFound(StoreError):
    """No alert has that number."""


class AlertStateConflict(StoreError):
    """The alert is not in a state the action applies to (e.g. acknowledging a resolved alert)."""


class AlertStates:
    """Store.alert_states: each move is one transaction, and is kept as an AlertAction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def move(self, alert_id: int, to: AlertState, *, note: str, actor: str) -> AlertAction:
        if to not in _FROM:
            raise StoreError(f"alert {alert_id}: cannot move an alert to {to.value}")
        if len(note) > MAX_NOTE:
            raise StoreError(f"alert {alert_id}: the note is longer than {MAX_NOTE} characters")
        action = AlertAction(alert_id, to, note, actor[:MAX_ACTOR], datetime.now(UTC))
        with self._db.write() as conn:
            current = conn.execute(select(alerts.c.state).where(alerts.c.id == alert_id)).scalar()
            if current is None:
                raise AlertNotFound(f"alert {alert_id}: no such alert")
            if AlertState(current) not in _FROM[to]:
                raise AlertStateConflict(f"alert {alert_id} is {current}: it cannot be {to.value} now")
            conn.execute(update(alerts).where(alerts.c.id == alert_id).values(state=to.value))
            conn.execute(
                alert_actions.insert().values(
                    alert=alert_id, state=to.value, note=action.note, actor=action.actor, at=action.at
                )
            )
        return action

    def history(self, alert_ids: Sequence[int]) -> dict[int, list[AlertAction]]:
        """What was done with each of these alerts, oldest first (an empty list for an untouched one)."""
        out: dict[int, list[AlertAction]] = {alert_id: [] for alert_id in alert_ids}
        if not alert_ids:
            return out
        stmt = (
            select(alert_actions)
            .where(alert_actions.c.alert.in_(bindparam("ids", expanding=True)))
            .order_by(alert_actions.c.id)
        )
        with self._db.read() as conn:
            for part in chunks(list(alert_ids)):
                for r in conn.execute(stmt, {"ids": list(part)}):
                    out[r.alert].append(
                        AlertAction(r.alert, AlertState(r.state), r.note, r.actor, aware(r.at))
                    )
        return out
