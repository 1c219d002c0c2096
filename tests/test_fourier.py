import math

import pytest
import torch

from grokinterp.fourier import (
    component_freqs,
    component_index,
    component_names,
    embed_fourier_norms,
    fourier_basis,
    logit_fourier_norms,
    per_freq_norms,
)


@pytest.mark.parametrize("p", [3, 4, 7, 8, 10, 53, 113, 114])
def test_basis_is_orthonormal_for_odd_and_even_p(p):
    fb = fourier_basis(p)
    assert fb.shape == (p, p)
    torch.testing.assert_close(fb @ fb.T, torch.eye(p, dtype=torch.float64), atol=1e-12, rtol=0)
    assert len(component_names(p)) == p
    assert component_freqs(p).tolist().count(0) == 1


@pytest.mark.parametrize("p", [7, 8])
def test_rows_are_the_named_waves(p):
    fb = fourier_basis(p)
    x = torch.arange(p, dtype=torch.float64)
    for k in range(1, p // 2 + 1):
        cos, sin = component_index(p, k)
        wave = torch.cos(2 * math.pi * k * x / p)
        torch.testing.assert_close(fb[cos], wave / wave.norm())
        assert component_names(p)[cos] == f"cos {k}"
        if sin is None:
            assert 2 * k == p  # only the Nyquist frequency of even p lacks a sin row
        else:
            wave = torch.sin(2 * math.pi * k * x / p)
            torch.testing.assert_close(fb[sin], wave / wave.norm())
    assert torch.allclose(fb[0], torch.full((p,), 1 / math.sqrt(p), dtype=torch.float64))


def test_embedding_of_one_frequency_has_one_nonzero_norm():
    p, k = 13, 4
    fb = fourier_basis(p)
    cos, sin = component_index(p, k)
    W_E = torch.zeros(p + 1, 6, dtype=torch.float64)
    W_E[:p, 0] = 3 * fb[cos]
    W_E[:p, 1] = 4 * fb[sin]
    norms = embed_fourier_norms(W_E, p)
    expected = torch.zeros(p, dtype=torch.float64)
    expected[cos], expected[sin] = 3.0, 4.0
    torch.testing.assert_close(norms, expected, atol=1e-12, rtol=0)
    freq = per_freq_norms(norms, p)
    assert freq.shape == (p // 2,)
    torch.testing.assert_close(freq[k - 1], torch.tensor(5.0, dtype=torch.float64))
    assert freq.sum().item() == pytest.approx(5.0)


def test_logit_norms_are_column_norms_in_the_fourier_basis():
    p = 9
    W_L = torch.randn(20, p, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    norms = logit_fourier_norms(W_L, p)
    fb = fourier_basis(p)
    brute = torch.stack([(W_L @ fb[i]).norm() for i in range(p)])
    torch.testing.assert_close(norms, brute)
    # Orthonormal basis: the squared norms add up to the Frobenius norm.
    assert norms.pow(2).sum().item() == pytest.approx(W_L.pow(2).sum().item())
