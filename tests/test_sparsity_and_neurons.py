import math

import pytest
import torch

from grokinterp.analysis.neurons import neuron_clusters
from grokinterp.analysis.sparsity import gini


def test_gini_known_values():
    assert gini(torch.ones(10)).item() == pytest.approx(0.0, abs=1e-12)
    spike = torch.zeros(8)
    spike[3] = 5.0
    assert gini(spike).item() == pytest.approx(1 - 1 / 8)
    assert gini(torch.tensor([0.0, 0.0, 1.0, 1.0])).item() == pytest.approx(0.5)
    # Mean absolute difference form for [1, 2, 3, 4]: sum|xi-xj| / (2 n^2 mean) = 0.25.
    assert gini(torch.tensor([4.0, 1.0, 3.0, 2.0])).item() == pytest.approx(0.25)


def test_gini_is_scale_invariant_and_batched():
    x = torch.rand(5, 30, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(gini(x), gini(7.5 * x))
    torch.testing.assert_close(gini(x)[2], gini(x[2]))


def test_gini_rejects_bad_input():
    with pytest.raises(ValueError, match="non-negative"):
        gini(torch.tensor([1.0, -1.0]))
    with pytest.raises(ValueError, match="all-zero"):
        gini(torch.zeros(4))


def synthetic_neurons(p=31, seed=0):
    """Neurons built from known frequencies, with noise and mixed neurons."""
    gen = torch.Generator().manual_seed(seed)
    a = torch.arange(p, dtype=torch.float64).view(p, 1)
    b = torch.arange(p, dtype=torch.float64).view(1, p)
    w = lambda k: 2 * math.pi * k / p  # noqa: E731
    cols, truth = [], []
    for k, count in [(4, 6), (9, 3), (13, 5)]:
        for _ in range(count):
            phase = torch.rand(2, generator=gen, dtype=torch.float64) * 2 * math.pi
            # Products of a- and b-waves of the same frequency live in the k block.
            act = (1 + torch.cos(w(k) * a + phase[0])) * (1 + torch.cos(w(k) * b + phase[1]))
            cols.append(act + 0.01 * torch.randn(p, p, generator=gen, dtype=torch.float64))
            truth.append(k)
    for _ in range(4):  # pure noise: explained by nothing
        cols.append(torch.randn(p, p, generator=gen, dtype=torch.float64))
        truth.append(0)
    # Mixed: 60% of energy in k = 5, 40% in k = 6 -> no cluster, and 5 is not a key.
    mixed = math.sqrt(0.6) * torch.cos(w(5) * (a + b)) + math.sqrt(0.4) * torch.cos(w(6) * (a + b))
    cols.append(mixed)
    truth.append(0)
    return torch.stack(cols, dim=-1), torch.tensor(truth)


def test_clusters_recover_the_planted_frequencies():
    acts, truth = synthetic_neurons()
    result = neuron_clusters(acts)
    assert result.key_frequencies == [4, 9, 13]
    assert torch.equal(result.cluster, truth)
    assert result.cluster_sizes == {4: 6, 9: 3, 13: 5}
    assert result.n_unexplained == 5
    assert result.fraction_explained == pytest.approx(14 / 19)
    # The mixed neuron's best frequency is 5 with fraction 0.6, below the threshold.
    assert int(result.best_freq[-1]) == 5
    assert result.frac_explained[-1, 4].item() == pytest.approx(0.6, abs=1e-6)


def test_fractions_lie_in_unit_interval_and_dead_neurons_join_nothing():
    acts, _ = synthetic_neurons(p=17)
    acts = torch.cat([acts, torch.zeros(17, 17, 1, dtype=torch.float64)], dim=-1)
    result = neuron_clusters(acts)
    assert (result.frac_explained >= 0).all() and (result.frac_explained <= 1 + 1e-6).all()
    assert result.frac_explained.sum(dim=1).max().item() <= 1 + 1e-5
    assert int(result.cluster[-1]) == 0


def test_clusters_reject_bad_shapes():
    with pytest.raises(ValueError, match=r"\[p, p, neuron\]"):
        neuron_clusters(torch.zeros(5, 6, 3))
