"""Guarding the unsynced staging environment against power loss.

Staging writes are not fsynced per transaction (they survive a killed process, which is what staging
promises), so a power cut can leave the staging LMDB damaged. A writer therefore records the machine's
boot id in ``staging/UNSYNCED`` (fsynced) before it writes, and removes it after syncing at close.
A writer that finds a mark from another boot knows the machine restarted with unsynced staging
writes: it checks the staging environment in a subprocess (a damaged LMDB may crash its reader), and
if the check fails it sets the environment aside as ``staging.lost-TIME`` and starts a clean one.
History is a separate, synced environment and is never affected.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

from hangarfs.backends.codec import checksum, fsync_dir

log = logging.getLogger('hangarfs.staging')
MARK = 'UNSYNCED'


def boot_id() -> str:
    try:
        return Path('/proc/sys/kernel/random/boot_id').read_text().strip()
    except OSError:
        return ''


def mark_unsynced(staging_dir: Path) -> None:
    """Record, durably, that this boot is about to write to staging without syncing."""
    staging_dir.mkdir(parents=True, exist_ok=True)
    mark = staging_dir / MARK
    tmp = staging_dir / f'.{MARK}.tmp'
    with open(tmp, 'w') as fh:
        fh.write(boot_id())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, mark)
    fsync_dir(str(staging_dir))


def mark_synced(staging_dir: Path) -> None:
    """Staging has just been synced: forget the mark."""
    try:
        os.unlink(staging_dir / MARK)
    except FileNotFoundError:
        return
    fsync_dir(str(staging_dir))


def needs_check(staging_dir: Path) -> bool:
    try:
        recorded = (staging_dir / MARK).read_text().strip()
    except OSError:
        return False
    return recorded != boot_id()


def check_in_subprocess(staging_dir: Path) -> tuple[bool, str]:
    """Open and read every entry of the staging environment in a child process."""
    proc = subprocess.run(
        [sys.executable, '-m', 'hangarfs.engine.staging_guard', str(staging_dir)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode == 0:
        return True, ''
    return False, (proc.stdout + proc.stderr).strip().splitlines()[-1:][0] if (
        proc.stdout + proc.stderr
    ).strip() else f'exit {proc.returncode}'


def set_aside(staging_dir: Path) -> Path:
    target = staging_dir.with_name(f'staging.lost-{time.strftime("%Y%m%d-%H%M%S")}')
    os.rename(staging_dir, target)
    fsync_dir(str(staging_dir.parent))
    return target


def guard(staging_dir: Path) -> None:
    """Before a writer opens staging: after a reboot with unsynced writes, check it or set it aside."""
    if not needs_check(staging_dir):
        return
    ok, why = check_in_subprocess(staging_dir)
    if ok:
        log.info('staging area from before a restart checked and kept: %s', staging_dir)
        return
    lost = set_aside(staging_dir)
    message = (
        f'the staging area was being written when the machine restarted and is damaged ({why}); '
        f'it was set aside at {lost} and a clean staging area started (committed history is unaffected)'
    )
    log.warning(message)
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def _check(path: str) -> None:
    """Child side: read everything; inline values must match their checksums."""
    from hangarfs.engine.lmdbenv import read_every_entry

    for name, k, v in read_every_entry(path):
        if name == 'locations' and v[:2] == b'30' and checksum(v[10:]) != int.from_bytes(v[2:10], 'little'):
            raise SystemExit(f'inline value {k.hex()} fails its checksum')
    print(json.dumps({'ok': True}))


if __name__ == '__main__':
    _check(sys.argv[1])
