"""Every bad input of issue 2, each its own test: a clear error, and nothing already stored changes.

Each test starts from ``stocked``, a repository with one commit of every kind of column and a few
staged changes on top, and compares what the writer shows and what every branch holds before and
after the bad call.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hangarfs import (
    ClosedError,
    ColumnExists,
    CorruptData,
    IntegrityError,
    InvalidKey,
    NothingToCommit,
    ReadOnlyError,
    RefNotFound,
    Repository,
    SampleReadError,
    SchemaMismatch,
    WriterLockHeld,
)
from hangarfs.errors import HangarfsError
from tests.helpers import Children, checkout_contents, flip_byte, new_repository, repository_state

RNG = np.random.default_rng(7)
IMAGES = RNG.integers(0, 256, (10, 784), dtype=np.uint8)


@pytest.fixture
def stocked(repo: Repository) -> Repository:
    """One commit holding every kind of column, then a few staged (uncommitted) changes."""
    with closing(repo.checkout(write=True)) as co:
        images = co.add_ndarray_column('images', prototype=IMAGES[0])
        images.update_batch(range(8), IMAGES[:8])
        co.add_ndarray_column('labels', shape=(1,), dtype=np.int64, backend='numpy').update(
            {i: np.array([i % 10]) for i in range(8)}
        )
        co.add_ndarray_column('volumes', shape=(8, 8, 8), dtype=np.float32, variable_shape=True)['v'] = (
            np.ones((2, 3, 4), np.float32)
        )
        co.add_str_column('captions').update({0: 'zero', 'x': 'ex'})
        co.add_bytes_column('blobs')[0] = b'\x00\x01'
        co.add_ndarray_column('scans', shape=(4, 4), dtype=np.uint16, contains_subsamples=True)['p1'] = {
            'axial': np.eye(4, dtype=np.uint16)
        }
        co.metadata['source'] = 'tests'
        co.commit('stocked')
        images[8] = IMAGES[8]  # staged, not committed
        co['captions']['staged'] = 'not committed yet'
    return repo


@pytest.fixture
def writer(stocked: Repository) -> Iterator[Any]:
    """The writer of ``stocked``; the test checks that neither it nor the repository changed."""
    before_repo = repository_state(stocked)
    co = stocked.checkout(write=True)
    before = checkout_contents(co)
    yield co
    if not co._closed:
        assert checkout_contents(co) == before, 'a refused call changed what the writer shows'
        co.close()
    assert repository_state(stocked) == before_repo, 'a refused call changed a commit or a branch'
    with closing(stocked.checkout(write=True)) as again:
        assert checkout_contents(again) == before, 'a refused call changed the staging area'


# ---------------------------------------------------------------------------------------- schema


def test_wrong_dtype_names_expected_and_got(writer: Any) -> None:
    with pytest.raises(SchemaMismatch, match=r"column 'images': expected dtype uint8, got float32 instead"):
        writer['images'][0] = IMAGES[0].astype(np.float32)
    assert isinstance(SchemaMismatch('c', 'x', 1, 2), ValueError)


def test_wrong_dtype_in_a_new_key_stores_nothing(writer: Any) -> None:
    with pytest.raises(SchemaMismatch, match='expected dtype int64, got int32'):
        writer['labels'][100] = np.array([1], np.int32)
    assert 100 not in writer['labels']


def test_byte_swapped_dtype_is_named_as_such(writer: Any) -> None:
    with pytest.raises(SchemaMismatch, match='expected dtype int64, got >i8 instead'):
        writer['labels'][0] = np.array([1], dtype='>i8')


def test_a_str_that_is_not_utf8_encodable(writer: Any) -> None:
    with pytest.raises(SchemaMismatch, match='UTF-8'):
        writer['captions'][0] = 'lone surrogate \ud800'


def test_wrong_shape_names_expected_and_got(writer: Any) -> None:
    with pytest.raises(SchemaMismatch, match=r'expected shape \(784,\), got \(28, 28\) instead'):
        writer['images'][0] = IMAGES[0].reshape(28, 28)


def test_a_value_that_is_not_an_array(writer: Any) -> None:
    with pytest.raises(SchemaMismatch, match=r'expected a value of type numpy\.ndarray, got list'):
        writer['images'][0] = list(IMAGES[0])
    with pytest.raises(SchemaMismatch, match='expected a value of type str, got bytes'):
        writer['captions'][0] = b'zero'
    with pytest.raises(SchemaMismatch, match='expected a value of type bytes, got str'):
        writer['blobs'][0] = 'text'


def test_wrong_dtype_in_update_batch_stores_nothing(writer: Any) -> None:
    with pytest.raises(SchemaMismatch, match='expected dtype uint8, got int16'):
        writer['images'].update_batch([0, 1, 50], IMAGES[:3].astype(np.int16))


def test_wrong_row_shape_in_update_batch_stores_nothing(writer: Any) -> None:
    with pytest.raises(SchemaMismatch, match=r'expected rows of shape \(784,\), got \(783,\)'):
        writer['images'].update_batch([0, 1, 50], IMAGES[:3, :783])


def test_one_bad_value_in_update_stores_none_of_them(writer: Any) -> None:
    good, bad = IMAGES[9], IMAGES[9][:10]
    with pytest.raises(SchemaMismatch, match='shape'):
        writer['images'].update({0: good, 60: good, 61: bad, 62: good})
    assert 60 not in writer['images']


def test_one_bad_sample_in_nested_update_stores_none_of_them(writer: Any) -> None:
    eye = np.eye(4, dtype=np.uint16)
    with pytest.raises(SchemaMismatch, match='dtype'):
        writer['scans'].update({'p1': {'coronal': eye}, 'p2': {'axial': eye, 'bad': eye.astype(np.int8)}})


def test_variable_shape_sample_larger_than_max_shape(writer: Any) -> None:
    with pytest.raises(SchemaMismatch, match=r'each at most \(8, 8, 8\), got \(9, 8, 8\)'):
        writer['volumes']['v'] = np.zeros((9, 8, 8), np.float32)


def test_variable_shape_sample_with_other_dimensions(writer: Any) -> None:
    with pytest.raises(
        SchemaMismatch, match=r'a shape of 3 dimensions each at most \(8, 8, 8\), got \(8, 8\)'
    ):
        writer['volumes']['w'] = np.zeros((8, 8), np.float32)


def test_wrong_subsample_in_a_nested_column(writer: Any) -> None:
    with pytest.raises(SchemaMismatch, match=r'expected shape \(4, 4\), got \(4, 5\)'):
        writer['scans']['p1', 'axial'] = np.zeros((4, 5), np.uint16)
    with pytest.raises(SchemaMismatch, match='shape'):  # a dict with one bad subsample stores none
        writer['scans']['p1'] = {'coronal': np.zeros((4, 4), np.uint16), 'bad': np.zeros(3, np.uint16)}


# ---------------------------------------------------------------------------------------- keys

BAD_KEYS = [
    pytest.param('../x', id='dot-dot-slash'),
    pytest.param('a/b', id='slash'),
    pytest.param('', id='empty'),
    pytest.param('.hidden', id='leading-dot'),
    pytest.param('x' * 256, id='256-chars'),
    pytest.param(-1, id='negative-int'),
    pytest.param(2**64, id='int-too-large'),
    pytest.param(True, id='bool-true'),
    pytest.param(False, id='bool-false'),
    pytest.param(np.bool_(True), id='numpy-bool'),
    pytest.param(1.0, id='float'),
    pytest.param(2.5, id='float-fraction'),
    pytest.param(None, id='none'),
    pytest.param(b'bytes', id='bytes'),
    pytest.param('sp ace', id='space'),
    pytest.param('ünï', id='non-ascii'),
    pytest.param('a\x00b', id='nul'),
]


@pytest.mark.parametrize('key', BAD_KEYS)
def test_invalid_key_is_refused_on_write(writer: Any, key: Any) -> None:
    with pytest.raises(InvalidKey) as info:
        writer['captions'][key] = 'never stored'
    assert isinstance(info.value, ValueError) and 'key' in str(info.value)


@pytest.mark.parametrize('key', BAD_KEYS)
def test_invalid_key_is_refused_in_a_nested_column(writer: Any, key: Any) -> None:
    with pytest.raises(InvalidKey):
        writer['scans'][key] = {'axial': np.zeros((4, 4), np.uint16)}
    with pytest.raises(InvalidKey):
        writer['scans']['p1', key] = np.zeros((4, 4), np.uint16)


@pytest.mark.parametrize('key', BAD_KEYS)
def test_invalid_key_is_never_in_a_column(writer: Any, key: Any) -> None:
    assert key not in writer['captions']


def test_invalid_key_in_update_batch_stores_nothing(writer: Any) -> None:
    with pytest.raises(InvalidKey, match='must not start with'):
        writer['images'].update_batch([70, 71, '.x'], IMAGES[:3])


def test_key_length_limit_is_255(writer: Any) -> None:
    with pytest.raises(InvalidKey, match='256 characters long; the limit is 255'):
        writer['captions']['y' * 256] = 'no'
    writer['captions']['y' * 255] = 'yes'  # the limit itself is fine
    assert writer['captions']['y' * 255] == 'yes'
    del writer['captions']['y' * 255]


def test_invalid_key_messages_say_what_is_wrong(writer: Any) -> None:
    for key, text in [
        ('a/b', "characters outside [A-Za-z0-9._-]: '/'"),
        ('', 'must not be empty'),
        ('.hidden', 'must not start with "."'),
        (-1, 'int keys go from 0 to 2**64-1'),
        (True, 'is a bool'),
        (1.5, 'has type float'),
    ]:
        with pytest.raises(InvalidKey) as info:
            writer['captions'][key] = 'no'
        assert text in str(info.value), (key, str(info.value))


@pytest.mark.parametrize('name', ['a/b', '', '.hidden', 'x' * 256, 'with space', 5])
def test_invalid_column_name(writer: Any, name: Any) -> None:
    with pytest.raises(InvalidKey, match='column name'):
        writer.add_str_column(name)


@pytest.mark.parametrize('name', ['a/b', '', '.hidden'])
def test_invalid_metadata_key(writer: Any, name: str) -> None:
    with pytest.raises(InvalidKey, match='metadata key'):
        writer.metadata[name] = 'value'


# ---------------------------------------------------------------------------------------- read-only


@pytest.fixture
def reader(stocked: Repository) -> Iterator[Any]:
    before = repository_state(stocked)
    co = stocked.checkout()
    yield co
    co.close()
    assert repository_state(stocked) == before


@pytest.mark.parametrize(
    'write',
    [
        pytest.param(lambda co: co['images'].__setitem__(0, IMAGES[0]), id='set'),
        pytest.param(lambda co: co['images'].__setitem__(99, IMAGES[0]), id='set-new'),
        pytest.param(lambda co: co['images'].__delitem__(0), id='del'),
        pytest.param(lambda co: co['images'].pop(0), id='pop'),
        pytest.param(lambda co: co['images'].update({0: IMAGES[0]}), id='update'),
        pytest.param(lambda co: co['images'].update_batch([0], IMAGES[:1]), id='update_batch'),
        pytest.param(lambda co: co['images'].change_backend('numpy'), id='change_backend'),
        pytest.param(
            lambda co: co['scans'].__setitem__('p1', {'x': np.eye(4, dtype=np.uint16)}), id='nested'
        ),
        pytest.param(
            lambda co: co['scans']['p1'].__setitem__('x', np.eye(4, dtype=np.uint16)), id='subsample'
        ),
        pytest.param(lambda co: co['scans'].__delitem__('p1'), id='nested-del'),
        pytest.param(lambda co: co.metadata.__setitem__('source', 'changed'), id='metadata-set'),
        pytest.param(lambda co: co.metadata.__delitem__('source'), id='metadata-del'),
        pytest.param(lambda co: co.columns.delete('images'), id='delete-column'),
    ],
)
def test_writing_through_a_read_only_checkout(reader: Any, write: Any) -> None:
    with pytest.raises(ReadOnlyError, match='read-only') as info:
        write(reader)
    assert isinstance(info.value, PermissionError)
    assert np.array_equal(reader['images', 0], IMAGES[0])


def test_a_with_block_on_a_reader_is_for_reading(reader: Any) -> None:
    images = reader['images']
    with images:  # allowed, as in Hangar: the fast form works for reads too
        assert np.array_equal(images[1], IMAGES[1])
        with pytest.raises(ReadOnlyError):
            images[1] = IMAGES[2]
    assert np.array_equal(images[1], IMAGES[1])


# ---------------------------------------------------------------------------------------- closed checkouts


@pytest.mark.parametrize('write', [False, True], ids=['reader', 'writer'])
@pytest.mark.parametrize(
    'use',
    [
        pytest.param(lambda co, col: col[0], id='read'),
        pytest.param(lambda co, col: col.get(0), id='get'),
        pytest.param(lambda co, col: len(col), id='len'),
        pytest.param(lambda co, col: 0 in col, id='contains'),
        pytest.param(lambda co, col: list(col.keys()), id='keys'),
        pytest.param(lambda co, col: list(col.items()), id='items'),
        pytest.param(lambda co, col: col.get_batch([0, 1]), id='get_batch'),
        pytest.param(lambda co, col: co.columns['images'], id='columns'),
        pytest.param(lambda co, col: list(co.columns), id='list-columns'),
        pytest.param(lambda co, col: co['images', 0], id='co-index'),
        pytest.param(lambda co, col: co.metadata['source'], id='metadata'),
        pytest.param(lambda co, col: co.commit_hash, id='commit_hash'),
        pytest.param(lambda co, col: co['scans']['p1'], id='nested'),
    ],
)
def test_using_a_closed_checkout(stocked: Repository, write: bool, use: Any) -> None:
    co = stocked.checkout(write=write)
    col = co['images']
    co.close()
    with pytest.raises(ClosedError, match='closed'):
        use(co, col)
    co.close()  # closing twice is harmless
    assert 'closed' in repr(co) and 'closed' in repr(col)


@pytest.mark.parametrize(
    'write',
    [
        pytest.param(lambda co, col: col.__setitem__(0, IMAGES[0]), id='set'),
        pytest.param(lambda co, col: col.__delitem__(0), id='del'),
        pytest.param(lambda co, col: col.update_batch([0], IMAGES[:1]), id='update_batch'),
        pytest.param(lambda co, col: co.commit('after close'), id='commit'),
        pytest.param(lambda co, col: co.add_str_column('late'), id='add-column'),
        pytest.param(lambda co, col: co.metadata.__setitem__('m', 'v'), id='metadata'),
    ],
)
def test_writing_through_a_closed_writer(stocked: Repository, write: Any) -> None:
    before = repository_state(stocked)
    co = stocked.checkout(write=True)
    staged = checkout_contents(co)
    col = co['images']
    co.close()
    with pytest.raises(ClosedError):
        write(co, col)
    assert repository_state(stocked) == before
    with closing(stocked.checkout(write=True)) as again:  # the closed writer let go of the lock
        assert checkout_contents(again) == staged


# ---------------------------------------------------------------------------------------- second writer


HOLD_WRITER = """
    import sys
    from hangarfs import Repository
    co = Repository(sys.argv[1]).checkout(write=True)
    co['captions']['child'] = 'staged by the child'
    print('holding', flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    co.close()
    print('released', flush=True)
"""


def test_a_second_writer_in_another_process_is_refused(stocked: Repository, children: Children) -> None:
    holder = children.start(HOLD_WRITER, stocked.path)
    children.expect_line(holder, 'holding')
    before = repository_state(stocked)
    with pytest.raises(WriterLockHeld) as info:
        stocked.checkout(write=True)
    err = info.value
    assert isinstance(err, PermissionError)
    assert err.holder['pid'] == holder.pid
    assert f'pid {holder.pid} on ' in str(err) and 'has a writer already' in str(err)
    assert stocked.writer_lock_held
    # readers need no lock
    with closing(stocked.checkout()) as co:
        assert co['captions', 0] == 'zero'
    assert repository_state(stocked) == before

    assert holder.stdin is not None
    holder.stdin.close()
    children.expect_line(holder, 'released')
    assert holder.wait(timeout=30) == 0
    with closing(stocked.checkout(write=True)) as co:
        assert co['captions', 'child'] == 'staged by the child'


def test_a_second_writer_in_the_same_process_is_refused(stocked: Repository) -> None:
    first = stocked.checkout(write=True)
    try:
        with pytest.raises(WriterLockHeld, match='has a writer already'):
            stocked.checkout(write=True)
        with pytest.raises(WriterLockHeld):
            Repository(stocked.path).checkout(write=True)
        first['captions']['still'] = 'writable'
    finally:
        first.close()
    with closing(stocked.checkout(write=True)) as co:
        assert co['captions', 'still'] == 'writable'


def test_init_remove_old_is_refused_while_a_writer_holds_the_lock(
    stocked: Repository, children: Children
) -> None:
    holder = children.start(HOLD_WRITER, stocked.path)
    children.expect_line(holder, 'holding')
    before = repository_state(stocked)
    with pytest.raises(WriterLockHeld):
        Repository(stocked.path).init(user_name='Eve', user_email='eve@example.org', remove_old=True)
    assert repository_state(stocked) == before


# ---------------------------------------------------------------------------------------- commits and names


def test_committing_with_nothing_staged(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        with pytest.raises(NothingToCommit, match="nothing staged on branch 'master'"):
            co.commit('empty')
        co.add_str_column('s')['k'] = 'v'
        digest = co.commit('one')
        with pytest.raises(NothingToCommit):
            co.commit('nothing new')
    assert repo.store.refs.branch_head('master') == digest
    assert repo.log(return_contents=True)['order'] == [digest]  # type: ignore[index]


def test_committing_a_staging_area_that_changes_nothing(writer: Any) -> None:
    writer.reset_staging_area(force=True)
    writer['captions']['temp'] = 'written then deleted'
    del writer['captions']['temp']
    writer['captions'][0] = 'zero'  # the value it has already
    with pytest.raises(NothingToCommit):
        writer.commit('no change at all')
    writer.reset_staging_area(force=True)
    writer['images'][8] = IMAGES[8]  # restore the staged state the fixture compares with
    writer['captions']['staged'] = 'not committed yet'


def test_a_column_name_that_exists(writer: Any) -> None:
    for add in (
        lambda: writer.add_ndarray_column('images', shape=(3,), dtype=np.uint8),
        lambda: writer.add_str_column('images'),
        lambda: writer.add_bytes_column('captions', contains_subsamples=True),
    ):
        with pytest.raises(ColumnExists, match=r"column '(images|captions)' already exists"):
            add()
    assert writer['images'].shape == (784,)


def test_a_column_name_that_is_staged_but_not_committed(writer: Any) -> None:
    writer.add_str_column('fresh')['k'] = 'v'
    with pytest.raises(ColumnExists):
        writer.add_bytes_column('fresh')
    assert writer['fresh', 'k'] == 'v'
    writer.columns.delete('fresh')


@pytest.mark.parametrize(
    'open_it',
    [
        pytest.param(lambda repo: repo.checkout(branch='nope'), id='branch'),
        pytest.param(lambda repo: repo.checkout(commit='0123456789abcdef' * 4), id='full-digest'),
        pytest.param(lambda repo: repo.checkout(commit='deadbeef'), id='prefix'),
        pytest.param(lambda repo: repo.checkout(commit='xyz'), id='not-hex'),
        pytest.param(lambda repo: repo.checkout(commit='nope'), id='name'),
        pytest.param(lambda repo: repo.checkout(write=True, branch='nope'), id='writer-branch'),
        pytest.param(lambda repo: repo.create_branch('b', base_commit='feedface'), id='branch-base'),
        pytest.param(lambda repo: repo.remove_branch('nope'), id='remove-branch'),
        pytest.param(lambda repo: repo.log(branch='nope'), id='log'),
        pytest.param(lambda repo: repo.summary(commit='abcd0000'), id='summary'),
    ],
)
def test_an_unknown_branch_or_commit(stocked: Repository, open_it: Any) -> None:
    before = repository_state(stocked)
    with pytest.raises(RefNotFound) as info:
        open_it(stocked)
    assert isinstance(info.value, KeyError)
    assert repository_state(stocked) == before
    assert not stocked.writer_lock_held
    stocked.checkout(write=True).close()  # a refused writer let go of the lock


# ---------------------------------------------------------------------------------------- corruption


def _read_every_sample(repo: Repository, column: str) -> tuple[list[Any], list[SampleReadError]]:
    ok, failed = [], []
    with closing(repo.checkout()) as co:
        for key in co[column]:
            try:
                co[column][key]
                ok.append(key)
            except SampleReadError as err:
                failed.append(err)
    return ok, failed


@pytest.fixture
def hdf5_repo(tmp_path: Path) -> tuple[Repository, np.ndarray]:
    """A committed hdf5 column large enough (1.3 MB) to be packed into an .h5 collection file."""
    repo = new_repository(tmp_path / 'h5repo')
    data = RNG.random((20, 128, 128), dtype=np.float32)  # 64 KiB samples: one per chunk
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('volumes', prototype=data[0], backend='hdf5').update_batch(range(20), data)
        co.add_str_column('notes')['n'] = 'untouched'
        co.commit('volumes')
    return repo, data


def test_a_corrupted_byte_in_an_hdf5_chunk(hdf5_repo: tuple[Repository, np.ndarray]) -> None:
    import h5py

    repo, data = hdf5_repo
    files = list(Path(repo.path, '.hangarfs', 'data', '00').glob('*.h5'))
    assert len(files) == 1
    with h5py.File(files[0], 'r', locking=False) as f:
        info = f['heap'].id.get_chunk_info(3)
    flip_byte(files[0], info.byte_offset + info.size // 2)

    fresh = Repository(repo.path)  # no decompressed chunk cached
    ok, failed = _read_every_sample(fresh, 'volumes')
    assert len(failed) == 1 and len(ok) == 19
    err = failed[0]
    assert isinstance(err, CorruptData) and isinstance(err, OSError)
    assert err.column == 'volumes' and err.key in range(20)
    assert str(err).startswith(f"column 'volumes', key {err.key!r}: checksum mismatch in ")
    assert 'chunk 3' in str(err)
    with closing(fresh.checkout()) as co:
        for key in ok:
            assert np.array_equal(co['volumes', key], data[key])
        assert co['notes', 'n'] == 'untouched'
        with pytest.raises(SampleReadError):
            co['volumes'].get_batch(range(20))

    with pytest.raises(IntegrityError) as info_:
        fresh.verify_repo_integrity()
    report = info_.value.report
    assert len(report.problems) == 1
    assert f"column 'volumes', key {err.key!r}: checksum mismatch" in report.problems[0]
    assert '1 problem(s)' in str(info_.value) and f'key {err.key!r}' in str(info_.value)


def test_a_corrupted_hdf5_file_header(hdf5_repo: tuple[Repository, np.ndarray]) -> None:
    repo, _ = hdf5_repo
    (path,) = Path(repo.path, '.hangarfs', 'data', '00').glob('*.h5')
    flip_byte(path, 0)  # the HDF5 signature
    fresh = Repository(repo.path)
    ok, failed = _read_every_sample(fresh, 'volumes')
    assert not ok and len(failed) == 20
    assert 'cannot be read as HDF5' in str(failed[0]) and "column 'volumes'" in str(failed[0])
    with pytest.raises(IntegrityError, match="column 'volumes'"):
        fresh.verify_repo_integrity()


def test_a_missing_data_file(hdf5_repo: tuple[Repository, np.ndarray]) -> None:
    repo, _ = hdf5_repo
    (path,) = Path(repo.path, '.hangarfs', 'data', '00').glob('*.h5')
    path.unlink()
    fresh = Repository(repo.path)
    with (
        closing(fresh.checkout()) as co,
        pytest.raises(SampleReadError, match=r"column 'volumes', key 0: .*missing"),
    ):
        co['volumes', 0]
    with pytest.raises(IntegrityError) as info:
        fresh.verify_repo_integrity()
    assert len(info.value.report.problems) == 20


def test_a_corrupted_byte_in_a_numpy_backend_file(tmp_path: Path) -> None:
    repo = new_repository(tmp_path / 'nprepo')
    data = RNG.integers(0, 2**31, (300, 1024), dtype=np.int32)  # 4 KiB samples, 1.2 MB in all
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('embeddings', prototype=data[0], backend='numpy').update_batch(range(300), data)
        co.commit('embeddings')
    (path,) = Path(repo.path, '.hangarfs', 'data', '10').glob('*.npy')
    assert np.array_equal(np.load(path).reshape(300, 4096).view(np.int32), data)  # a valid .npy file
    size = path.stat().st_size
    flip_byte(path, size - 4096 * 100 - 7)  # inside sample 199 (the file ends with sample 299)

    fresh = Repository(repo.path)
    ok, failed = _read_every_sample(fresh, 'embeddings')
    assert len(ok) == 299 and [e.key for e in failed] == [199]
    assert str(failed[0]).startswith("column 'embeddings', key 199: checksum mismatch in ")
    with pytest.raises(IntegrityError) as info:
        fresh.verify_repo_integrity()
    (problem,) = info.value.report.problems
    assert problem.startswith("column 'embeddings', key 199: checksum mismatch")


def test_a_truncated_numpy_backend_file(tmp_path: Path) -> None:
    repo = new_repository(tmp_path / 'nprepo')
    data = RNG.integers(0, 255, (300, 4096), dtype=np.uint8)
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('x', prototype=data[0], backend='numpy').update_batch(range(300), data)
        co.commit('x')
    (path,) = Path(repo.path, '.hangarfs', 'data', '10').glob('*.npy')
    with open(path, 'r+b') as fh:
        fh.truncate(path.stat().st_size - 10)
    fresh = Repository(repo.path)
    ok, failed = _read_every_sample(fresh, 'x')
    assert len(ok) == 299 and failed[0].key == 299 and 'holds' in str(failed[0])


def test_a_corrupted_inline_value(repo: Repository) -> None:
    """Small values live inline in LMDB; their checksum is checked too."""
    from hangarfs.engine.records import DIGEST_SIZE

    with closing(repo.checkout(write=True)) as co:
        co.add_str_column('s').update({'a': 'alpha', 'b': 'beta'})
        co.commit('inline')
    store = repo.store
    with closing(repo.checkout()) as co:
        ref = co['s']._ref('b')[1]
    digest = ref[:DIGEST_SIZE]
    loc = store.location(digest)
    assert loc is not None and loc[:2] == b'30'
    store.history_table('locations').put(digest, loc[:-1] + b'X')
    with closing(repo.checkout()) as co:
        assert co['s', 'a'] == 'alpha'
        with pytest.raises(SampleReadError, match=r"column 's', key 'b': checksum mismatch"):
            co['s', 'b']
    with pytest.raises(IntegrityError, match="column 's', key 'b'"):
        repo.verify_repo_integrity()


def test_all_errors_are_hangarfs_errors() -> None:
    for cls in (ClosedError, ColumnExists, CorruptData, InvalidKey, NothingToCommit, ReadOnlyError):
        assert issubclass(cls, HangarfsError)
    for cls in (RefNotFound, SchemaMismatch, WriterLockHeld, IntegrityError, SampleReadError):
        assert issubclass(cls, HangarfsError)


@pytest.fixture
def two_commits(repo: Repository) -> tuple[Repository, str, str]:
    with closing(repo.checkout(write=True)) as co:
        co.add_str_column('s').update({i: f'v{i}' for i in range(100)})
        first = co.commit('one')
        co['s'][0] = 'changed'
        second = co.commit('two')
    return repo, first, second


def _replace_object(repo: Repository, digest: bytes, data: bytes) -> None:
    repo.store.history_table('objects').put(digest, data)


@pytest.mark.parametrize(
    'damage',
    [
        pytest.param(lambda raw: raw[:10], id='truncated'),
        pytest.param(lambda raw: b'', id='empty'),
        pytest.param(lambda raw: b'Q' + raw[1:], id='type-byte'),
        pytest.param(lambda raw: raw[:-1] + bytes([raw[-1] ^ 1]), id='last-byte'),
    ],
)
def test_a_damaged_tree_node_is_reported(two_commits: tuple[Repository, str, str], damage: Any) -> None:
    repo, first, _ = two_commits
    root = repo.store.objects.snapshot(first).columns['s'].root
    _replace_object(repo, root, damage(repo.store.objects.get(root)))
    fresh = Repository(repo.path)  # no decoded node cached
    with pytest.raises(IntegrityError) as info:
        fresh.verify_repo_integrity()
    assert any(f'tree node {root.hex()} is damaged' in p for p in info.value.report.problems)
    with closing(fresh.checkout(commit=first)) as co:
        with pytest.raises(CorruptData) as read_error:  # never a wrong answer or a bare struct.error
            list(co['s'].keys())
        assert f'tree node {root.hex()} is damaged' in str(read_error.value)
        assert 'hangarfs verify' in str(read_error.value)


def test_a_damaged_commit_record_is_reported(two_commits: tuple[Repository, str, str]) -> None:
    repo, first, second = two_commits
    raw = repo.store.objects.get(bytes.fromhex(first))
    assert raw is not None
    # a flipped byte anywhere is caught when the record is read: an error naming the commit
    flipped = raw[:20] + bytes([raw[20] ^ 0x01]) + raw[21:]
    _replace_object(repo, bytes.fromhex(first), flipped)
    with pytest.raises(CorruptData, match=f'commit {first} is damaged'):
        Repository(repo.path).checkout(commit=first)
    _replace_object(repo, bytes.fromhex(first), raw[:-1])  # no longer valid JSON
    with pytest.raises(IntegrityError) as info:
        Repository(repo.path).verify_repo_integrity()
    assert info.value.report.problems == [f'commit {first}: its record does not hash to its digest']
    with closing(repo.checkout(commit=second)) as co:  # the newer commit is intact
        assert co['s', 0] == 'changed'
