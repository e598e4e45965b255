"""The ``s2s`` command line: options in, streams opened, library called, errors turned into one line.

Every command reads files or stdin and writes stdout (or ``-o FILE``); progress and messages go to
stderr, data only to stdout. A user error prints ``s2s <command>: error: <message>`` on stderr and exits
with status 1 (2 for bad usage); there is never a traceback unless ``S2S_DEBUG=1`` is set.

Laid out as csvkit lays out its tools: ``core`` holds the typer app, the error handling every command
goes through (``@command``) and the stream helpers; each command (or group) has its own module, which
parses its options, opens its streams and calls one library function. Importing a module registers
its commands on the app, in the order ``s2s --help`` lists them.
"""

import os

# oneDNN compiles and keeps an LSTM for every input shape it meets (1,024 of them by default). The encoder
# runs each batch up to each distinct source length, so training meets thousands of shapes, and the cache
# alone made `s2s train` gigabytes larger (the paper-small preset in bf16 after ~600 steps: 5.0 GB of RSS
# against 3.2 GB with 256 entries, at the same speed). It reads the variable when first used; a user's own
# setting wins.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "256")

from ..allocator import keep_freed_memory  # noqa: E402

keep_freed_memory()  # freed tensors' memory is reused, not page-faulted back in (see allocator.py)

from . import vocab, prepare, train, translate, score, encode, plot  # noqa: E402,F401,I001  (registers the commands)
from .core import app, main  # noqa: E402

__all__ = ["app", "main"]
