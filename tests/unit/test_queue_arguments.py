"""The queue arguments of shared/queues.py and the queues the migration script looks for.

``scripts.queue_migrate`` drains an old vhost by the names MAE's services declare, read
from their code: if it missed one, what waits there would stay behind when the old vhost
is deleted. The real services' queues are checked here; that the names match what a running
service declares is shown by tests/integration/test_queue_migration.py.
"""
from __future__ import annotations

from scripts.queue_migrate import declared_queues, service_classes
from shared import queues


def test_work_queues_are_durable_quorum_queues_that_park_past_their_limit():
    queue = queues.work_queue("evt-org-application_deleted--deploy.on_application_deleted",
                              {"AMQP_DELIVERY_LIMIT": 7}, "deploy")
    assert (queue.durable, queue.auto_delete, queue.exclusive) == (True, False, False)
    assert queue.queue_arguments == {
        "x-queue-type": "quorum", "x-delivery-limit": 7,
        "x-dead-letter-exchange": "mae.parking", "x-dead-letter-routing-key": "deploy",
        "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
    rpc = queues.work_queue("rpc-deploy", {}, "deploy", park=False)
    assert rpc.queue_arguments == {"x-queue-type": "quorum", "x-delivery-limit": queues.DEFAULT_DELIVERY_LIMIT}


def test_reply_queues_are_exclusive_and_not_durable():
    reply = queues.reply_queue("rpc.reply-gateway-1", queues.parking_exchange(), "1")
    assert (reply.durable, reply.auto_delete, reply.exclusive) == (False, True, True)
    assert not reply.queue_arguments


def test_the_migration_script_knows_every_queue_of_the_services():
    names = {cls.name: dict(declared_queues(cls)) for cls in
             service_classes(["auth", "org", "deploy", "cluster", "server", "notify"])}
    deploy = names["deploy"]
    assert deploy["rpc-deploy"] == "rpc"
    assert deploy["deploy-cluster-status"] == deploy["deploy-log-lines"] == "batch"
    assert deploy["evt-org-application_deleted--deploy.on_application_deleted"] == "event"
    assert deploy["parking-deploy"] == "parking"
    assert any(q.startswith("evt-audit-recorded--auth.") for q in names["auth"])
    assert all(f"rpc-{service}" in queues_ for service, queues_ in names.items())
