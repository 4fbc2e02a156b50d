"""The store: campaigns, lead lists, leads, suppressions, number statuses and the audit log.

SQLite is the embedded default; PostgreSQL is the store several workers share. Open it
with `open_store()`, then work inside `store.write()` or `store.read()`::

    store = open_store()  # $DIALER_DB or sqlite:///dialer.db, migrated to the newest schema
    with store.write() as uow:
        campaign_id = uow.ensure_campaign("spring", default_region="CN", now=now)

Every failure of the database surfaces as `dialer.errors.StoreError`. Phone numbers,
raw cells and lead attributes are encrypted at rest with `DataKeys` (from the environment
or a key file, see `dialer.store.crypto`); `reencrypt` moves them to a new key.
"""

from dialer.store.crypto import DataKeys
from dialer.store.engine import default_url, mask_url
from dialer.store.queries import ReadUnitOfWork
from dialer.store.records import (
    AttemptFilter,
    AttemptOutcome,
    AttemptRow,
    AuditEntry,
    ClaimedLead,
    Lead,
    LeadList,
    NewAttempt,
    NewLead,
    Recovery,
    Suppression,
    SuppressionScope,
)
from dialer.store.rotation import reencrypt
from dialer.store.store import Store, open_store
from dialer.store.unit_of_work import UnitOfWork

__all__ = [
    "AttemptFilter",
    "AttemptOutcome",
    "AttemptRow",
    "AuditEntry",
    "ClaimedLead",
    "DataKeys",
    "Lead",
    "LeadList",
    "NewAttempt",
    "NewLead",
    "ReadUnitOfWork",
    "Recovery",
    "Store",
    "Suppression",
    "SuppressionScope",
    "UnitOfWork",
    "default_url",
    "mask_url",
    "open_store",
    "reencrypt",
]
