"""Honest evaluation: bounds on log-likelihood, latent diagnostics, the final report."""
