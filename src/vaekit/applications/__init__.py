"""What people do with a trained VAE; each module works on a :class:`vaekit.Run`."""
