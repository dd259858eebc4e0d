"""edgeship's device runtime: loads a model with one backend, runs it, measures it.

Depends only on the standard library and numpy (psutil and a backend optional), so it
runs from a single zipapp on the Python a board ships (3.9 and newer).
"""

# No __future__ import and no f-string here: this module must run on the old Python of an
# old board image (JetPack 4 has 3.6) far enough to say that it is too old.
import sys

__version__ = "0.1.0"
MIN_PYTHON = (3, 9)

if sys.version_info < MIN_PYTHON:
    sys.exit(
        "edgeship runtime: needs Python 3.9 or newer, this is Python {} ({}); install a "
        "newer one on the device and pass it with --python".format(
            sys.version.split()[0], sys.executable
        )
    )
