"""The ``s2s`` command line: options in, streams opened, library called, errors turned into one line.

Every command reads files or stdin and writes stdout (or ``-o FILE``); progress and messages go to
stderr, data only to stdout. A user error prints ``s2s <command>: error: <message>`` on stderr and exits
with status 1 (2 for bad usage); there is never a traceback unless ``S2S_DEBUG=1`` is set.

Laid out as csvkit lays out its tools: ``core`` holds the typer app, the error handling every command
goes through (``@command``) and the stream helpers; each command (or group) has its own module, which
parses its options, opens its streams and calls one library function. Importing a module registers
its commands on the app, in the order ``s2s --help`` lists them.
"""

from . import vocab, prepare, train, translate, score, encode, plot  # noqa: F401,I001  (registers the commands)
from .core import app, main

__all__ = ["app", "main"]
