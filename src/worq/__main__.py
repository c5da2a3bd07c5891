"""``python -m worq``: the ``worq`` command line (see :mod:`worq.cli`)."""

import sys

from worq.cli import main

if __name__ == "__main__":  # not when a process pool's spawned child imports __main__
    sys.exit(main())
