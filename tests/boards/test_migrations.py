"""The service-level target moves from the boards' QueueDisplay to the call history's
QueueKpiSettings (boards 0004 copies, 0005 drops the field), and back when unapplied."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("boards", "0003_kiosktoken_all_queues"), ("history", "0001_initial")]
AFTER = [("boards", "0005_remove_queuedisplay_service_level_target_seconds")]


def migrate(targets):
    """Migrate to ``targets``; the models as they are there."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


def display_columns() -> set[str]:
    with connection.cursor() as cursor:
        described = connection.introspection.get_table_description(cursor, "boards_queuedisplay")
    return {column.name for column in described}


@pytest.mark.django_db(transaction=True)
def test_each_queues_target_moves_to_its_kpi_settings_and_back():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        old = migrate(BEFORE)
        display = old.get_model("boards", "QueueDisplay")
        rules = old.get_model("history", "QueueKpiSettings")
        display.objects.create(queue=100, service_level_target_seconds=45)
        display.objects.create(queue=101)  # the default, 20 s
        # Set where the figures are counted already: that target stays.
        display.objects.create(queue=102, service_level_target_seconds=60)
        rules.objects.create(queue=102, service_level_target_seconds=15)
        # Settings with the default target take the boards' target, and keep the rest.
        display.objects.create(queue=103, service_level_target_seconds=30)
        rules.objects.create(queue=103, service_level_target_percent=90)

        new = migrate(AFTER)

        moved = new.get_model("history", "QueueKpiSettings").objects.order_by("queue")
        assert [(r.queue, r.service_level_target_seconds) for r in moved] == [
            (100, 45),
            (101, 20),
            (102, 15),
            (103, 30),
        ]
        assert moved.get(queue=103).service_level_target_percent == 90
        assert "service_level_target_seconds" not in display_columns()
        assert new.get_model("boards", "QueueDisplay").objects.count() == 4

        back = migrate(BEFORE)
        targets = back.get_model("boards", "QueueDisplay").objects.order_by("queue")
        assert [(d.queue, d.service_level_target_seconds) for d in targets] == [
            (100, 45),
            (101, 20),
            (102, 15),
            (103, 30),
        ]
    finally:
        migrate(latest)
