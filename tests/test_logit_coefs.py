import math

import pytest
import torch

from grokinterp.analysis.logit_coefs import cos_coefficients, fraction_explained


def cube(p):
    a = torch.arange(p, dtype=torch.float64).view(p, 1, 1)
    b = torch.arange(p, dtype=torch.float64).view(1, p, 1)
    c = torch.arange(p, dtype=torch.float64).view(1, 1, p)
    return a + b - c


@pytest.mark.parametrize("p", [7, 10, 13])
def test_coefficients_equal_the_brute_force_cube(p):
    L = torch.randn(p * p, p, dtype=torch.float64, generator=torch.Generator().manual_seed(p))
    fast = cos_coefficients(L, p)
    centered = (L - L.mean(1, keepdim=True)).reshape(p, p, p)
    for k in range(1, p // 2 + 1):
        C = torch.cos(2 * math.pi * k * cube(p) / p)
        C = C / C.norm()
        assert fast[k - 1].item() == pytest.approx((C * centered).sum().item(), abs=1e-10)


def test_planted_frequencies_explain_everything():
    p = 17
    L = (
        3 * torch.cos(2 * math.pi * 2 * cube(p) / p)
        - 1.5 * torch.cos(2 * math.pi * 7 * cube(p) / p)
    ).reshape(p * p, p)
    alpha = cos_coefficients(L, p)
    norm = math.sqrt(p**3 / 2)
    assert alpha[1].item() == pytest.approx(3 * norm)
    assert alpha[6].item() == pytest.approx(-1.5 * norm)
    assert alpha[[0, 2, 3, 4, 5, 7]].abs().max().item() < 1e-9
    assert fraction_explained(L, p, [2, 7]) == pytest.approx(1.0)
    assert fraction_explained(L, p, [2]) == pytest.approx(9 / (9 + 2.25))
