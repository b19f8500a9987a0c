"""The Linux FUSE protocol spoken directly over ``/dev/fuse``: mounting, requests, replies, notifications.

The low-level adapter (``lowlevel.py``) talks to the kernel itself rather than through a binding, for
what no Python binding of libfuse gives (measured and explained in BENCHMARKS.md): the open flags of
an OPENDIR reply (``FOPEN_CACHE_DIR``, so the kernel caches listings), READDIRPLUS replies built in bulk,
notifications from any thread, and a request costing a read, a ``struct`` unpack and a write. This is
how go-fuse, jacobsa/fuse and Rust's fuser work too; the layouts are those of ``<linux/fuse.h>``
(protocol 7.31, which every kernel since 5.4 speaks; newer kernels accept it).

Mounting is ``mount(2)`` as root, and otherwise ``fusermount3`` (libfuse's setuid helper): it opens
``/dev/fuse``, mounts it and passes the descriptor back over a socket (``_FUSE_COMMFD``).
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import struct
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

# ------------------------------------------------------------------------------------------ opcodes

LOOKUP, FORGET, GETATTR, SETATTR, READLINK, SYMLINK = 1, 2, 3, 4, 5, 6
MKNOD, MKDIR, UNLINK, RMDIR, RENAME, LINK, OPEN, READ, WRITE = 8, 9, 10, 11, 12, 13, 14, 15, 16
STATFS, RELEASE, FSYNC, SETXATTR, GETXATTR, LISTXATTR, REMOVEXATTR = 17, 18, 20, 21, 22, 23, 24
FLUSH, INIT, OPENDIR, READDIR, RELEASEDIR, FSYNCDIR = 25, 26, 27, 28, 29, 30
GETLK, SETLK, SETLKW, ACCESS, CREATE, INTERRUPT, BMAP, DESTROY, IOCTL, POLL = (
    31,
    32,
    33,
    34,
    35,
    36,
    37,
    38,
    39,
    40,
)
BATCH_FORGET, FALLOCATE, READDIRPLUS, RENAME2, LSEEK, COPY_FILE_RANGE = 42, 43, 44, 45, 46, 47
SYNCFS, TMPFILE = 50, 51

NO_REPLY = frozenset({FORGET, BATCH_FORGET, INTERRUPT})
OPCODE_NAMES = {
    v: n
    for n, v in dict(globals()).items()
    if n.isupper() and isinstance(v, int) and 0 < v <= TMPFILE and n not in ('ROOT_ID',)
}

# INIT flags (fuse_init_in/out.flags)
ASYNC_READ = 1 << 0
ATOMIC_O_TRUNC = 1 << 3
BIG_WRITES = 1 << 5
AUTO_INVAL_DATA = 1 << 12
DO_READDIRPLUS = 1 << 13
READDIRPLUS_AUTO = 1 << 14
NO_OPEN_SUPPORT = 1 << 17
PARALLEL_DIROPS = 1 << 18
MAX_PAGES = 1 << 22
CACHE_SYMLINKS = 1 << 23
NO_OPENDIR_SUPPORT = 1 << 24
EXPLICIT_INVAL_DATA = 1 << 25

# open reply flags (fuse_open_out.open_flags)
FOPEN_DIRECT_IO = 1 << 0
FOPEN_KEEP_CACHE = 1 << 1
FOPEN_CACHE_DIR = 1 << 3
FOPEN_NOFLUSH = 1 << 5

# setattr valid bits
FATTR_MODE, FATTR_UID, FATTR_GID, FATTR_SIZE = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FATTR_ATIME, FATTR_MTIME, FATTR_FH = 1 << 4, 1 << 5, 1 << 6
FATTR_ATIME_NOW, FATTR_MTIME_NOW, FATTR_CTIME = 1 << 7, 1 << 8, 1 << 10

RENAME_NOREPLACE, RENAME_EXCHANGE = 1 << 0, 1 << 1

NOTIFY_INVAL_INODE, NOTIFY_INVAL_ENTRY, NOTIFY_STORE = 2, 3, 4

PROTOCOL_MAJOR = 7
PROTOCOL_MINOR = 31
ROOT_ID = 1

# ------------------------------------------------------------------------------------------ layouts

IN_HEADER = struct.Struct('<IIQQIIIHH')  # len opcode unique nodeid uid gid pid total_extlen padding
OUT_HEADER = struct.Struct('<IiQ')  # len error unique
ATTR = struct.Struct('<QQQQQQIIIIIIIIII')  # fuse_attr: 88 bytes
ENTRY_OUT = struct.Struct('<QQQQII' + ATTR.format[1:])  # fuse_entry_out: 128 bytes
ATTR_OUT = struct.Struct('<QII' + ATTR.format[1:])  # fuse_attr_out: 104 bytes
DIRENT = struct.Struct('<QQII')  # fuse_dirent without its name: 24 bytes
OPEN_OUT = struct.Struct('<QII')
OPEN_IN = struct.Struct('<II')
READ_IN = struct.Struct('<QQIIQII')  # fh offset size read_flags lock_owner flags padding
WRITE_IN = struct.Struct('<QQIIQII')
WRITE_OUT = struct.Struct('<II')
RELEASE_IN = struct.Struct('<QIIQ')
FLUSH_IN = struct.Struct('<QIIQ')
FSYNC_IN = struct.Struct('<QII')
GETATTR_IN = struct.Struct('<IIQ')
SETATTR_IN = struct.Struct('<IIQQQQQQIIIIIIII')
CREATE_IN = struct.Struct('<IIII')
MKDIR_IN = struct.Struct('<II')
RENAME_IN = struct.Struct('<Q')
RENAME2_IN = struct.Struct('<QII')
FORGET_IN = struct.Struct('<Q')
BATCH_FORGET_IN = struct.Struct('<II')
FORGET_ONE = struct.Struct('<QQ')
GETXATTR_IN = struct.Struct('<II')
GETXATTR_OUT = struct.Struct('<II')
ACCESS_IN = struct.Struct('<II')
INIT_IN = struct.Struct('<IIII')  # major minor max_readahead flags (flags2 follows from 7.36)
INIT_OUT = struct.Struct('<IIIIHHIIHHI7I')  # 64 bytes
STATFS_OUT = struct.Struct('<QQQQQIIII6I')
IOCTL_IN = struct.Struct('<QIIQII')
NOTIFY_INVAL_INODE_OUT = struct.Struct('<Qqq')
NOTIFY_INVAL_ENTRY_OUT = struct.Struct('<QII')
NOTIFY_STORE_OUT = struct.Struct('<QQII')

S_IFDIR_TYPE = 4  # DT_DIR
S_IFREG_TYPE = 8  # DT_REG


def align8(n: int) -> int:
    return (n + 7) & ~7


class FuseError(Exception):
    """An operation's answer is this errno (raised by handlers, turned into an error reply)."""

    def __init__(self, code: int) -> None:
        super().__init__(errno.errorcode.get(code, str(code)))
        self.errno = code


@dataclass(frozen=True)
class Timeout:
    """A cache timeout as the protocol carries it (seconds and nanoseconds)."""

    sec: int
    nsec: int

    @classmethod
    def of(cls, seconds: float) -> Timeout:
        whole = int(seconds)
        return cls(whole, int((seconds - whole) * 1e9))


def attr_fields(
    ino: int, size: int, mode: int, nlink: int, mtime_ns: int, uid: int, gid: int
) -> tuple[int, ...]:
    """The 16 fields of ``struct fuse_attr`` (atime = ctime = mtime)."""
    sec, nsec = divmod(mtime_ns, 1_000_000_000)
    return (
        ino,
        size,
        (size + 511) // 512,
        sec,
        sec,
        sec,
        nsec,
        nsec,
        nsec,
        mode,
        nlink,
        uid,
        gid,
        0,
        4096,
        0,
    )


def dirent(ino: int, offset: int, name: bytes, dtype: int) -> bytes:
    """One ``struct fuse_dirent`` record, padded to 8 bytes."""
    n = len(name)
    return DIRENT.pack(ino, offset, n, dtype) + name + b'\0' * (align8(24 + n) - 24 - n)


# ------------------------------------------------------------------------------------------ mounting


MS_RDONLY, MS_NOSUID, MS_NODEV = 1, 2, 4
MNT_DETACH = 2


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def mount(mountpoint: str, options: Sequence[str]) -> int:
    """Mount a FUSE filesystem at ``mountpoint``; the ``/dev/fuse`` descriptor.

    As root, ``mount(2)`` directly (no helper process to start); otherwise, or if that is refused,
    libfuse's setuid ``fusermount3``."""
    if os.geteuid() == 0:
        fd = _mount_directly(mountpoint, options)
        if fd is not None:
            return fd
    return _mount_with_fusermount(mountpoint, options)


def _mount_directly(mountpoint: str, options: Sequence[str]) -> int | None:
    flags = MS_NOSUID | MS_NODEV | (MS_RDONLY if 'ro' in options else 0)
    named = dict(o.split('=', 1) for o in options if '=' in o)
    try:
        fd = os.open('/dev/fuse', os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return None
    data = f'fd={fd},rootmode=40000,user_id={os.getuid()},group_id={os.getgid()}'
    fstype = 'fuse.' + named['subtype'] if 'subtype' in named else 'fuse'
    source = named.get('fsname', 'fuse')
    if _libc().mount(source.encode(), mountpoint.encode(), fstype.encode(), flags, data.encode()) != 0:
        os.close(fd)
        return None
    return fd


def _mount_with_fusermount(mountpoint: str, options: Sequence[str]) -> int:
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        os.set_inheritable(child.fileno(), True)
        env = {**os.environ, '_FUSE_COMMFD': str(child.fileno())}
        proc = subprocess.run(
            ['fusermount3', '-o', ','.join(options), '--', mountpoint],
            env=env,
            pass_fds=(child.fileno(),),
            capture_output=True,
            text=True,
        )
        child.close()
        if proc.returncode != 0:
            reason = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'fusermount3 failed'
            raise OSError(errno.EIO, f'cannot mount {mountpoint}: {reason}')
        _, fds, _, _ = socket.recv_fds(parent, 1, 1)
        if not fds:
            raise OSError(errno.EIO, f'cannot mount {mountpoint}: fusermount3 sent no /dev/fuse descriptor')
        return fds[0]
    finally:
        parent.close()
        if child.fileno() >= 0:
            child.close()


def unmount(mountpoint: str, *, lazy: bool = True) -> None:
    """Unmount (lazily by default: a daemon going away must not hang on a busy mount)."""
    if os.geteuid() == 0 and _libc().umount2(mountpoint.encode(), MNT_DETACH if lazy else 0) == 0:
        return
    subprocess.run(['fusermount3', '-u', *(['-z'] if lazy else []), '--', mountpoint], capture_output=True)


# ------------------------------------------------------------------------------------------ the channel


class Channel:
    """One ``/dev/fuse`` connection: read requests into a reused buffer, write replies and notifications.

    Writes are single ``writev`` calls, so replies from the request loop and notifications from other
    threads never interleave.
    """

    def __init__(self, fd: int, buffer_size: int) -> None:
        self.fd = fd
        self.buffer = bytearray(buffer_size)
        self.view = memoryview(self.buffer)

    def receive(self) -> memoryview | None:
        """The next request (a view of the reused buffer), or None once the filesystem is unmounted."""
        while True:
            try:
                n = os.readv(self.fd, [self.buffer])
            except OSError as err:
                if err.errno in (errno.ENOENT, errno.EINTR, errno.EAGAIN):
                    continue  # ENOENT: the request was interrupted before we read it
                if err.errno == errno.ENODEV:
                    return None
                raise
            if n == 0:
                return None
            return self.view[:n]

    def reply(self, unique: int, *parts: bytes | memoryview) -> None:
        length = OUT_HEADER.size + sum(len(p) for p in parts)
        self._write([OUT_HEADER.pack(length, 0, unique), *parts])

    def error(self, unique: int, code: int) -> None:
        try:
            os.write(self.fd, OUT_HEADER.pack(OUT_HEADER.size, -code, unique))
        except OSError as err:
            if err.errno not in (errno.ENOENT, errno.ENODEV):
                raise

    def notify(self, code: int, *parts: bytes) -> None:
        length = OUT_HEADER.size + sum(len(p) for p in parts)
        self._write([OUT_HEADER.pack(length, code, 0), *parts])

    def _write(self, parts: list[bytes | memoryview]) -> None:
        try:
            os.writev(self.fd, parts)
        except OSError as err:
            # ENOENT: the request was interrupted meanwhile; ENODEV: unmounted. Nobody waits for it.
            if err.errno not in (errno.ENOENT, errno.ENODEV):
                raise

    def notify_inval_inode(self, ino: int, offset: int = 0, length: int = 0) -> None:
        """Drop the kernel's cached attributes and data (or listing) of an inode."""
        try:
            self.notify(NOTIFY_INVAL_INODE, NOTIFY_INVAL_INODE_OUT.pack(ino, offset, length))
        except OSError as err:
            if err.errno != errno.ENOENT:  # ENOENT: the kernel holds no such inode
                raise

    def notify_inval_entry(self, parent: int, name: bytes) -> None:
        """Drop the kernel's cached name ``name`` in directory ``parent`` (positive or negative)."""
        try:
            self.notify(NOTIFY_INVAL_ENTRY, NOTIFY_INVAL_ENTRY_OUT.pack(parent, len(name), 0), name + b'\0')
        except OSError as err:
            if err.errno != errno.ENOENT:
                raise

    def notify_store(self, ino: int, offset: int, data: bytes) -> None:
        """Put ``data`` into the kernel's page cache of inode ``ino`` at ``offset`` (no READ will ask)."""
        self.notify(NOTIFY_STORE, NOTIFY_STORE_OUT.pack(ino, offset, len(data), 0), data)

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass
