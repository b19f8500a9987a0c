"""Remotes for users: configure, clone, fetch, push, fetch data, lazy reads (issue 13, phase 2).

Built on the storage layer (``hangarfs.backends.remote_repo``), one module per job:

- ``config``: the remotes a repository knows (name -> URL and options) and opening one;
- ``walk``: the tree nodes and samples commits hold (what to send, what to take);
- ``push``, ``fetch`` (history), ``fetch_data`` (samples), ``clone``;
- ``metacache``: the local copy of a remote's metadata packs;
- ``lazy`` and ``sample_cache``: reading samples from a remote on demand, verified, cached with a limit;
- ``verify_remote``: checking everything a remote holds;
- ``api``: ``repo.remote``, named and shaped as Hangar 0.5's ``Remotes``.
"""
