"""Restricted and excluded logits on synthetic logits with known frequency content."""

import math

import pytest
import torch

from grokinterp.analysis.losses import (
    cross_entropy,
    excluded_logits,
    key_directions,
    restricted_logits,
)
from grokinterp.fourier import component_index, fourier_basis

P = 23
KEYS = [3, 8]


def grid(p):
    a = torch.arange(p, dtype=torch.float64).view(p, 1, 1)
    b = torch.arange(p, dtype=torch.float64).view(1, p, 1)
    c = torch.arange(p, dtype=torch.float64).view(1, 1, p)
    return a, b, c


def circuit_logits(p, keys, scale=4.0):
    """scale * sum_k cos(w_k (a + b - c)): the Fourier circuit's logits."""
    a, b, c = grid(p)
    out = sum(torch.cos(2 * math.pi * k * (a + b - c) / p) for k in keys)
    return (scale * out).reshape(p * p, p)


def memorizing_noise(p, k=5, scale=2.0):
    """A term outside the key directions: depends on a and c only."""
    a, b, c = grid(p)
    return (scale * torch.cos(2 * math.pi * k * (a - c) / p)).expand(p, p, p).reshape(p * p, p)


def labels(p):
    a, b, _ = grid(p)
    return ((a + b) % p).reshape(-1).long()


def test_circuit_logits_are_kept_whole_and_noise_removed():
    circuit, noise = circuit_logits(P, KEYS), memorizing_noise(P)
    logits = circuit + noise
    torch.testing.assert_close(restricted_logits(logits, P, KEYS), circuit, atol=1e-10, rtol=0)
    torch.testing.assert_close(excluded_logits(logits, P, KEYS), noise, atol=1e-10, rtol=0)


def test_excluded_loss_of_a_pure_circuit_is_log_p():
    # Removing every key direction leaves exactly zero logits: uniform, loss log p.
    exc = excluded_logits(circuit_logits(P, KEYS), P, KEYS)
    assert cross_entropy(exc, labels(P)) == pytest.approx(math.log(P), abs=1e-9)


def test_restricted_loss_matches_closed_form():
    # Logits s * sum_k cos(w_k (a+b-c)) give the correct class s * K and every other
    # class s * sum_k cos(w_k d) for d != 0; the loss follows in closed form.
    s = 4.0
    loss = cross_entropy(restricted_logits(circuit_logits(P, KEYS, s), P, KEYS), labels(P))
    d = torch.arange(P, dtype=torch.float64)
    per_class = s * sum(torch.cos(2 * math.pi * k * d / P) for k in KEYS)
    expected = -(per_class[0] - torch.logsumexp(per_class, 0)).item()
    assert loss == pytest.approx(expected, rel=1e-12)


def test_directions_equal_the_2d_fourier_products():
    fb = fourier_basis(P)
    u = key_directions(P, [KEYS[0]])
    cos, sin = component_index(P, KEYS[0])
    u_cos = (torch.outer(fb[cos], fb[cos]) - torch.outer(fb[sin], fb[sin])) / math.sqrt(2)
    u_sin = (torch.outer(fb[sin], fb[cos]) + torch.outer(fb[cos], fb[sin])) / math.sqrt(2)
    torch.testing.assert_close(u[:, 0], u_cos.reshape(-1))
    torch.testing.assert_close(u[:, 1], u_sin.reshape(-1))


def test_directions_are_orthonormal_and_nyquist_has_no_sin():
    u = key_directions(P, [1, 5, 11])
    torch.testing.assert_close(u.T @ u, torch.eye(6, dtype=torch.float64), atol=1e-12, rtol=0)
    even = key_directions(10, [5])  # k = p/2: cos(pi(a+b)) only
    assert even.shape == (100, 1)
    with pytest.raises(ValueError, match="outside"):
        key_directions(P, [12])


def test_no_key_frequencies_means_mean_only():
    logits = torch.randn(P * P, P, dtype=torch.float64)
    res = restricted_logits(logits, P, [])
    torch.testing.assert_close(res, logits.mean(0, keepdim=True).expand_as(logits))
    torch.testing.assert_close(excluded_logits(logits, P, []), logits)


def test_repeated_key_frequencies_count_once():
    logits = circuit_logits(P, KEYS) + memorizing_noise(P)
    torch.testing.assert_close(
        excluded_logits(logits, P, [3, 3, 8]), excluded_logits(logits, P, KEYS)
    )
