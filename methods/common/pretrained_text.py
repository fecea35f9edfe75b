"""A pretrained Transformer reading a batch's token ids: the text encoder of MMSA's BERT methods
(MMSA's `BertTextEncoder`), for any method.

B = batch, L' = the batch's longest real token count, H = the model's hidden size.

Outputs, as the method asks (`output`):
  * "cls":    the first token's final state (B, H) (MMIM, Self-MM);
  * "mean":   the mean of the final states over real tokens, [CLS] and [SEP] included (B, H)
              (MISA: `sum(mask * states) / sum(mask)`);
  * "tokens": every token's final state (B, L', H), zeros at padding (the `text` sequence of
              feature-based methods; its lengths are the real token counts).
Fine-tuned (`finetune=True`): the model trains with the method, its parameters in their own
optimiser group (`TEXT_ENCODER_GROUP`: learning_rate_bert, weight_decay_bert). Frozen: no
parameter requires a gradient, the model stays in eval mode (no dropout) and runs without
autograd, as MMSA's `use_finetune=False`.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.data.tokens import TokenInfo
from harness.data.types import TokenBatch
from harness.errors import ConfigError
from harness.text_models import load_encoder, resolve

TEXT_OUTPUTS = ("cls", "mean", "tokens")
TEXT_ENCODER_GROUP = "text_encoder"  # the optimiser group's name


class PretrainedTextEncoder(nn.Module):
    """A Hugging Face model loaded from the dataset's text model; see the module docstring."""

    def __init__(self, tokens: TokenInfo, output: str, finetune: bool) -> None:
        super().__init__()
        if output not in TEXT_OUTPUTS:
            raise ConfigError(
                f"text encoder output: expected one of {TEXT_OUTPUTS}, got {output!r}"
            )
        model = resolve(tokens.model)
        if model.sha256 != tokens.sha256:
            raise ConfigError(
                f"text_model {tokens.model!r}: weights sha256 {model.sha256[:12]}... differ from "
                f"{tokens.sha256[:12]}... recorded when the dataset was fetched; fetch it again"
            )
        self.model = load_encoder(model)
        self.output = output
        self.finetune = finetune
        self.out_size = model.hidden_size
        self.identity = tokens
        self.model.requires_grad_(finetune)

    def train(self, mode: bool = True) -> PretrainedTextEncoder:
        super().train(mode)
        if not self.finetune:
            self.model.eval()  # frozen: never dropout
        return self

    def forward(self, tokens: TokenBatch) -> torch.Tensor:
        """(B, H) for "cls" and "mean", (B, L', H) for "tokens" (see the module docstring)."""
        with torch.set_grad_enabled(self.finetune and torch.is_grad_enabled()):
            states = self.model(
                input_ids=tokens.ids,
                attention_mask=tokens.mask,
                token_type_ids=tokens.segments,
            ).last_hidden_state  # (B, L', H)
        mask = tokens.mask.unsqueeze(-1).to(states.dtype)
        if self.output == "cls":
            return states[:, 0]
        if self.output == "mean":
            return (states * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)
        return states * mask


def text_encoder_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The trainable parameters of every PretrainedTextEncoder inside `module`."""
    return [p for _, p in named_text_encoder_parameters(module)]


def named_text_encoder_parameters(module: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """(name inside its encoder, parameter) of every trainable PretrainedTextEncoder parameter
    inside `module`, e.g. ("model.encoder.layer.0.attention.output.LayerNorm.weight", p)."""
    found: list[tuple[str, nn.Parameter]] = []
    for child in module.modules():
        if isinstance(child, PretrainedTextEncoder):
            found.extend((n, p) for n, p in child.named_parameters() if p.requires_grad)
    return found


def is_bias_or_norm(name: str) -> bool:
    """A Transformer parameter that the usual BERT fine-tuning recipe (and MMSA's Self-MM)
    exempts from weight decay: a bias, or a LayerNorm's weight."""
    return "bias" in name or "LayerNorm" in name
