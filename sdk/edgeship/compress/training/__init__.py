"""Training shared by pruning's fine-tuning and distillation: a torch view of an ONNX
graph, a torch model given by the user, and the training loop with its losses."""
