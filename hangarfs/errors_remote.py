"""The exceptions of remotes: object stores, the remote repository layout, push and fetch.

Beside ``hangarfs.errors`` (every other exception), under the same rules: each class says what went
wrong and carries the facts as attributes, and inherits the builtin whose meaning matches.
"""

from __future__ import annotations

from collections.abc import Sequence

from hangarfs.errors import CorruptData, HangarfsError


class RemoteError(HangarfsError):
    """Something went wrong with a remote (object storage or a shared directory).

    ``url`` names the remote, or the object within it, that the operation was about.
    """

    def __init__(self, url: str, message: str) -> None:
        self.url = url
        super().__init__(message)


class RemoteObjectNotFound(RemoteError, FileNotFoundError):
    def __init__(self, url: str, detail: str = '') -> None:
        self.detail = detail
        super().__init__(url, f'{url} does not exist' + (f' ({detail})' if detail else ''))

    def __str__(self) -> str:
        return str(self.args[0])


class RemoteObjectExists(RemoteError, FileExistsError):
    """A create-only write found the object there already."""

    def __init__(self, url: str) -> None:
        super().__init__(url, f'{url} exists already; a create-only write does not replace it')

    def __str__(self) -> str:
        return str(self.args[0])


class RemotePreconditionFailed(RemoteError):
    """A conditional write (compare-and-swap) found another version than the one expected."""

    def __init__(self, url: str, expected: str | None) -> None:
        self.expected = expected
        super().__init__(
            url, f'{url} changed since it was read (expected version {expected}); nothing was written'
        )


class RemoteUnreachable(RemoteError, ConnectionError):
    """The remote did not answer (connection refused, timeout, server errors) after bounded retries."""

    def __init__(self, url: str, cause: str, attempts: int, elapsed: float) -> None:
        self.cause = cause
        self.attempts = attempts
        self.elapsed = elapsed
        super().__init__(
            url,
            f'cannot reach {url}: {cause} (gave up after {attempts} attempt(s) in {elapsed:.1f} s); '
            'check the URL, the endpoint and the network, then try again',
        )

    def __str__(self) -> str:
        return str(self.args[0])


class RemoteWriteOutcomeUnknown(RemoteUnreachable):
    """A conditional write whose answer was lost: it may or may not have been applied."""


class RemoteAccessDenied(RemoteError, PermissionError):
    """Missing, invalid or insufficient credentials for a remote."""

    def __str__(self) -> str:
        return str(self.args[0])


class RemoteRequestError(RemoteError):
    """The remote refused a request for a reason no retry can fix (a 4xx answer other than 404/412)."""


class RemoteNotARepository(RemoteError):
    """A URL that does not hold a hangarfs remote (no config object, or a config of something else)."""


class RemoteFormatError(RemoteError):
    """A hangarfs remote of a newer format version, with unknown mandatory features, or a damaged config."""


class RemoteRefMoved(RemoteError):
    """The remote refs changed between reading and updating them: fetch, merge, then push again."""

    def __init__(
        self, url: str, expected_generation: int, found_generation: int | None, detail: str = ''
    ) -> None:
        self.expected_generation = expected_generation
        self.found_generation = found_generation
        found = 'gone' if found_generation is None else f'at generation {found_generation}'
        was = 'held no refs' if expected_generation == 0 else f'was at generation {expected_generation}'
        super().__init__(
            url,
            f'the remote branch moved: {url} {was} when read and is now {found}{detail}; nothing was '
            'changed. Fetch, merge, then push again',
        )


class RemoteBlobMissing(RemoteError, KeyError):
    """A blob digest that no index file of the remote names."""

    def __init__(self, url: str, digest: bytes) -> None:
        self.digest = digest
        super().__init__(url, f'{url} holds no blob {digest.hex()} (no index file names it)')

    def __str__(self) -> str:
        return str(self.args[0])


class UnsafeRemoteWrite(RemoteError):
    """A remote without conditional writes, asked to update refs without the single-writer opt-in."""


class RemoteCorrupt(CorruptData):
    """A remote object (pack, blob, index, refs, commit) that fails its checks; nothing is used from it."""

    def __init__(self, url: str, problem: str, *, digest: bytes | None = None) -> None:
        self.url = url
        self.digest = digest
        what = f'{url}' + (f' (blob {digest.hex()})' if digest is not None else '')
        super().__init__(
            f'{what}: {problem}; nothing was taken from it (run fsck on the remote for a full report)',
            where=url,
        )


class RemoteNotFound(HangarfsError, KeyError):
    """A remote name this repository does not know."""

    def __init__(self, name: str, known: Sequence[str] = ()) -> None:
        self.name = name
        here = f'remotes here: {", ".join(sorted(known))}' if known else 'this repository has no remotes'
        super().__init__(
            f'no remote named {name!r} ({here}); add one with repo.remote.add({name!r}, URL) '
            f'or `hangarfs remote add {name} URL`'
        )

    def __str__(self) -> str:
        return str(self.args[0])


class RemoteExists(HangarfsError, ValueError):
    """``remote add`` of a name that is taken."""

    def __init__(self, name: str, url: str) -> None:
        self.name = name
        super().__init__(
            f'a remote named {name!r} exists already (at {url}); remove it first to point the name '
            'elsewhere (repo.remote.remove(name), `hangarfs remote remove NAME`)'
        )


class RemoteBranchNotFound(RemoteError, KeyError):
    """A branch the remote does not have."""

    def __init__(self, url: str, remote: str, branch: str, available: Sequence[str]) -> None:
        self.remote = remote
        self.branch = branch
        there = f'its branches: {", ".join(sorted(available))}' if available else 'it has no branches yet'
        super().__init__(url, f'remote {remote!r} ({url}) has no branch {branch!r}; {there}')

    def __str__(self) -> str:
        return str(self.args[0])


class PushRejected(RemoteError):
    """A push that would drop commits from the remote branch (not a fast-forward), without force."""

    def __init__(
        self, url: str, remote: str, branch: str, remote_head: str, local_head: str, why: str
    ) -> None:
        self.remote = remote
        self.branch = branch
        self.remote_head = remote_head
        self.local_head = local_head
        super().__init__(
            url,
            f'push of {branch!r} to {remote!r} rejected: the remote branch is at {remote_head[:12]}, {why}; '
            f'fetch, merge, push (repo.remote.fetch({remote!r}, {branch!r}), then merge '
            f"'{remote}/{branch}'), or push with force=True (--force) to drop the remote's commits from "
            'the branch',
        )
