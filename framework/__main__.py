"""``python -m framework``.

Once :func:`framework.cli.main` has returned, every file is closed, every child process joined and
every registry transaction committed; what is left is the interpreter's own teardown, which takes
about half a second with scikit-learn, pandas and pyarrow loaded. Each stage ``dvc repro`` runs
pays it, so the process flushes its output and ends at once.
"""

import logging
import os
import sys

from framework.cli import main

try:
    code = main()
except BrokenPipeError:  # the reader went away mid-output (`| head`): stop quietly
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    code = 1
logging.shutdown()
try:
    sys.stdout.flush()
    sys.stderr.flush()
except BrokenPipeError:  # the reader went away (`| head`): nothing more to say
    pass
os._exit(code)
