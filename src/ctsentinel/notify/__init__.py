"""Alert delivery: channels (stdout, jsonl, webhook, email, exec) and the sender that drains the outbox.

base.py      the Channel interface, DeliveryError, events (alert objects, log-health events), filters
render.py    readable text of an event (terminal, mail), hostile certificate text escaped
<kind>.py    one module per channel kind
factory.py   channels from the config's [[notify]] tables, options validated
sender.py    the retry loop over an Outbox: backoff with full jitter, marked done only once accepted
memory.py    an in-memory Outbox (tests, one-off deliveries); the durable one is store/outbox.py
"""

from ctsentinel.notify.base import (
    SEVERITY_ORDER,
    Channel,
    DeliveryError,
    Event,
    health_event,
    is_health,
    public_view,
)
from ctsentinel.notify.factory import build_channel, build_channels
from ctsentinel.notify.memory import MemoryOutbox
from ctsentinel.notify.sender import Backoff, Outbox, PendingDelivery, Sender

__all__ = [
    "SEVERITY_ORDER",
    "Backoff",
    "Channel",
    "DeliveryError",
    "Event",
    "MemoryOutbox",
    "Outbox",
    "PendingDelivery",
    "Sender",
    "build_channel",
    "build_channels",
    "health_event",
    "is_health",
    "public_view",
]
