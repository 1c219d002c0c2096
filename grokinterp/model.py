"""The grokking transformer, with TransformerLens hook points.

Axis names used in every shape annotation of the package:

    batch       inputs in a batch (for grid analyses: pair = a * p + b)
    pos         token position (0: a, 1: b, 2: '=')
    d_model     residual stream width
    head_index  attention head
    d_head      per-head width
    d_mlp       MLP hidden width (one neuron per index)
    d_vocab     input vocabulary (p residues and '=')
    d_vocab_out output classes (the p residues)
    checkpoint  saved epoch of a run
    freq        Fourier frequency k = 1 .. p // 2
    a, b, c     the two operands and the answer class

The model is HookedTransformer's 1-layer attention + MLP network (REFERENCE.md §1)
written on TransformerLens 4's supported ``HookedRootModule`` and ``HookPoint``:
``run_with_cache`` returns activations under the familiar names
(``hook_embed``, ``blocks.0.attn.hook_pattern``, ``blocks.0.mlp.hook_post``, ...) and
the parameters carry HookedTransformer's names and shapes (``embed.W_E``,
``blocks.0.attn.W_Q`` ...). There is no LayerNorm and biases are absent unless
``mlp_bias`` is set (the paper's code has MLP biases, the TransformerLens demo has
none that train).

Two exact shortcuts skip the hooks: ``last_logits`` (used by training) computes only
the last position and reuses per-token work; ``grid_logits`` (used by analysis)
evaluates all p² inputs at once from per-operand tables. Tests check both against the
plain hooked forward.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import einops
import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn
from transformer_lens.hook_points import HookPoint
from transformer_lens.HookedRootModule import HookedRootModule

ACT_FNS = ("relu",)


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the transformer. Defaults are the paper's model for p = 113."""

    d_vocab: int = 114
    d_vocab_out: int = 113
    n_ctx: int = 3
    d_model: int = 128
    n_heads: int = 4
    d_head: int = 32
    d_mlp: int = 512
    n_layers: int = 1
    act_fn: str = "relu"
    mlp_bias: bool = False

    def __post_init__(self) -> None:
        for name in (
            "d_vocab",
            "d_vocab_out",
            "n_ctx",
            "d_model",
            "n_heads",
            "d_head",
            "d_mlp",
            "n_layers",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.act_fn not in ACT_FNS:
            raise ValueError(f"act_fn must be one of {ACT_FNS}, got {self.act_fn!r}")

    @classmethod
    def for_task(cls, p: int, **overrides) -> ModelConfig:
        """The paper's architecture sized for modulus ``p`` ('=' is token ``p``)."""
        return cls(d_vocab=p + 1, d_vocab_out=p, **overrides)

    def to_dict(self) -> dict:
        return asdict(self)


class Embed(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.W_E = nn.Parameter(torch.empty(cfg.d_vocab, cfg.d_model))

    def forward(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos d_model"]:
        return self.W_E[tokens]


class PosEmbed(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.W_pos = nn.Parameter(torch.empty(cfg.n_ctx, cfg.d_model))

    def forward(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos d_model"]:
        return self.W_pos[: tokens.shape[1]].expand(tokens.shape[0], -1, -1)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        shape_in = (cfg.n_heads, cfg.d_model, cfg.d_head)
        self.W_Q = nn.Parameter(torch.empty(shape_in))
        self.W_K = nn.Parameter(torch.empty(shape_in))
        self.W_V = nn.Parameter(torch.empty(shape_in))
        self.W_O = nn.Parameter(torch.empty(cfg.n_heads, cfg.d_head, cfg.d_model))
        self.register_buffer(
            "mask",
            torch.tril(torch.ones(cfg.n_ctx, cfg.n_ctx, dtype=torch.bool)),
            persistent=False,
        )
        self.scale = math.sqrt(cfg.d_head)
        self.hook_q = HookPoint()
        self.hook_k = HookPoint()
        self.hook_v = HookPoint()
        self.hook_attn_scores = HookPoint()
        self.hook_pattern = HookPoint()
        self.hook_z = HookPoint()

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        q = self.hook_q(einops.einsum(x, self.W_Q, "b p m, h m d -> b p h d"))
        k = self.hook_k(einops.einsum(x, self.W_K, "b p m, h m d -> b p h d"))
        v = self.hook_v(einops.einsum(x, self.W_V, "b p m, h m d -> b p h d"))
        scores = einops.einsum(q, k, "b q h d, b k h d -> b h q k") / self.scale
        n = x.shape[1]
        scores = scores.masked_fill(~self.mask[:n, :n], float("-inf"))
        scores = self.hook_attn_scores(scores)
        pattern = self.hook_pattern(scores.softmax(dim=-1))
        z = self.hook_z(einops.einsum(pattern, v, "b h q k, b k h d -> b q h d"))
        return einops.einsum(z, self.W_O, "b q h d, h d m -> b q m")


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.W_in = nn.Parameter(torch.empty(cfg.d_model, cfg.d_mlp))
        self.W_out = nn.Parameter(torch.empty(cfg.d_mlp, cfg.d_model))
        if cfg.mlp_bias:
            self.b_in = nn.Parameter(torch.zeros(cfg.d_mlp))
            self.b_out = nn.Parameter(torch.zeros(cfg.d_model))
        else:
            self.b_in = self.b_out = None
        self.hook_pre = HookPoint()
        self.hook_post = HookPoint()

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        pre = x @ self.W_in
        if self.b_in is not None:
            pre = pre + self.b_in
        post = self.hook_post(F.relu(self.hook_pre(pre)))
        out = post @ self.W_out
        if self.b_out is not None:
            out = out + self.b_out
        return out


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.attn = Attention(cfg)
        self.mlp = MLP(cfg)
        self.hook_resid_pre = HookPoint()
        self.hook_attn_out = HookPoint()
        self.hook_resid_mid = HookPoint()
        self.hook_mlp_out = HookPoint()
        self.hook_resid_post = HookPoint()

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        x = self.hook_resid_pre(x)
        x = self.hook_resid_mid(x + self.hook_attn_out(self.attn(x)))
        return self.hook_resid_post(x + self.hook_mlp_out(self.mlp(x)))


class Unembed(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.W_U = nn.Parameter(torch.empty(cfg.d_model, cfg.d_vocab_out))

    def forward(self, x: Float[Tensor, "... d_model"]) -> Float[Tensor, "... d_vocab_out"]:
        return x @ self.W_U


class GrokTransformer(HookedRootModule):
    """Attention-then-MLP transformer with HookedTransformer names and hook points.

    Example:
        >>> model = GrokTransformer(ModelConfig.for_task(7), seed=0)
        >>> logits, cache = model.run_with_cache(torch.tensor([[1, 2, 7]]))
        >>> logits.shape, cache["blocks.0.mlp.hook_post"].shape
        (torch.Size([1, 3, 7]), torch.Size([1, 3, 512]))
    """

    def __init__(self, cfg: ModelConfig, seed: int | None = None):
        super().__init__()
        self.cfg = cfg
        self.embed = Embed(cfg)
        self.pos_embed = PosEmbed(cfg)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layers)])
        self.unembed = Unembed(cfg)
        self.hook_embed = HookPoint()
        self.hook_pos_embed = HookPoint()
        self.setup()
        self.init_weights(seed)

    @torch.no_grad()
    def init_weights(self, seed: int | None = None) -> None:
        """REFERENCE.md §1: W_U ~ N(0,1)/sqrt(d_vocab), all else N(0,1)/sqrt(d_model).

        Biases start at zero. Parameters are drawn in ``named_parameters`` order from a
        private generator, so the same seed gives the same weights everywhere.
        """
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        for name, param in self.named_parameters():
            if ".b_" in name:
                param.zero_()
                continue
            fan = self.cfg.d_vocab if name == "unembed.W_U" else self.cfg.d_model
            sample = torch.randn(param.shape, generator=gen, dtype=torch.float32)
            param.copy_(sample / math.sqrt(fan))

    def forward(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos d_vocab_out"]:
        x = self.hook_embed(self.embed(tokens)) + self.hook_pos_embed(self.pos_embed(tokens))
        for block in self.blocks:
            x = block(x)
        return self.unembed(x)

    def last_logits(
        self, tokens: Int[Tensor, "batch pos"], return_post: bool = False
    ) -> Float[Tensor, "batch d_vocab_out"] | tuple[Tensor, Tensor | None]:
        """Logits at the last position only, equal to ``self(tokens)[:, -1]``.

        For one layer, keys, values and the last query depend on a single token each,
        so they are tabulated once per (position, token) as [d_vocab, head * d_head]
        tables and gathered with ``F.embedding`` instead of being recomputed for every
        input; the MLP and unembedding run on the last position alone. Hooks are not
        called; use the plain forward (or ``run_with_cache``) to read activations.

        Args:
            tokens: [batch, pos] token ids.
            return_post: also return the last-position MLP activations [batch, d_mlp]
                (None for models of more than one layer).
        """
        if self.cfg.n_layers != 1:
            logits = self(tokens)[:, -1]
            return (logits, None) if return_post else logits
        attn, mlp = self.blocks[0].attn, self.blocks[0].mlp
        n_heads, d_head = attn.W_Q.shape[0], attn.W_Q.shape[2]
        n = tokens.shape[1]
        # Residual stream entering the block, per (position, token): [pos, d_vocab, d_model].
        resid = self.embed.W_E.unsqueeze(0) + self.pos_embed.W_pos[:n].unsqueeze(1)
        W_K = einops.rearrange(attn.W_K, "h m d -> m (h d)")
        W_V = einops.rearrange(attn.W_V, "h m d -> m (h d)")
        W_Q = einops.rearrange(attn.W_Q, "h m d -> m (h d)") / attn.scale
        last = tokens[:, -1]
        query = F.embedding(last, resid[-1] @ W_Q).view(-1, n_heads, d_head)
        scores, values = [], []
        for j in range(n):
            k_j = F.embedding(tokens[:, j], resid[j] @ W_K).view(-1, n_heads, d_head)
            values.append(F.embedding(tokens[:, j], resid[j] @ W_V).view(-1, n_heads, d_head))
            scores.append((query * k_j).sum(dim=-1))
        pattern = torch.stack(scores, dim=-1).softmax(dim=-1)  # [batch, head, pos]
        z = sum(pattern[..., j, None] * values[j] for j in range(n))  # [batch, head, d_head]
        attn_out = z.flatten(1) @ einops.rearrange(attn.W_O, "h d m -> (h d) m")
        resid_mid = F.embedding(last, resid[-1]) + attn_out
        pre = resid_mid @ mlp.W_in
        if mlp.b_in is not None:
            pre = pre + mlp.b_in
        post = F.relu(pre)
        out = post @ mlp.W_out
        if mlp.b_out is not None:
            out = out + mlp.b_out
        logits = (resid_mid + out) @ self.unembed.W_U
        return (logits, post) if return_post else logits

    def grid_logits(
        self, return_post: bool = False, chunk: int | None = None
    ) -> Float[Tensor, "pair d_vocab_out"] | tuple[Tensor, Tensor | None]:
        """Last-position logits of all p² inputs ``[a, b, '=']``, equal to
        ``self(grid_tokens(p))[:, -1]`` (rows ``a * p + b``; ``tasks.grid_tokens``).

        The analysis of every checkpoint starts here, so it uses the grid's structure,
        exactly. With one layer the last query is the same for every input (it reads
        '=' at position 2), so the attention pattern is a softmax of three scores that
        depend on a alone, on b alone and on nothing. The residual stream after
        attention is therefore a pattern-weighted sum of per-a, per-b and constant
        vectors, and so are its products with W_in and W_U: the p * p * d_mlp
        pre-activations are built from those [p, d_mlp] tables with 2 * n_heads + 1
        multiply-adds each, instead of a d_model-long dot product. What remains is the
        ReLU and one [p², d_mlp] x [d_mlp, p] product with W_out W_U. Rows are
        processed ``chunk`` values of a at a time, so the working set stays in cache
        (default: about 2 MB per chunk on the CPU, the whole grid elsewhere).

        Other layouts (more layers, a vocabulary that is not p residues plus '=')
        fall back to ``last_logits(grid_tokens(p))``. Hooks are not called.

        Args:
            return_post: also return the last-position MLP activations [pair, d_mlp]
                (None for models of more than one layer).
            chunk: values of a per block.
        """
        from grokinterp.tasks import grid_tokens  # tasks does not import the model

        p = self.cfg.d_vocab_out
        if self.cfg.n_layers != 1 or self.cfg.d_vocab != p + 1 or self.cfg.n_ctx < 3:
            return self.last_logits(grid_tokens(p).to(self.embed.W_E.device), return_post)
        attn, mlp = self.blocks[0].attn, self.blocks[0].mlp
        W_E, W_pos, W_U = self.embed.W_E, self.pos_embed.W_pos, self.unembed.W_U
        # Residual stream entering the block: a at position 0, b at 1, '=' at 2.
        r_a, r_b, r_eq = W_E[:p] + W_pos[0], W_E[:p] + W_pos[1], W_E[p] + W_pos[2]
        # Scores of the '=' query against each key, per head: [head, p] or [head].
        query = einops.einsum(r_eq, attn.W_Q, "m, h m d -> h d") / attn.scale
        key_read = einops.einsum(attn.W_K, query, "h m d, h d -> m h")
        s_a, s_b, s_eq = (r_a @ key_read).T, (r_b @ key_read).T, r_eq @ key_read
        scores = torch.stack(
            torch.broadcast_tensors(s_a[:, :, None], s_b[:, None, :], s_eq[:, None, None])
        )  # [source position, head, a, b]
        pattern = scores.softmax(dim=0)
        # What each source writes through OV, read by W_in and W_U together; through
        # the d_head bottleneck, W_O W_read is formed once per head.
        W_read = torch.cat([mlp.W_in, W_U], dim=1)  # [d_model, d_mlp + p]
        O_read = attn.W_O @ W_read  # [head, d_head, d_mlp + p]
        per_a = einops.einsum(r_a @ attn.W_V, O_read, "h a d, h d n -> a h n")
        per_b = einops.einsum(r_b @ attn.W_V, O_read, "h b d, h d n -> b h n")
        from_eq = einops.einsum(r_eq @ attn.W_V, O_read, "h d, h d n -> h n")
        direct = r_eq @ W_read  # the '=' token's own residual, skipping attention
        d_mlp, width = mlp.W_in.shape[1], W_read.shape[1]
        if mlp.b_in is not None:
            direct = direct + torch.cat([mlp.b_in, W_U.new_zeros(p)])
        if mlp.b_out is not None:
            direct = direct + torch.cat([W_U.new_zeros(d_mlp), mlp.b_out @ W_U])
        # Per a: [a, 2 * head + 1, width] tables and [a, b, 2 * head + 1] weights.
        table_a = torch.cat([per_a, from_eq.expand(p, -1, -1), direct.expand(p, 1, -1)], dim=1)
        ones = torch.ones(p, p, 1, dtype=pattern.dtype, device=pattern.device)
        weight_a = torch.cat(
            [pattern[0].permute(1, 2, 0), pattern[2].permute(1, 2, 0), ones], dim=-1
        ).contiguous()
        weight_b = pattern[1].permute(1, 2, 0).contiguous()  # [a, b, head]
        W_L = mlp.W_out @ W_U
        if chunk is None:
            chunk = max(1, 2**19 // (p * width)) if W_U.device.type == "cpu" else p
        elif isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
            raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
        chunk = min(chunk, p)
        blocks = [(lo, min(lo + chunk, p)) for lo in range(0, p, chunk)]
        if torch.is_grad_enabled():  # out-of-place, so that autograd records every step
            logit_blocks, post_blocks = [], []
            for lo, hi in blocks:  # per-b terms, then per-a and constant terms
                x = (weight_b[lo:hi, :, :, None] * per_b).sum(dim=2)
                x = x.baddbmm(weight_a[lo:hi], table_a[lo:hi])  # [a, b, width]
                acts = F.relu(x[..., :d_mlp])
                resid_logits = x[..., d_mlp:].reshape(-1, p)
                logit_blocks.append(torch.addmm(resid_logits, acts.reshape(-1, d_mlp), W_L))
                post_blocks.append(acts)
            logits, post = torch.cat(logit_blocks), torch.cat(post_blocks)
        else:  # in place in one reused buffer, written into preallocated outputs
            logits = W_U.new_empty(p, p, p)
            post = W_U.new_empty(p, p, d_mlp) if return_post else None
            buffer = W_U.new_empty(chunk, p, width)
            for lo, hi in blocks:
                x, w_b = buffer[: hi - lo], weight_b[lo:hi, :, :, None]
                torch.mul(w_b[:, :, 0], per_b[:, 0], out=x)
                for h in range(1, per_b.shape[1]):
                    x.addcmul_(w_b[:, :, h], per_b[:, h])
                x.baddbmm_(weight_a[lo:hi], table_a[lo:hi])
                acts = x[..., :d_mlp].relu_()
                if post is not None:
                    post[lo:hi] = acts
                flat = logits[lo:hi].view(-1, p)
                torch.addmm(x[..., d_mlp:].reshape(-1, p), acts.reshape(-1, d_mlp), W_L, out=flat)
        logits = logits.view(p * p, p)
        return (logits, post.view(p * p, d_mlp)) if return_post else logits
