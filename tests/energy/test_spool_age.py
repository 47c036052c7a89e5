"""The spool remembers when each batch was spooled: the age of the oldest pending one (what
banhammer_energy_spool_oldest_age_seconds reports) survives a restart and falls as the replay drains."""

from __future__ import annotations

import sqlite3

from services.energy.influx.spool import Spool


class Clock:
    def __init__(self) -> None:
        self.t = 1_000.0

    def __call__(self) -> float:
        return self.t


async def test_oldest_age_follows_appends_removals_and_restarts(tmp_path):
    clock = Clock()
    spool = Spool(tmp_path, 1 << 20, clock=clock)
    await spool.open()
    assert spool.oldest_age() == 0.0
    await spool.append(b"m v=1 1", 1)
    clock.t += 10
    await spool.append(b"m v=2 2", 1)
    clock.t += 5
    assert spool.oldest_age() == 15.0
    (first, _, _), (second, _, _) = await spool.oldest(10)
    await spool.remove([first])
    assert spool.oldest_age() == 5.0  # the second batch is the oldest now
    await spool.close()

    clock.t += 100
    reopened = Spool(tmp_path, 1 << 20, clock=clock)
    await reopened.open()
    assert reopened.pending_batches == 1 and reopened.oldest_age() == 105.0  # kept across the restart
    await reopened.reject(second, "400 bad line")
    assert reopened.oldest_age() == 0.0
    await reopened.close()


async def test_a_spool_file_of_an_earlier_version_opens_with_its_batches_counted_from_now(tmp_path):
    db = sqlite3.connect(tmp_path / "influx-spool.sqlite3")
    db.execute("CREATE TABLE batches (id INTEGER PRIMARY KEY AUTOINCREMENT, points INTEGER NOT NULL, "
               "payload BLOB NOT NULL)")
    db.execute("INSERT INTO batches (points, payload) VALUES (1, x'6d20763d312031')")
    db.commit()
    db.close()
    clock = Clock()
    spool = Spool(tmp_path, 1 << 20, clock=clock)
    await spool.open()
    assert spool.pending_batches == 1 and spool.oldest_age() == 0.0
    clock.t += 7
    assert spool.oldest_age() == 7.0
    await spool.close()
