"""The GPU proof: ``prove_cuda.sh`` (one call on a machine with an NVIDIA GPU) and
``prove_cuda.py`` (CPU against CUDA against TensorRT through edgeship's runtime)."""
