"""CENET's cross-modal enhancement (CE) module and a BERT run with it injected between layers.

Wang, Liu, Wang, Tian, He & Gao, "Cross-modal Enhancement Network for Multimodal Sentiment
Analysis", IEEE Transactions on Multimedia 25 (2023); as MMSA's models/singleTask/CENET.py
(classes CE, SelfAttention, BertEncoder, BertModel).

The CE module (`CrossModalEnhancement`) turns the text token states h (B, L, H) into
h + Linear(2H, H)([attend(h, vision'); attend(h, audio')]), where
    x'             = Linear(H, H)(ReLU(Linear(D_x, H)(x)))   per step, for x in audio, vision;
    attend(h, x')  = softmax(scale * (W_q h)(W_k x')^T) (W_v x')   one head, over the steps of x.
MMSA multiplies the scores by 8 (`scale`), it does not divide them by sqrt(H). MMSA attends to
every step of the padded audio/vision arrays; `mask_padding` (msabench's default) hides the
padded steps (a row with no real step sees its first step, `safe_mask`, as MulT's encoder does).

`encode_with_injection` runs a Hugging Face BERT's layers (`model.encoder.layer`) over embedding
outputs, applying the CE module to the hidden states before layer `injection_layer` (MMSA's
`injection_index = 1`: after the first layer). `standin_bert` builds a small BERT from scratch
(transformers' BertModel over `inputs_embeds`) for datasets without token ids.

B = batch, L = tokens, S = nonverbal steps, H = BERT width, D_x = feature width of modality x.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from methods.common.transformer import safe_mask

INITIALIZER_RANGE = 0.02  # BERT's initializer_range: MMSA's `_init_weights` for CE and the head


def bert_init_(module: nn.Module, std: float = INITIALIZER_RANGE) -> nn.Module:
    """BERT's initialisation of every Linear inside `module` (weights N(0, std^2), zero
    biases), as MMSA's `BertPreTrainedModel._init_weights` sets the layers that
    `from_pretrained` does not load (CE and the classifier). Returns `module`."""
    for child in module.modules():
        if isinstance(child, nn.Linear):
            nn.init.normal_(child.weight, mean=0.0, std=std)
            if child.bias is not None:
                nn.init.zeros_(child.bias)
    return module


class NonverbalAttention(nn.Module):
    """MMSA's one-head `SelfAttention` of text states over a nonverbal sequence:
    text (B, L, H), source (B, S, H), source_mask (B, S) bool or None -> (B, L, H)."""

    def __init__(self, hidden: int, score_scale: float) -> None:
        super().__init__()
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.score_scale = score_scale

    def forward(
        self, text: torch.Tensor, source: torch.Tensor, source_mask: torch.Tensor | None
    ) -> torch.Tensor:
        if source.shape[1] == 0:  # no nonverbal step at all: nothing to add
            return text.new_zeros(text.shape)
        # softmax(score_scale * q k^T) v through torch's fused kernel; padded steps get no weight
        mask = None if source_mask is None else safe_mask(source_mask).unsqueeze(1)  # (B, 1, S)
        return F.scaled_dot_product_attention(
            self.query(text), self.key(source), self.value(source), mask, scale=self.score_scale
        )


def nonverbal_transform(in_size: int, hidden: int) -> nn.Sequential:
    """MMSA's `visual_transform` / `acoustic_transform`: (B, S, D_x) -> (B, S, H)."""
    return nn.Sequential(nn.Linear(in_size, hidden), nn.ReLU(), nn.Linear(hidden, hidden))


class CrossModalEnhancement(nn.Module):
    """The CE module (see the module docstring): text (B, L, H), audio (B, S_a, D_a), vision
    (B, S_v, D_v) and their (B, S) bool masks -> enhanced text (B, L, H). With
    `mask_padding` false the masks are ignored (MMSA's form). BERT-initialised (`bert_init_`)."""

    def __init__(
        self,
        hidden: int,
        audio_dim: int,
        vision_dim: int,
        score_scale: float = 8.0,
        mask_padding: bool = True,
    ) -> None:
        super().__init__()
        self.vision_transform = nonverbal_transform(vision_dim, hidden)
        self.audio_transform = nonverbal_transform(audio_dim, hidden)
        self.vision_attention = NonverbalAttention(hidden, score_scale)
        self.audio_attention = NonverbalAttention(hidden, score_scale)
        self.merge = nn.Linear(2 * hidden, hidden)  # MMSA's cat_connect over [vision; audio]
        self.mask_padding = mask_padding
        bert_init_(self)

    def shift(
        self,
        text: torch.Tensor,
        audio: torch.Tensor,
        audio_mask: torch.Tensor,
        vision: torch.Tensor,
        vision_mask: torch.Tensor,
    ) -> torch.Tensor:
        """The nonverbal shift added to the text states: (B, L, H)."""
        use = self.mask_padding
        attended_vision = self.vision_attention(
            text, self.vision_transform(vision), vision_mask if use else None
        )
        attended_audio = self.audio_attention(
            text, self.audio_transform(audio), audio_mask if use else None
        )
        return self.merge(torch.cat([attended_vision, attended_audio], dim=-1))

    def forward(
        self,
        text: torch.Tensor,
        audio: torch.Tensor,
        audio_mask: torch.Tensor,
        vision: torch.Tensor,
        vision_mask: torch.Tensor,
    ) -> torch.Tensor:
        return text + self.shift(text, audio, audio_mask, vision, vision_mask)


def additive_attention_mask(token_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """BERT's extended attention mask: token_mask (B, L) (1/True at real tokens) ->
    (B, 1, 1, L) of `dtype`, 0 at real tokens and the dtype's lowest value at padding (what
    transformers' `get_extended_attention_mask` gave; its eager and SDPA attention add it)."""
    real = token_mask[:, None, None, :].to(dtype)
    return (1.0 - real) * torch.finfo(dtype).min


def encode_with_injection(
    layers: nn.ModuleList,
    hidden: torch.Tensor,
    token_mask: torch.Tensor,
    inject,
    injection_layer: int,
) -> torch.Tensor:
    """Run BERT layers over embedding outputs hidden (B, L, H) under token_mask (B, L), calling
    `inject(states) -> states` on the hidden states before layer `injection_layer` (after the
    last layer when it equals len(layers)), as MMSA's BertEncoder: -> final states (B, L, H)."""
    if not 0 <= injection_layer <= len(layers):
        raise ValueError(f"injection_layer {injection_layer} outside 0..{len(layers)}")
    extended = additive_attention_mask(token_mask, hidden.dtype)
    for index, layer in enumerate(layers):
        if index == injection_layer:
            hidden = inject(hidden)
        output = layer(hidden, extended)
        hidden = output[0] if isinstance(output, tuple) else output  # transformers 4: a tuple
    if injection_layer == len(layers):
        hidden = inject(hidden)
    return hidden


def standin_bert(
    hidden: int, layers: int, heads: int, dropout: float, max_positions: int
) -> nn.Module:
    """A BERT of the given size trained from scratch (transformers' BertModel without a pooler,
    intermediate 4H, GELU, BERT's initialisation), read through `inputs_embeds`: it stands in
    for the pretrained BERT on datasets without token ids. Its one-word vocabulary is unused."""
    from transformers import BertConfig, BertModel

    if hidden % heads != 0:
        raise ValueError(f"text_heads {heads} does not divide text_hidden {hidden}")
    config = BertConfig(
        vocab_size=1,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        max_position_embeddings=max_positions,
        type_vocab_size=1,
        pad_token_id=0,
    )
    model = BertModel(config, add_pooling_layer=False)
    model.embeddings.word_embeddings.requires_grad_(False)  # never read (inputs_embeds)
    return model
