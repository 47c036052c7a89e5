"""SensorService against the real InfluxDB: writes, streams, windowed queries, CSV export, and an
InfluxDB outage during which acknowledged readings are spooled and later replayed exactly once."""

from __future__ import annotations

import asyncio
import csv
import io
import time

import grpc
from google.protobuf import duration_pb2, timestamp_pb2

from banhammer.common.v1 import common_pb2
from banhammer.energy.v1 import sensor_pb2 as pb
from google.rpc import code_pb2, error_details_pb2, status_pb2

from .helpers import expect_error, violations

S = 10**9


def ts(ns: int) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromNanoseconds(ns)
    return out


def reading(b, t_ns, value, sensor="temperature", floor="3", room="office_301", unit="celsius", status="normal"):
    return pb.SensorReading(building_id=b, sensor_type=sensor, floor=floor, room=room, value=value, unit=unit,
                            status=status, time=ts(t_ns))


def base_time() -> int:
    """An hour-aligned start 2-3 h ago (well inside retention; every window size used here aligns)."""
    now = time.time_ns() - 2 * 3600 * S
    return now - now % (3600 * S)


_building = iter(range(900_000, 1_000_000))


def next_building() -> int:
    return next(_building)


def time_range(start, end):
    return common_pb2.TimeRange(start_time=ts(start), end_time=ts(end))


async def test_write_then_query_windows_grouped_by_tags(stubs):
    b, t0 = next_building(), base_time()
    rows = [reading(b, t0 + i * 10 * S, float(i), room=room) for room in ("r1", "r2") for i in range(12)]
    reply = await stubs.sensors.WriteReadings(pb.WriteReadingsRequest(readings=rows))
    assert reply.accepted_count == 24 and not reply.spooled
    want = {1: [2.5, 8.5], 2: [0.0, 6.0], 3: [5.0, 11.0], 4: [5.0, 11.0]}  # mean, min, max, last per minute
    for aggregate, values in want.items():
        q = await stubs.sensors.QueryReadings(pb.QueryReadingsRequest(
            time_range=time_range(t0, t0 + 120 * S), window=duration_pb2.Duration(seconds=60), aggregate=aggregate,
            group_by=[pb.SENSOR_TAG_ROOM], filter=pb.ReadingFilter(building_ids=[b])))
        assert [s.tags["room"] for s in q.series] == ["r1", "r2"]
        for s in q.series:
            assert s.tags["sensor_type"] == "temperature"
            assert [p.value for p in s.points] == values
            assert [p.count for p in s.points] == [6, 6]
            assert [p.time.ToNanoseconds() for p in s.points] == [t0, t0 + 60 * S]
    merged = await stubs.sensors.QueryReadings(pb.QueryReadingsRequest(
        time_range=time_range(t0, t0 + 120 * S), window=duration_pb2.Duration(seconds=120), aggregate=pb.AGGREGATE_MAX,
        filter=pb.ReadingFilter(building_ids=[b], rooms=["r2"])))
    assert [(p.value, p.count) for s in merged.series for p in s.points] == [(11.0, 12)]


async def test_columnar_series_are_the_same_readings(stubs):
    b, t0 = next_building(), base_time()
    one = pb.SeriesReadings(building_id=b, sensor_type="temperature", floor="1", room="r1", unit="celsius",
                            status="normal", values=[float(i) for i in range(12)],
                            times_unix_nano=[t0 + i * 10 * S for i in range(12)])
    two = pb.SeriesReadings(building_id=b, sensor_type="temperature", floor="1", room="r2", unit="celsius",
                            values=[5.0, 7.0], times_unix_nano=[t0, t0 + 70 * S])
    reply = await stubs.sensors.WriteReadings(pb.WriteReadingsRequest(
        readings=[reading(b, t0 + 5 * S, 100.0, floor="1", room="r3")], series=[one, two]))
    assert reply.accepted_count == 15 and not reply.spooled
    q = await stubs.sensors.QueryReadings(pb.QueryReadingsRequest(
        time_range=time_range(t0, t0 + 120 * S), window=duration_pb2.Duration(seconds=60), aggregate=pb.AGGREGATE_MAX,
        group_by=[pb.SENSOR_TAG_ROOM], filter=pb.ReadingFilter(building_ids=[b])))
    got = {s.tags["room"]: [(p.value, p.count) for p in s.points] for s in q.series}
    assert got == {"r1": [(5.0, 6), (11.0, 6)], "r2": [(5.0, 1), (7.0, 1)], "r3": [(100.0, 1)]}
    csv_rows = [c.chunk async for c in stubs.sensors.ExportReadingsCsv(pb.ExportReadingsCsvRequest(
        time_range=time_range(t0, t0 + S), filter=pb.ReadingFilter(building_ids=[b], rooms=["r1"])))]
    assert b"celsius,normal" in b"".join(csv_rows)  # unit and status travel with every value

    # On a stream too, and without times: every value at receive time.
    before = time.time_ns()
    acks = [a async for a in stubs.sensors.StreamReadings(iter([pb.StreamReadingsRequest(sequence=7, series=[
        pb.SeriesReadings(building_id=b, sensor_type="humidity", values=[40.0, 41.0, 42.0])])]))]
    assert [(a.sequence, a.accepted_count, a.HasField("error")) for a in acks] == [(7, 3, False)]
    q = await stubs.sensors.QueryReadings(pb.QueryReadingsRequest(
        time_range=time_range(before - S, time.time_ns() + S), window=duration_pb2.Duration(seconds=3600),
        aggregate=pb.AGGREGATE_MAX, filter=pb.ReadingFilter(building_ids=[b], sensor_types=["humidity"])))
    assert [(p.value, p.count) for s in q.series for p in s.points] == [(42.0, 1)]  # same time: one point kept


async def test_columnar_validation_names_the_series_and_the_value(stubs):
    b, t0 = next_building(), base_time()
    shapes = [pb.SeriesReadings(building_id=b, sensor_type="t", values=[1.0, 2.0], times_unix_nano=[t0]),
              pb.SeriesReadings(building_id=b, sensor_type="t")]
    err = await expect_error(stubs.sensors.WriteReadings(pb.WriteReadingsRequest(series=shapes)),
                             grpc.StatusCode.INVALID_ARGUMENT)
    assert set(violations(err)) == {"series[0].times_unix_nano", "series[1].values"}
    values = [pb.SeriesReadings(building_id=b, sensor_type="t", values=[1.0, 2.0, float("nan")],
                                times_unix_nano=[t0, t0 + S, t0 + 2 * S]),
              pb.SeriesReadings(building_id=b, sensor_type="", floor="x" * 17, values=[1.0, 2.0],
                                times_unix_nano=[t0, 1])]
    err = await expect_error(stubs.sensors.WriteReadings(pb.WriteReadingsRequest(
        readings=[reading(0, t0, 1.0)], series=values)), grpc.StatusCode.INVALID_ARGUMENT)
    found = violations(err)
    assert set(found) == {"readings[0].building_id", "series[0].values[2]", "series[1].sensor_type",
                          "series[1].floor", "series[1].times_unix_nano[1]"}
    listed = [f for f in _violation_fields(err) if f == "series[1].sensor_type"]
    assert listed == ["series[1].sensor_type"]  # reported once for the series, not once per value


def _violation_fields(err) -> list[str]:
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            for detail in status_pb2.Status.FromString(value).details:
                bad = error_details_pb2.BadRequest()
                if detail.Unpack(bad):
                    return [v.field for v in bad.field_violations]
    return []


async def test_tags_with_special_characters_round_trip(stubs):
    b, t0 = next_building(), base_time()
    weird = pb.SensorReading(building_id=b, sensor_type="power meter,main=1", floor="B 1", room='Room "A",=\\x',
                             value=1.5, unit="kW", status='say "ok", \\ done', time=ts(t0))
    await stubs.sensors.WriteReadings(pb.WriteReadingsRequest(readings=[weird]))
    chunks = [c.chunk async for c in stubs.sensors.ExportReadingsCsv(pb.ExportReadingsCsvRequest(
        time_range=time_range(t0, t0 + S), filter=pb.ReadingFilter(building_ids=[b])))]
    rows = list(csv.reader(io.StringIO(b"".join(chunks).decode(), newline="")))
    assert rows[1][1:] == [str(b), "power meter,main=1", "B 1", 'Room "A",=\\x', "1.5", "kW", 'say "ok", \\ done']


async def test_write_validation_is_all_or_nothing(stubs):
    b, t0 = next_building(), base_time()
    old = time.time_ns() - 31 * 86400 * S
    bad = [reading(b, t0, 1.0), reading(0, t0, float("inf"), sensor=""), reading(b, old, 1.0, room="a\\"),
           reading(b, t0, 1.0, floor="x" * 17, unit="u" * 21, status="line\nbreak")]
    err = await expect_error(stubs.sensors.WriteReadings(pb.WriteReadingsRequest(readings=bad)),
                             grpc.StatusCode.INVALID_ARGUMENT)
    assert set(violations(err)) == {"readings[1].building_id", "readings[1].value", "readings[1].sensor_type",
                                    "readings[2].time", "readings[2].room", "readings[3].floor", "readings[3].unit",
                                    "readings[3].status"}
    await expect_error(stubs.sensors.WriteReadings(pb.WriteReadingsRequest()), grpc.StatusCode.INVALID_ARGUMENT)
    q = await stubs.sensors.QueryReadings(pb.QueryReadingsRequest(
        time_range=time_range(t0, t0 + S), window=duration_pb2.Duration(seconds=1), aggregate=pb.AGGREGATE_LAST,
        filter=pb.ReadingFilter(building_ids=[b])))
    assert not q.series  # the valid first reading was not written either


async def test_query_validation(stubs):
    t0 = base_time()
    err = await expect_error(stubs.sensors.QueryReadings(pb.QueryReadingsRequest(
        window=duration_pb2.Duration(seconds=0, nanos=5), group_by=[1, 1, 0])), grpc.StatusCode.INVALID_ARGUMENT)
    assert {"time_range.start_time", "window", "aggregate", "group_by", "group_by[2]"} <= set(violations(err))
    err = await expect_error(stubs.sensors.QueryReadings(pb.QueryReadingsRequest(
        time_range=time_range(t0 - 31 * 86400 * S, t0), window=duration_pb2.Duration(seconds=60),
        aggregate=pb.AGGREGATE_MEAN)), grpc.StatusCode.INVALID_ARGUMENT)
    assert "time_range" in violations(err)
    err = await expect_error(stubs.sensors.QueryReadings(pb.QueryReadingsRequest(
        time_range=time_range(t0 - 2 * 86400 * S, t0), window=duration_pb2.Duration(seconds=1),
        aggregate=pb.AGGREGATE_MEAN)), grpc.StatusCode.INVALID_ARGUMENT)
    assert "window" in violations(err)


async def test_stream_acks_each_batch_and_reports_errors_in_band(stubs):
    b, t0 = next_building(), base_time()

    async def batches():
        yield pb.StreamReadingsRequest(sequence=1, readings=[reading(b, t0 + i * S, 1.0) for i in range(100)])
        yield pb.StreamReadingsRequest(sequence=2, readings=[reading(b, t0, float("nan"))])
        yield pb.StreamReadingsRequest(sequence=3, readings=[reading(b, t0 + (100 + i) * S, 2.0) for i in range(50)])

    acks = [a async for a in stubs.sensors.StreamReadings(batches())]
    assert [(a.sequence, a.accepted_count) for a in acks] == [(1, 100), (2, 0), (3, 50)]
    assert acks[1].error.code == code_pb2.INVALID_ARGUMENT and acks[0].error.code == 0
    q = await stubs.sensors.QueryReadings(pb.QueryReadingsRequest(
        time_range=time_range(t0, t0 + 200 * S), window=duration_pb2.Duration(seconds=3600),
        aggregate=pb.AGGREGATE_MAX, filter=pb.ReadingFilter(building_ids=[b])))
    assert [p.count for s in q.series for p in s.points] == [150] or \
        sum(p.count for s in q.series for p in s.points) == 150


async def test_csv_export_streams_all_rows_in_time_order(stubs, monkeypatch):
    from services.energy import sensor_query

    monkeypatch.setattr(sensor_query, "EXPORT_PAGE", 7)  # force several keyset pages, with ties
    monkeypatch.setattr(sensor_query, "CHUNK_BYTES", 256)
    b, t0 = next_building(), base_time()
    rows = [reading(b, t0 + (i // 3) * S, float(i), room=f"r{i % 3}") for i in range(30)]
    await stubs.sensors.WriteReadings(pb.WriteReadingsRequest(readings=rows))
    chunks = [c.chunk async for c in stubs.sensors.ExportReadingsCsv(pb.ExportReadingsCsvRequest(
        time_range=time_range(t0, t0 + 60 * S), filter=pb.ReadingFilter(building_ids=[b])))]
    assert len(chunks) > 3 and all(len(c) <= 256 for c in chunks)
    text = b"".join(chunks).decode()
    assert text.startswith("time,building_id,sensor_type,floor,room,value,unit,status\r\n")
    parsed = list(csv.reader(io.StringIO(text, newline="")))[1:]
    assert sorted(float(r[5]) for r in parsed) == [float(i) for i in range(30)]
    times = [r[0] for r in parsed]
    assert times == sorted(times) and times[0].endswith(".000000000Z")


async def test_influxdb_outage_spools_and_replays_exactly_once(stubs, influx_server, service, energy):
    b, t0 = next_building(), base_time()
    before = [reading(b, t0 + i * S, float(i), room="spool") for i in range(10)]
    assert not (await stubs.sensors.WriteReadings(pb.WriteReadingsRequest(readings=before))).spooled
    # InfluxDB keeps the last point written for a series and time, so conflicting values show the
    # replay's order: a reordered or repeated batch would leave an older value in place.
    corrected, times = next_building(), [t0 + i * S for i in range(5)]
    versions = [[reading(corrected, t, 1.0) for t in times], [reading(corrected, t, 2.0) for t in times],
                [reading(corrected, times[0], 3.0)]]
    with influx_server.down():
        during = [reading(b, t0 + (10 + i) * S, float(10 + i), room="spool") for i in range(3000)]
        replies = [await stubs.sensors.WriteReadings(pb.WriteReadingsRequest(readings=during[i:i + 1000]))
                   for i in range(0, 3000, 1000)]
        for version in versions:
            replies.append(await stubs.sensors.WriteReadings(pb.WriteReadingsRequest(readings=version)))
        assert all(r.spooled for r in replies) and [r.accepted_count for r in replies] == [1000, 1000, 1000, 5, 5, 1]
        assert service.writer.spool.pending_batches >= 6
    deadline = time.monotonic() + 30
    while service.writer.spool.pending_batches:
        assert time.monotonic() < deadline, "spool not drained after InfluxDB returned"
        await asyncio.sleep(0.1)
    q = await stubs.sensors.QueryReadings(pb.QueryReadingsRequest(
        time_range=time_range(t0, t0 + 3600 * S), window=duration_pb2.Duration(seconds=3600),
        aggregate=pb.AGGREGATE_MAX, filter=pb.ReadingFilter(building_ids=[b])))
    (series,) = q.series
    assert [(p.count, p.value) for p in series.points] == [(3010, 3009.0)]
    chunks = [c.chunk async for c in stubs.sensors.ExportReadingsCsv(pb.ExportReadingsCsvRequest(
        time_range=time_range(t0, t0 + 10 * S), filter=pb.ReadingFilter(building_ids=[corrected])))]
    stored = [float(row[5]) for row in list(csv.reader(io.StringIO(b"".join(chunks).decode(), newline="")))[1:]]
    assert stored == [3.0, 2.0, 2.0, 2.0, 2.0]  # in time order: the last write of each point won
    after = await stubs.sensors.WriteReadings(pb.WriteReadingsRequest(readings=[reading(b, t0 + 4000 * S, 1.0)]))
    assert not after.spooled
