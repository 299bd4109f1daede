"""The ``model`` section of a run's configuration, assembled from the options each part declares.

Every registered part keeps its options beside its code, as a pydantic class: the networks'
(:class:`~vaekit.networks.blocks.NetworkOptions`, text's
:class:`~vaekit.networks.sequence.SequenceOptions`), the posterior's, the prior's, the likelihood's,
each objective's (:class:`~vaekit.models.objectives.base.ObjectiveOptions` and one subclass per
objective file) and the supervised heads'. :class:`ModelConfig` is their union, one flat section
(``model.beta``, ``model.k``), so a config file and ``--set`` stay as they were; each part is
typed as the options it reads and is handed the whole section. A new option goes in its part's
class; a new part's class joins the bases below.
"""

from __future__ import annotations

from vaekit.distributions.likelihoods import LikelihoodOptions
from vaekit.distributions.posteriors import PosteriorOptions
from vaekit.distributions.priors import PriorOptions
from vaekit.models.heads import HeadOptions
from vaekit.models.objectives.adversarial import GANOptions
from vaekit.models.objectives.elbo import ELBOOptions
from vaekit.models.objectives.iwae import IWAEOptions
from vaekit.models.objectives.mmd import MMDOptions
from vaekit.models.objectives.patchgan import PatchGANOptions
from vaekit.models.objectives.tc import TCOptions
from vaekit.networks.blocks import NetworkOptions
from vaekit.networks.ldm_vae import LDMOptions
from vaekit.networks.sequence import SequenceOptions


# pydantic lists the fields of the last base first: the networks' options lead, as in a config file.
class ModelConfig(HeadOptions, SequenceOptions, PatchGANOptions, GANOptions, TCOptions, MMDOptions, IWAEOptions,
                  ELBOOptions, LikelihoodOptions, PriorOptions, PosteriorOptions, LDMOptions, NetworkOptions):
    """The five axes (network, posterior, prior, likelihood, objective) and their sizes."""
