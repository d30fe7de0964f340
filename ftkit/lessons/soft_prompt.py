"""Prompt tuning written out (Lester et al., 2021): a few learnable vectors in front of the input embeddings
of a frozen model. peft's ``PromptTuningConfig`` does the same; this file shows what that means, in full.

    tuned = SoftPrompt(model, num_virtual_tokens=10, init_ids=tok("Is this spam?")["input_ids"])
    tuned(input_ids=..., attention_mask=..., labels=...)   # a causal LM's output, prompt included

Only ``tuned.prompt`` trains: ``num_virtual_tokens x hidden`` numbers.
"""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn


class SoftPrompt(nn.Module):
    def __init__(self, model, num_virtual_tokens: int, init_ids=None):
        """``init_ids``: token ids whose embeddings start the prompt (repeated or cut to length, as peft's
        TEXT initialisation does); without them the prompt starts from N(0, 1), peft's RANDOM."""
        super().__init__()
        self.model = model.requires_grad_(False)
        embeddings = model.get_input_embeddings().weight
        if init_ids is None:
            start = torch.randn(num_virtual_tokens, embeddings.shape[1])
        else:
            ids = (list(init_ids) * num_virtual_tokens)[:num_virtual_tokens]
            start = embeddings[torch.tensor(ids)].detach().float().clone()
        self.prompt = nn.Parameter(start.to(embeddings.device))
        self.config = model.config

    @property
    def device(self):
        return self.prompt.device

    def forward(self, input_ids, attention_mask, labels=None, **kwargs):
        n, rows = self.prompt.shape[0], input_ids.shape[0]
        embeds = self.model.get_input_embeddings()(input_ids)
        embeds = torch.cat([self.prompt.to(embeds.dtype).expand(rows, -1, -1), embeds], dim=1)
        attention_mask = torch.cat([attention_mask.new_ones(rows, n), attention_mask], dim=1)
        if labels is not None:  # no loss on the prompt's positions
            labels = torch.cat([labels.new_full((rows, n), -100), labels], dim=1)
        return self.model(inputs_embeds=embeds, attention_mask=attention_mask, labels=labels, **kwargs)

    def save_pretrained(self, folder) -> None:
        """The prompt alone (what ``train.fit(best_dir=...)`` and users save)."""
        Path(folder).mkdir(parents=True, exist_ok=True)
        save_file({"prompt": self.prompt.detach().cpu().contiguous()}, str(Path(folder) / "soft_prompt.safetensors"))
