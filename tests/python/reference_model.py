"""The trendscore model of shared/DESIGN.md, written in PyTorch.

This is the independent reference that the Rust trainer (tch), the exporter and every
inference backend are checked against. It loads a trendscore checkpoint directory with
`load_state_dict(strict=True)`: the parameter names are the contract.

The module takes *normalised* input (batch, seq, input_dim); `normalise()` applies
`scaler.json` the way the trainer does ((x - mean) / std, std of 0 read as 1).
"""

from __future__ import annotations

import json
import os
from typing import Dict, List

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

OUTPUT_NAMES = ["7day_trend", "7day_direction", "30day_trend", "30day_direction", "attention_weights"]


class Encoder(nn.Module):
    def __init__(self, input_dim: int, hidden_dim: int, num_layers: int, bidirectional: bool, dropout: float):
        super().__init__()
        self.bidirectional = bidirectional
        self.lstm = nn.LSTM(
            input_dim,
            hidden_dim,
            num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
            bidirectional=bidirectional,
        )
        if bidirectional:
            self.projection = nn.Linear(2 * hidden_dim, hidden_dim)

    def forward(self, x):
        out, (h, _c) = self.lstm(x)  # out (b, s, dirs*h); h (layers*dirs, b, h)
        if self.bidirectional:
            enc = self.projection(out)
            final = torch.cat([h[-2], h[-1]], dim=-1)  # last layer: forward at t=s-1, backward at t=0
            query = self.projection(final).unsqueeze(1)
        else:
            enc = out
            query = h[-1].unsqueeze(1)
        return enc, query


class Head(nn.Module):
    def __init__(self, in_dim: int, dims: List[int], dropout: float):
        super().__init__()
        layers = []
        prev = in_dim
        for d in dims:
            layers.append(nn.Linear(prev, d))
            prev = d
        self.hidden = nn.ModuleList(layers)
        self.dropout = nn.Dropout(dropout)
        self.trend = nn.Linear(prev, 1)
        self.direction = nn.Linear(prev, 2)

    def forward(self, h):
        for lin in self.hidden:
            h = self.dropout(F.relu(lin(h)))
        return torch.tanh(self.trend(h)), self.direction(h)


class TrendModel(nn.Module):
    def __init__(
        self,
        input_dim: int = 62,
        hidden_dim: int = 128,
        num_lstm_layers: int = 2,
        num_attention_heads: int = 4,
        dropout_rate: float = 0.2,
        bidirectional: bool = True,
        head_hidden_dims: List[int] = (64, 32),
    ):
        super().__init__()
        self.encoder = Encoder(input_dim, hidden_dim, num_lstm_layers, bidirectional, dropout_rate)
        self.attention = nn.MultiheadAttention(hidden_dim, num_attention_heads, dropout=dropout_rate, batch_first=True)
        self.head_7d = Head(hidden_dim, list(head_hidden_dims), dropout_rate)
        self.head_30d = Head(hidden_dim, list(head_hidden_dims), dropout_rate)

    def forward(self, x) -> Dict[str, torch.Tensor]:
        enc, query = self.encoder(x)
        ctx, w = self.attention(query, enc, enc, need_weights=True, average_attn_weights=True)
        ctx = ctx.squeeze(1)
        t7, d7 = self.head_7d(ctx)
        t30, d30 = self.head_30d(ctx)
        return {
            "7day_trend": t7,
            "7day_direction": d7,
            "30day_trend": t30,
            "30day_direction": d30,
            "attention_weights": w.squeeze(1),
        }


MODEL_KEYS = ["input_dim", "hidden_dim", "num_lstm_layers", "num_attention_heads", "dropout_rate", "bidirectional", "head_hidden_dims"]


def model_from_config(model_cfg: dict) -> TrendModel:
    return TrendModel(**{k: model_cfg[k] for k in MODEL_KEYS})


def load_checkpoint(ckpt_dir: str):
    """Returns (model in eval mode, scaler dict, config dict); strict=True load."""
    from safetensors.torch import load_file

    with open(os.path.join(ckpt_dir, "config.json")) as f:
        cfg = json.load(f)
    with open(os.path.join(ckpt_dir, "scaler.json")) as f:
        scaler = json.load(f)
    model = model_from_config(cfg["model"])
    state = load_file(os.path.join(ckpt_dir, "model.safetensors"))
    model.load_state_dict(state, strict=True)
    model.eval()
    return model, scaler, cfg


def normalise(x: np.ndarray, scaler: dict) -> np.ndarray:
    mean = np.asarray(scaler["mean"], dtype=np.float64)
    std = np.asarray(scaler["std"], dtype=np.float64)
    std = np.where(std == 0.0, 1.0, std)
    return ((x.astype(np.float64) - mean) / std).astype(np.float32)


def run(model: TrendModel, scaler: dict, raw: np.ndarray) -> Dict[str, np.ndarray]:
    with torch.no_grad():
        out = model(torch.from_numpy(normalise(raw, scaler)))
    return {k: v.numpy() for k, v in out.items()}
