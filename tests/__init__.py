"""The suite. Imported before its conftest, in every pytest process.

Every worker process and every server a test starts would otherwise compile the app and
the tests again (with pytest's assertion rewriting, ~3 s of CPU per worker) where
PYTHONDONTWRITEBYTECODE is set, as on some CI images: the suite keeps its bytecode in
__pycache__ (which git ignores) whatever that setting says.
"""

import os
import sys

sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
