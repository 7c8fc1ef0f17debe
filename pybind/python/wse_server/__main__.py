"""``python -m wse_server`` and the ``wse`` script: the ``wse`` command line.

This is the Rust command line of the ``wse`` binary itself (``serve``,
``log``, ``bench``), run inside Python: the same flags, defaults, ``WSE_*``
variables and TOML keys, the same output and exit status. For example::

    python -m wse_server serve --port 5007 --data-dir ./wse-data
    python -m wse_server log topics ./wse-data
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Sequence

from wse_server._wse_accel import _wse_main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``wse`` command line with ``argv`` (default: ``sys.argv[1:]``)
    and return its exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if threading.current_thread() is threading.main_thread():
        # As in the binary: Ctrl-C ends `log tail --follow` at once, and
        # `serve` (which handles SIGINT itself) stops cleanly.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    return _wse_main(["python -m wse_server", *args], [sys.executable, "-m", "wse_server"])


if __name__ == "__main__":
    sys.exit(main())
