"""An install from a thread that never used the store before (the daemon's link bulk
worker): it once deadlocked, because ``install`` held the store's lock while the thread's
first connection took the same lock to list itself. Found by scripts/kill-daemon: every
set pushed over the link to a daemon with ``[access] policy = "enrolment"`` hung."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminald.enrolment.codec import content_digest
from terminald.enrolment.model import SetInfo
from terminald.revocation.keys import TrustedKeys
from terminald.store.enrolment_db import EnrolmentStore
from tests.unit.enrolment_support import NOW, signed, small_content

KEY = Ed25519PrivateKey.generate()
TRUSTED = TrustedKeys([KEY.public_key()])


def test_a_thread_with_no_connection_yet_installs_and_the_store_stays_usable(
    tmp_path: Path,
) -> None:
    store = EnrolmentStore(tmp_path / "enrolment.sqlite")  # this thread connects here
    content = small_content()
    results: list[SetInfo] = []
    worker = threading.Thread(
        target=lambda: results.append(
            store.install(signed(content, KEY, 1), TRUSTED, NOW + timedelta(hours=1))
        ),
        daemon=True,
    )
    worker.start()
    worker.join(20)
    assert not worker.is_alive(), "the install never finished: the store's lock deadlocked"
    assert [r.version for r in results] == [1]
    info = store.info()  # and another thread still reads (the lock was released)
    assert info is not None and info.digest == content_digest(content)
    store.close()
