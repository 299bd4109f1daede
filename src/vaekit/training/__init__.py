"""The generic trainer, its callbacks, checkpoints and DDP support (no VAE knowledge)."""
