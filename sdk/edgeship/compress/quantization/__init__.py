"""Quantization methods: INT8 (dynamic, static) and FP16 for ONNX and TFLite, and the
keep-in-float fallback for INT8 that collapses a model."""
