"""Deploy records and their targets in MySQL: creating them, feeding them cluster events, the clock.

Plain SQLAlchemy; the status rules themselves are in ``services.deploy.domain.status``.
Functions that change state return what must be said after the commit
(``PendingEvents``: apply requests, log lines, finished records), so the caller
publishes only what was committed.

* ``views``    — record and target dicts, a record, a listing, what runs where;
* ``creation`` — new records (superseding older actions), rollback sources, apply requests;
* ``ingest``   — apply results and status reports, a batch per transaction;
* ``settling`` — a record's status from its targets', the finished events;
* ``clock``    — the sweep (unanswered applies, stalled or refused rollouts);
* ``logstore`` — storing log lines in seq order and reading them back.
"""
from services.deploy.domain.records.clock import sweep
from services.deploy.domain.records.creation import apply_request, create_record, rollback_source
from services.deploy.domain.records.ingest import TARGET_KEYS_PER_QUERY, flatten, ingest
from services.deploy.domain.records.logstore import LOG_INSERT, log_rows, logs, store_log_lines
from services.deploy.domain.records.pending import MAX_LINE, PendingEvents
from services.deploy.domain.records.settling import finished_events, settle, settle_many
from services.deploy.domain.records.views import (clusters_of_version, get_record, list_records, record_dict,
                                                  record_view, target_dict, targets_of, version_status,
                                                  visible_record)


__all__ = ["LOG_INSERT", "MAX_LINE", "PendingEvents", "TARGET_KEYS_PER_QUERY", "apply_request",
           "clusters_of_version", "create_record", "finished_events", "flatten", "get_record", "ingest",
           "list_records", "log_rows", "logs", "record_dict", "record_view", "rollback_source", "settle",
           "settle_many", "store_log_lines", "sweep", "target_dict", "targets_of", "version_status",
           "visible_record"]
