"""Pruning methods: weights (unstructured), channels and attention heads (structured),
and the importance scores that choose what goes."""
