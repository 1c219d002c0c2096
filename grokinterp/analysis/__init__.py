"""Progress measures of Nanda et al. 2023 (arXiv 2301.05217), one family per module.

- ``losses``: cross-entropy, restricted and excluded loss (REFERENCE.md §2).
- ``sparsity``: Gini coefficient of Fourier norms.
- ``neurons``: neuron frequency clusters and key frequencies.
- ``measures``: every measure on every checkpoint of a run, as a table.
"""

from grokinterp.analysis.losses import (
    cross_entropy,
    excluded_logits,
    key_directions,
    restricted_logits,
)
from grokinterp.analysis.neurons import NeuronClusters, neuron_clusters
from grokinterp.analysis.sparsity import gini

__all__ = [
    "NeuronClusters",
    "cross_entropy",
    "excluded_logits",
    "gini",
    "key_directions",
    "neuron_clusters",
    "restricted_logits",
]
