"""History commands: branch, diff, merge, tag."""

from __future__ import annotations

import json
from typing import Any

import click

from hangarfs.cli.app import Context, fail, main, pass_ctx, reported, writer_branch


@main.group()
def branch() -> None:
    """List, create and delete branches."""


@branch.command('list')
@pass_ctx
def branch_list(ctx: Context) -> None:
    """List branches with their head commits, then remote-tracking ones (origin/master); * marks the
    writer's branch."""
    with reported():
        repo = ctx.repo()
        current = writer_branch(repo)
        refs = repo.store.refs
        heads = sorted(refs.list('branch').items()) + sorted(refs.remote_branches().items())
    for name, head in heads:
        mark = '*' if name == current else ' '
        click.echo(f'{mark} {name:<24} {head[:12] or "(no commits)"}')


@branch.command('create')
@click.argument('name')
@click.argument('base', required=False)
@pass_ctx
def branch_create(ctx: Context, name: str, base: str | None) -> None:
    """Create branch NAME at BASE (a branch, tag or commit; default: the writer's branch head)."""
    with reported():
        head = ctx.repo().create_branch(name, base_commit=base)
    click.echo(f'created branch {head.name} at {head.digest[:12]}')


@branch.command('delete')
@click.argument('name')
@click.option('--force', is_flag=True, help='Delete even if its commits are on no other branch.')
@pass_ctx
def branch_delete(ctx: Context, name: str, force: bool) -> None:
    """Delete branch NAME."""
    with reported():
        head = ctx.repo().remove_branch(name, force_delete=force)
    click.echo(f'deleted branch {head.name} (was {head.digest[:12]})')


def _show_key(key: Any) -> str:
    return '/'.join(repr(k) for k in key) if isinstance(key, tuple) else repr(key)


def print_diff(result: Any, a: str, b: str, show_keys: bool) -> None:
    click.echo(f'diff {a} ({result.a[:12] or "empty"}) -> {b} ({result.b[:12] or "empty"})')
    if not result:
        click.echo('no differences')
        return
    rows = [(name, result.columns[name]) for name in sorted(result.columns)]
    rows.append(('(metadata)', result.metadata))
    width = max(24, *(len(name) for name, _ in rows))
    click.echo(f'{"column":<{width}} {"added":>10} {"deleted":>10} {"mutated":>10}')
    for name, ch in rows:
        click.echo(f'{name:<{width}} {len(ch.added):>10} {len(ch.deleted):>10} {len(ch.mutated):>10}')
    sc = result.schema_changes
    if sc:
        parts = [f'{kind} {", ".join(sorted(names))}' for kind, names in vars(sc).items() if names]
        click.echo('columns ' + '; '.join(parts))
    if show_keys:
        for name, ch in rows:
            for kind in ('added', 'deleted', 'mutated'):
                keys = ch.to_dict()[kind]
                if keys:
                    shown = ' '.join(_show_key(tuple(k) if isinstance(k, list) else k) for k in keys)
                    click.echo(f'{name} {kind}: {shown}')


@main.command('diff')
@click.argument('a', required=False)
@click.argument('b', required=False)
@click.option('--staged', is_flag=True, help="The staged changes against the writer's branch head.")
@click.option('--keys', 'show_keys', is_flag=True, help='Also list the keys added, deleted and mutated.')
@click.option('--json', 'as_json', is_flag=True, help='Print JSON (every key).')
@pass_ctx
def diff_cmd(
    ctx: Context, a: str | None, b: str | None, staged: bool, show_keys: bool, as_json: bool
) -> None:
    """Show how B differs from A (branches, tags, commits; B defaults to the writer's branch), or with
    --staged what the next commit would record."""
    from hangarfs.engine.staging import StagingArea
    from hangarfs.engine.staging_status import staged_diff

    with reported():
        repo = ctx.repo()
        if staged:
            if a or b:
                fail('--staged compares the staging area with its base commit: give no refs')
            result = staged_diff(repo.store, StagingArea(repo.store))
            a, b = writer_branch(repo), '(staged)'
        else:
            if not a:
                fail('give a ref to compare with (`hangarfs diff A [B]`), or --staged')
            b = b or writer_branch(repo)
            result = repo.diff(a, b)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        print_diff(result, a, b, show_keys)


@main.command('merge')
@click.argument('dev')
@click.option('-m', '--message', help='The merge commit message (default: "Merge DEV into BRANCH").')
@click.option(
    '--strategy',
    type=click.Choice(['ours', 'theirs']),
    help="Resolve every conflict one way: 'ours' keeps the writer's branch, 'theirs' takes DEV.",
)
@pass_ctx
def merge_cmd(ctx: Context, dev: str, message: str | None, strategy: str | None) -> None:
    """Merge DEV (a branch, tag or commit) into the writer's branch; prints the new head."""
    from hangarfs.engine.merge import FAST_FORWARD, UP_TO_DATE, merge_with_writer_lock

    with reported():
        repo = ctx.repo()
        branch_name = writer_branch(repo)
        result = merge_with_writer_lock(
            repo.store,
            master_branch=branch_name,
            dev_ref=dev,
            message=message or f'Merge {dev} into {branch_name}',
            strategy=strategy,
        )
    head = result.commit
    if result.kind == UP_TO_DATE:
        click.echo(f'{branch_name} already contains {dev}: nothing to merge ({head[:12]})')
    elif result.kind == FAST_FORWARD:
        click.echo(f'fast-forwarded {branch_name} to {dev} ({head[:12]})')
    else:
        click.echo(f'merged {dev} into {branch_name}: {head}')


@main.command('tag')
@click.argument('name', required=False)
@click.argument('ref', required=False)
@click.option('-m', '--message', help='Why this tag (recorded with the tagger and the time).')
@click.option('-d', '--delete', is_flag=True, help='Delete the tag NAME.')
@pass_ctx
def tag_cmd(ctx: Context, name: str | None, ref: str | None, message: str | None, delete: bool) -> None:
    """List tags; with NAME, tag REF (default: the writer's branch head); with -d, delete NAME."""
    with reported():
        repo = ctx.repo()
        if delete:
            if not name or ref:
                fail('give the one tag to delete: `hangarfs tag -d NAME`')
            gone = repo.remove_tag(name)
            click.echo(f'deleted tag {gone.name} (was {gone.commit[:12]})')
        elif name:
            made = repo.create_tag(name, commit=ref, message=message)
            click.echo(f'tagged {made.commit[:12]} as {made.name}')
        else:
            if message:
                fail('-m needs a tag NAME to create')
            tags = [repo.get_tag(t) for t in repo.list_tags()]
            for t in tags:
                first = t.message.splitlines()[0] if t.message else ''
                click.echo(f'{t.name:<24} {t.commit[:12]}  {first}'.rstrip())
            if not tags:
                click.echo('no tags')
