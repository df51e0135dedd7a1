"""Train, evaluate and export the LeNet-5 family on MNIST."""
