"""Training and evaluation pieces: losses, metrics, inference, checkpoints."""
