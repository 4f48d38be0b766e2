"""`python -m app COMMAND ...` run inside the test process: `app.cli.main` with its own
environment and standard streams, as a shell would run it, without the ~2 s a new Python
process spends importing the app.

What only a real process shows (its exit on a signal, a terminal on stderr, a server
starting) is tested through `sys.executable -m app` in the tests that need it.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from app.cli import main


@dataclass(frozen=True)
class CliResult:
    """What the command left: its exit status and everything it printed."""

    returncode: int
    stdout: str
    stderr: str


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _run(args: tuple[str, ...], env: dict[str, str]) -> CliResult:
    stdout, stderr = io.StringIO(), io.StringIO()
    with (
        _environment(env),
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
    ):
        try:
            returncode = main(list(args))
        except SystemExit as exit_:
            # As the interpreter ends a process: a message goes to stderr, status 1.
            if exit_.code is None or isinstance(exit_.code, int):
                returncode = exit_.code or 0
            else:
                print(exit_.code, file=stderr)
                returncode = 1
    return CliResult(returncode, stdout.getvalue(), stderr.getvalue())


def run_cli(*args: str, env: dict[str, str]) -> CliResult:
    """Run one command with `env` added to the environment, and wait for it.

    It runs on a thread of its own (the commands call `asyncio.run`), so an async test may
    call it too: like `subprocess.run`, it holds the test's loop until the command ends.
    """
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(_run, args, env).result()
