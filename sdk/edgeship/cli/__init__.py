"""The ``edgeship`` command line: one module per command, wired in :mod:`.main`."""
