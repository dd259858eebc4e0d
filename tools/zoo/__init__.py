"""Demo model zoo: small, really trained digit classifiers for tests and benchmarks.

The public API lives in `tools.zoo.build` (`build_zoo`, `Manifest`, ...) and
`tools.zoo.models` (`mlp`, `cnn`). Nothing is imported here, so that
`python -m tools.zoo.build` runs cleanly and a cache hit never pays for torch.
"""
