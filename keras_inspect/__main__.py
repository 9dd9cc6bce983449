"""``python -m keras_inspect``: the same command as ``keras-inspect``."""

from __future__ import annotations

import sys

from keras_inspect.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
