"""Importing hangarfs imports no framework; a missing framework gets a clear error on first use."""

from __future__ import annotations

from tests.helpers import Children


def test_importing_hangarfs_imports_neither_torch_nor_tensorflow(children: Children) -> None:
    out = children.run(
        """
        import sys
        import hangarfs
        from hangarfs import make_numpy_dataset, make_tf_dataset, make_torch_dataset
        print(sorted(m for m in ('torch', 'tensorflow') if m in sys.modules))
        """
    )
    assert out.strip() == '[]'


def test_a_missing_framework_says_how_to_install_it(children: Children, tmp_path: object) -> None:
    out = children.run(
        """
        import sys
        sys.modules['torch'] = None  # as if torch were not installed
        sys.modules['tensorflow'] = None
        from hangarfs import make_tf_dataset, make_torch_dataset
        for make in (make_torch_dataset, make_tf_dataset):
            try:
                make([])
            except ImportError as err:
                print(err)
        """
    )
    lines = out.splitlines()
    assert lines[0].startswith('make_torch_dataset needs torch, which is not installed here: pip install')
    assert '"hangarfs[torch]"' in lines[0]
    assert lines[1].startswith('make_tf_dataset needs tensorflow, which is not installed here: pip install')
    assert '"hangarfs[tensorflow]"' in lines[1]
