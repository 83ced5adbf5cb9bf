"""IST helpers: exact epoch conversion, no guessing of a missing offset."""

import pytest

from expirytrack_desktop.timeutil import ist_date, ist_iso, parse_ts


def test_parse_ts_reads_the_offset():
    assert parse_ts("2025-01-01T09:15:00+05:30") == 1735703100
    assert parse_ts("2025-01-01T03:45:00+00:00") == 1735703100


def test_parse_ts_refuses_a_timestamp_without_offset():
    with pytest.raises(ValueError, match="offset"):
        parse_ts("2025-01-01T09:15:00")


def test_ist_round_trip():
    assert ist_iso(1735703100) == "2025-01-01T09:15:00+05:30"
    assert str(ist_date(1735703100 + 15 * 3600)) == "2025-01-02"
