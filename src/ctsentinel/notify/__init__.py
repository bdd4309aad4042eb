"""Alert delivery: channels (stdout, jsonl, webhook, email, exec) and the sender that drains the outbox.

events.py    the events channels carry: AlertEvent (an alert and its certificate's details), HealthEvent,
             RevocationEvent
base.py      the Channel interface, DeliveryError, the per-channel filters
render.py    readable text of an event (terminal, mail), hostile certificate text escaped
<kind>.py    one module per channel kind
factory.py   channels from the [[notify]] settings, options validated
sender.py    the retry loop over an Outbox: backoff with full jitter, marked done only once accepted
memory.py    an in-memory Outbox (tests, one-off deliveries); the durable one is store.Outbox
health.py    log-health events: misbehaviour, a log fallen behind
service.py   Notifier: what the monitor holds (channels, which are the routes of its commits, + sender)
"""

from ctsentinel.notify.base import Channel, DeliveryError
from ctsentinel.notify.events import (
    AlertEvent,
    Event,
    HealthEvent,
    RevocationEvent,
    event_from_payload,
    health_event,
)
from ctsentinel.notify.factory import build_channel, build_channels
from ctsentinel.notify.health import lag_events, misbehaviour_event
from ctsentinel.notify.memory import MemoryOutbox
from ctsentinel.notify.sender import Outbox, Sender
from ctsentinel.notify.service import Notifier, leftover_lines, undelivered_lines

__all__ = [
    "AlertEvent",
    "Channel",
    "DeliveryError",
    "Event",
    "HealthEvent",
    "MemoryOutbox",
    "Notifier",
    "Outbox",
    "RevocationEvent",
    "Sender",
    "build_channel",
    "build_channels",
    "event_from_payload",
    "health_event",
    "lag_events",
    "leftover_lines",
    "misbehaviour_event",
    "undelivered_lines",
]
