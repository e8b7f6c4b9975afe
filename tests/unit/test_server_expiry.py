"""Which reminder is due, from days left and what was already sent: pure rules."""
from datetime import date, datetime

import pytest

from services.server.domain.expiry import EXPIRED, days_left, due_threshold, parse_thresholds, scan_due

T = [30, 7, 1]


@pytest.mark.parametrize("left, already, expected", [
    (31, [], None),          # not yet in any window
    (30, [], 30),
    (29, [], 30),            # the scan on day 30 was missed: remind the day after
    (29, [30], None),        # once per threshold
    (7, [30], 7),
    (5, [30], 7),
    (5, [30, 7], None),
    (1, [30, 7], 1),
    (0, [30, 7], 1),         # expires today and the 1-day reminder never went out
    (0, [30, 7, 1], None),
    (-1, [30, 7, 1], EXPIRED),  # expired unrenewed: one more reminder, as expired
    (-40, [], EXPIRED),      # added to the inventory long expired: reminded once too
    (-2, [30, 7, 1, EXPIRED], None),
])
def test_due_threshold(left, already, expected):
    assert due_threshold(left, T, already) == expected


def test_days_left_counts_calendar_days_in_utc():
    assert days_left(datetime(2033, 3, 17, 23, 59), date(2033, 3, 10)) == 7
    assert days_left(datetime(2033, 3, 10, 0, 1), date(2033, 3, 10)) == 0


def test_thresholds_from_config():
    assert parse_thresholds([1, 30, 7, 7]) == [30, 7, 1]
    assert parse_thresholds("30,7,1") == [30, 7, 1]
    with pytest.raises(ValueError):
        parse_thresholds([])
    with pytest.raises(ValueError):
        parse_thresholds([-1])


def test_scan_runs_once_the_time_of_day_has_passed():
    assert not scan_due(datetime(2033, 3, 10, 8, 59), "09:00")
    assert scan_due(datetime(2033, 3, 10, 9, 0), "09:00")
