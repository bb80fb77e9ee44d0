"""SIGKILL during enrolment installs: the database always opens, and holds the old set or
the new one (by content digest), never a mix (issue 11, "Must show").

A forked child installs a chain of small sets (fulls and deltas, alternately) as fast as
it can; the parent kills it after a random delay, then opens the database as the daemon
would and checks what it holds. Forking (not a new interpreter) keeps each run to a few
milliseconds, so the kill lands at random places inside installs and commits.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import time
from datetime import timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminald.enrolment.codec import content_digest
from terminald.enrolment.model import EnrolmentContent
from terminald.revocation.keys import TrustedKeys
from terminald.store.enrolment_db import EnrolmentStore
from terminald.store.high_water import read_high_water
from tests.unit.enrolment_support import NOW, signed, small_content

RUNS = 200
VERSIONS = 300
KEY = Ed25519PrivateKey.generate()
TRUSTED = TrustedKeys([KEY.public_key()])
AT = NOW + timedelta(hours=1)


def chain(rng: random.Random) -> tuple[list[EnrolmentContent], list[bytes], list[bytes]]:
    """Contents 1..VERSIONS (index 0 unused: nothing installed), each as a full set and as
    the delta from the one before; people come and go and change serials."""
    contents = [EnrolmentContent()]
    fulls, deltas = [b""], [b""]
    for version in range(1, VERSIONS + 1):
        extra = {f"P{n}": 10_000 + n * 7 + version % 3 for n in rng.sample(range(60), 25)}
        contents.append(small_content(extra))
        fulls.append(signed(contents[version], KEY, version))
        base = (version - 1, contents[version - 1]) if version > 1 else None
        deltas.append(signed(contents[version], KEY, version, base=base) if base else b"")
    return contents, fulls, deltas


def install_forever(path: Path, fulls: list[bytes], deltas: list[bytes]) -> None:
    """The child: install the next version, alternating full sets and deltas, until killed."""
    store = EnrolmentStore(path)
    while True:
        info = store.info()
        version = 0 if info is None else info.version
        if version >= VERSIONS:
            os._exit(0)
        following = version + 1
        data = deltas[following] if version and following % 2 else fulls[following]
        store.install(data, TRUSTED, AT)


def test_sigkill_during_installs_leaves_the_old_set_or_the_new(tmp_path: Path) -> None:
    rng = random.Random(11)
    contents, fulls, deltas = chain(rng)
    digests = {content_digest(c): v for v, c in enumerate(contents) if v}
    path = tmp_path / "enrolment.sqlite"
    versions_seen = set()
    started = time.monotonic()
    for _ in range(RUNS):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child, killed or exiting with os._exit
            try:
                install_forever(path, fulls, deltas)
            finally:
                os._exit(1)
        time.sleep(rng.uniform(0.0, 0.03))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)

        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        store = EnrolmentStore(path)
        info = store.info()
        content = store.content()
        mark = read_high_water(store.high_path)
        store.close()
        if info is None:
            assert content == EnrolmentContent() and store.problem() == ""
            continue
        digest = content_digest(content)
        assert digest == info.digest, f"a mix at version {info.version}"
        assert digests.get(digest) == info.version
        assert mark is None or mark.version <= info.version  # the mark follows the commit
        versions_seen.add(info.version)
        if info.version >= VERSIONS:  # the chain ran out: start it over
            for suffix in ("", "-wal", "-shm", ".high"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
    print(f"{RUNS} kills in {time.monotonic() - started:.1f} s; versions {len(versions_seen)}")
    assert len(versions_seen) > RUNS // 4  # the kills landed across many installs
