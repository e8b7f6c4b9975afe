"""The deploy service's batch event entrypoint (``batch_handler``): the shared batch
consumer of ``shared/batching.py``, which hands the decorated method up to ``size``
events (or weighed items) at a time and acks them only after its transaction committed.
"""
from shared.batching import MAX_HANDLER_RETRY_DELAY, MAX_RETRY_DELAY, BatchEventHandler, batch_handler

__all__ = ["BatchEventHandler", "MAX_HANDLER_RETRY_DELAY", "MAX_RETRY_DELAY", "batch_handler"]
