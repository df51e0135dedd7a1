"""LeNet Serve: the inference service."""
