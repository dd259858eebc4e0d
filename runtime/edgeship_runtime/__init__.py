"""edgeship's device runtime: loads a model with one backend, runs it, measures it.

Depends only on the standard library and numpy (psutil and a backend optional), so it
runs from a single zipapp on the Python a board ships (3.9 and newer).
"""

from __future__ import annotations

__version__ = "0.1.0"
