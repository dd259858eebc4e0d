"""The model as a value, and everything that judges one model against another.

Format detection, ONNX graph helpers, preparation of field graphs (constant folding,
simplification), references to model files, where produced files are written, and the
fidelity figures and verification that compression, conversion, optimization,
partitioning and A/B comparisons all report. compress, convert, optimize, partition, ab
and sweep depend on this package, never on each other's internals.
"""
