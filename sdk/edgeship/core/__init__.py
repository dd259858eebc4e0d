"""What every other package stands on: the one exception tree, configuration objects,
progress lines, optional extras, quiet third-party output, file digests, host names, and
the host's end of the runtime's stdio protocol. Imports nothing of edgeship above it."""
