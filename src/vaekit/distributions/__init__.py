"""Posteriors q(z|x), priors p(z), likelihoods p(x|z) and the KL between them."""
