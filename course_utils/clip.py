"""Chapter 07's small CLIP and the tiny language model its projector connector feeds.

* :class:`WordTokenizer` - a word-level tokenizer for a closed vocabulary (CLIP itself uses byte-pair
  encoding with 49,408 tokens and a context of 77; see open_clip's tokenizer in the chapter).
* :class:`CausalTextTransformer` - token + position embeddings → pre-norm Transformer blocks under a causal
  mask → LayerNorm. CLIP's text encoder is this, read out at the end-of-text token.
* :class:`TextEncoder` and :class:`MiniCLIP` - the two towers of CLIP; ``encode_image`` / ``encode_text``
  return L2-normalised embeddings and ``logit_scale`` is the learned log inverse temperature.
* :class:`CaptionDecoder` - a causal language model that can be given "soft" prefix embeddings, and
  :class:`Projector` - the connector (linear as in LLaVA, or LLaVA-1.5's MLP) that turns an image
  embedding into such a prefix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .vit import VisionTransformer

PAD, EOS, BOS = "<pad>", "<eos>", "<bos>"


class WordTokenizer:
    """Split on spaces, map words to ids, append ``<eos>``, pad with ``<pad>`` (id 0) to ``context_length``."""

    def __init__(self, vocabulary: Sequence[str], context_length: int):
        if vocabulary[0] != PAD or EOS not in vocabulary:
            raise ValueError("the vocabulary must start with <pad> and contain <eos>")
        self.vocabulary, self.context_length = tuple(vocabulary), context_length
        self.ids = {word: i for i, word in enumerate(self.vocabulary)}
        self.pad_id, self.eos_id, self.bos_id = 0, self.ids[EOS], self.ids.get(BOS)

    def encode(self, text: str, bos: bool = False) -> list[int]:
        unknown = [word for word in text.split() if word not in self.ids]
        if unknown:
            raise ValueError(f"words not in the vocabulary: {unknown} (a closed-vocabulary tokenizer cannot spell them)")
        return ([self.bos_id] if bos else []) + [self.ids[word] for word in text.split()] + [self.eos_id]

    def __call__(self, texts: str | Sequence[str], bos: bool = False) -> torch.Tensor:
        texts = [texts] if isinstance(texts, str) else list(texts)
        batch = torch.full((len(texts), self.context_length), self.pad_id, dtype=torch.long)
        for row, text in enumerate(texts):
            ids = self.encode(text, bos=bos)
            if len(ids) > self.context_length:
                raise ValueError(f"{text!r} needs {len(ids)} tokens; the context length is {self.context_length}")
            batch[row, :len(ids)] = torch.tensor(ids)
        return batch

    def decode(self, ids) -> str:
        words = []
        for i in (ids.tolist() if hasattr(ids, "tolist") else ids):
            if i == self.eos_id:
                break
            if i not in (self.pad_id, self.bos_id):
                words.append(self.vocabulary[i])
        return " ".join(words)


class CausalTextTransformer(nn.Module):
    """Embeddings → ``depth`` pre-norm Transformer blocks with a causal mask → LayerNorm (N × L × dim)."""

    def __init__(self, vocab_size: int, context_length: int, dim: int = 64, depth: int = 2, num_heads: int = 4,
                 mlp_ratio: float = 2.0):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, dim)
        self.position_embedding = nn.Parameter(torch.randn(1, context_length, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, num_heads, int(dim * mlp_ratio), dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.register_buffer("causal_mask", torch.triu(torch.full((context_length, context_length), float("-inf")), 1),
                             persistent=False)

    def forward_embeddings(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Run the blocks on N × L × dim input embeddings (token embeddings, or a prefix followed by them)."""
        length = embeddings.shape[1]
        if length > self.position_embedding.shape[1]:
            raise ValueError(f"sequence of {length} tokens exceeds the context length {self.position_embedding.shape[1]}")
        hidden = embeddings + self.position_embedding[:, :length]
        return self.norm(self.blocks(hidden, mask=self.causal_mask[:length, :length], is_causal=True))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.forward_embeddings(self.token_embedding(ids))


class TextEncoder(nn.Module):
    """CLIP's text tower: the causal transformer's state at ``<eos>`` (which has read the whole text), projected."""

    def __init__(self, vocab_size: int, context_length: int, eos_id: int, dim: int = 64, depth: int = 2,
                 num_heads: int = 4, embed_dim: int = 64):
        super().__init__()
        self.eos_id = eos_id
        self.transformer = CausalTextTransformer(vocab_size, context_length, dim, depth, num_heads)
        self.projection = nn.Linear(dim, embed_dim, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        hidden = self.transformer(ids)
        if not (ids == self.eos_id).any(dim=1).all():
            raise ValueError("every text needs an <eos> token (the tokenizer appends it)")
        eos_position = (ids == self.eos_id).int().argmax(dim=1)  # the first <eos> in each row
        return self.projection(hidden[torch.arange(len(ids)), eos_position])


class MiniCLIP(nn.Module):
    """A ViT image tower and a causal text tower projected into one ``embed_dim`` space, and a learned temperature.

    ``logit_scale`` starts at ln(1/0.07) as in CLIP; similarities are multiplied by ``logit_scale.exp()``.
    """

    def __init__(self, vocab_size: int, eos_id: int, context_length: int = 12, image_size: int = 32,
                 patch_size: int = 8, vision_dim: int = 64, vision_depth: int = 4, vision_heads: int = 4,
                 text_dim: int = 64, text_depth: int = 2, text_heads: int = 4, embed_dim: int = 64):
        super().__init__()
        self.visual = VisionTransformer(image_size, patch_size, 3, 0, vision_dim, vision_depth, vision_heads, 2.0)
        self.visual_projection = nn.Linear(vision_dim, embed_dim, bias=False)
        self.text = TextEncoder(vocab_size, context_length, eos_id, text_dim, text_depth, text_heads, embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_image(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        features = self.visual_projection(self.visual.embed(images))
        return F.normalize(features, dim=-1) if normalize else features

    def encode_text(self, ids: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        features = self.text(ids)
        return F.normalize(features, dim=-1) if normalize else features

    def forward(self, images: torch.Tensor, ids: torch.Tensor):
        """(normalised image features, normalised text features, logit scale) - the inputs of the CLIP loss."""
        return self.encode_image(images), self.encode_text(ids), self.logit_scale.exp()


class CaptionDecoder(nn.Module):
    """A tiny causal language model: next-word logits, optionally after a prefix of ``prefix`` embeddings."""

    def __init__(self, vocab_size: int, context_length: int = 16, dim: int = 64, depth: int = 2, num_heads: int = 4):
        super().__init__()
        self.transformer = CausalTextTransformer(vocab_size, context_length, dim, depth, num_heads)
        self.lm_head = nn.Linear(dim, vocab_size)

    def forward(self, ids: torch.Tensor, prefix: torch.Tensor | None = None) -> torch.Tensor:
        """Logits N × (P + L) × vocab for ``prefix`` (N × P × dim, or None) followed by the tokens ``ids``."""
        embeddings = self.transformer.token_embedding(ids)
        if prefix is not None:
            embeddings = torch.cat([prefix, embeddings], dim=1)
        return self.lm_head(self.transformer.forward_embeddings(embeddings))

    @torch.no_grad()
    def generate(self, start_ids: torch.Tensor, prefix: torch.Tensor | None = None, max_new_tokens: int = 10,
                 eos_id: int | None = None) -> torch.Tensor:
        """Greedy decoding from ``start_ids`` (N × L, e.g. the ``<bos>`` column); returns the new tokens."""
        ids = start_ids
        for _ in range(max_new_tokens):
            next_ids = self(ids, prefix)[:, -1].argmax(dim=-1, keepdim=True)
            ids = torch.cat([ids, next_ids], dim=1)
            if eos_id is not None and (ids[:, start_ids.shape[1]:] == eos_id).any(dim=1).all():
                break
        return ids[:, start_ids.shape[1]:]


class Projector(nn.Module):
    """The connector: one image embedding → ``prefix_tokens`` language-model input embeddings.

    ``hidden_dim=None`` is LLaVA's linear projection; an integer gives LLaVA-1.5's two-layer MLP.
    """

    def __init__(self, image_dim: int, text_dim: int, prefix_tokens: int = 4, hidden_dim: int | None = None):
        super().__init__()
        self.prefix_tokens, self.text_dim = prefix_tokens, text_dim
        if hidden_dim is None:
            self.mlp = nn.Linear(image_dim, prefix_tokens * text_dim)
        else:
            self.mlp = nn.Sequential(nn.Linear(image_dim, hidden_dim), nn.GELU(),
                                     nn.Linear(hidden_dim, prefix_tokens * text_dim))

    def forward(self, image_features: torch.Tensor) -> torch.Tensor:
        return self.mlp(image_features).view(len(image_features), self.prefix_tokens, self.text_dim)
