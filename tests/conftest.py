"""Test settings: runtime shape checks on every grokinterp annotation, tiny configs.

The jaxtyping import hook wraps each annotated function of the package with beartype,
so a tensor of the wrong shape or dtype fails the test that passes it.
"""

import pytest
import torch
from jaxtyping import install_import_hook

with install_import_hook("grokinterp", "beartype.beartype"):
    import grokinterp  # noqa: F401
    import grokinterp.analysis.measures  # noqa: F401
    import grokinterp.cli  # noqa: F401

# Tiny models gain nothing from threads, and spinning OpenMP workers slow a busy machine.
torch.set_num_threads(1)


def tiny_config(p: int = 11, epochs: int = 30, **overrides):
    """A small model that trains in well under a second per hundred epochs."""
    fields = dict(
        p=p,
        train_frac=0.5,
        lr=3e-3,
        epochs=epochs,
        checkpoint_every=10,
        d_model=32,
        d_mlp=64,
        n_heads=2,
        d_head=16,
    )
    fields.update(overrides)
    return grokinterp.preset("demo").replace(**fields)


@pytest.fixture
def tiny():
    return tiny_config
