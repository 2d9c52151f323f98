"""The text form of far dates (`dates.far_date_text`) and the edge detection, checked
against Python's own calendar where Python can count, without a server."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone

from sink.postgres.dates import TIMESTAMP, TIMESTAMPTZ, exact_texts, far_date_text

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def test_far_date_text_matches_python_calendar_over_its_whole_range() -> None:
    rng = random.Random(7)
    lo = int((datetime(1, 1, 1, tzinfo=UTC) - EPOCH).total_seconds() * 1000)
    hi = int((datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC) - EPOCH).total_seconds() * 1000)
    for ms in [lo, hi, 0, -1, 951_782_400_000, *(rng.randint(lo, hi) for _ in range(5000))]:
        dt = EPOCH + timedelta(milliseconds=ms)
        want = f"{dt.year:04d}-" + dt.strftime("%m-%d %H:%M:%S.") + f"{ms % 1000:03d}+00"
        assert far_date_text(ms) == want


def test_far_date_text_beyond_python_years() -> None:
    assert far_date_text(253_402_300_800_000) == "10000-01-01 00:00:00.000+00"
    assert far_date_text(-62_135_596_800_001) == "0001-12-31 23:59:59.999+00 BC"
    assert far_date_text(-210_866_803_200_000) == "4714-11-24 00:00:00.000+00 BC"


def test_only_the_values_asyncpg_turns_into_infinity_are_written_as_text() -> None:
    plus2 = timezone(timedelta(hours=2))
    values = [datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC),
              datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=UTC), datetime(9999, 12, 31, tzinfo=UTC),
              datetime(1, 1, 1, 2, tzinfo=plus2), None,
              {"$date": {"$numberLong": "253402300800000"}}, {"a": 1}]
    assert exact_texts(values, TIMESTAMPTZ) == {
        0: "0001-01-01T00:00:00+00:00", 1: "9999-12-31T23:59:59.999999+00:00",
        4: "0001-01-01T02:00:00+02:00", 6: "10000-01-01 00:00:00.000+00"}
    assert exact_texts([datetime.min, datetime.max, datetime(2000, 1, 1)], TIMESTAMP) == {
        0: "0001-01-01T00:00:00", 1: "9999-12-31T23:59:59.999999"}
    assert exact_texts([date.min, date.max, date(1, 1, 2)], "date") == {
        0: "0001-01-01", 1: "9999-12-31"}
    assert exact_texts([date.min], "text") == {}
