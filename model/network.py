"""The character LSTM: embedding, multi-layer LSTM, one linear head.

    config = ModelConfig(vocab_size=len(vocab), hidden_size=256, num_layers=2)
    model = CharLSTM(config)
    logits, state = model(ids)            # ids [batch, time] -> logits [batch, time, vocab]
    logits, state = model(next_ids, state)  # carry (h, c) to continue the same texts

In eval mode, carrying the state gives exactly the logits of re-running the whole text from a zero
state (tests/model/test_generate.py proves it); in train mode dropout makes every pass differ.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

CELL_PATH_MAX_BATCH = 64  # measured crossover of the two step paths on 1 CPU thread (see CharLSTM.step)
State = tuple[Tensor, Tensor]  # (h, c), each [num_layers, batch, hidden_size]


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of a ``CharLSTM``; saved in every checkpoint."""

    vocab_size: int
    embed_dim: int = 64
    hidden_size: int = 256
    num_layers: int = 2
    dropout: float = 0.2
    tie_weights: bool = False

    def __post_init__(self) -> None:
        for name in ("vocab_size", "embed_dim", "hidden_size", "num_layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.tie_weights and self.embed_dim != self.hidden_size:
            raise ValueError("tie_weights needs embed_dim == hidden_size")

    def to_dict(self) -> dict:
        """Plain values, for a checkpoint."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        """Rebuild a config saved with ``to_dict``; unknown keys are an error."""
        return cls(**values)


class _CellWeights(NamedTuple):
    key: tuple  # (data_ptr, version) of every parameter it was built from
    table: Tensor  # [vocab, 4 * hidden]: embedding @ W_ih0^T + layer 0's biases
    w_hh0: Tensor  # [hidden, 4 * hidden]: layer 0's recurrent weights, transposed (a view)
    stacked: list[Tensor]  # per layer from 1: [2 * hidden, 4 * hidden], [W_ih | W_hh] transposed
    bias: list[Tensor]  # per layer from 1: [4 * hidden], both biases summed


FAST_TANH_MIN_ELEMENTS = 4096  # measured crossover of the two tanh forms below on the CPU


def _fast_tanh(x: Tensor) -> Tensor:
    """tanh(x) as 2 sigmoid(2x) - 1 (within 2e-7 of it), for inference only (the ops work in place).

    On the CPU torch's tanh costs several times its sigmoid, so from about 4096 elements three cheap ops
    beat it; below that the extra calls cost more (docs/design-notes.md).
    """
    if x.numel() < FAST_TANH_MIN_ELEMENTS or x.device.type != "cpu":
        return torch.tanh(x)
    return torch.sigmoid(x * 2).mul_(2).sub_(1)


def _lstm_cell(gates: Tensor, c: Tensor, tanh=torch.tanh) -> State:
    """``gates`` [batch, 4 * hidden] in PyTorch's order (input, forget, cell, output) -> (h, c)."""
    in_gate, forget_gate, cell_gate, out_gate = gates.chunk(4, dim=1)
    c_next = torch.sigmoid(forget_gate) * c + torch.sigmoid(in_gate) * tanh(cell_gate)
    return torch.sigmoid(out_gate) * tanh(c_next), c_next


class CharLSTM(nn.Module):
    """Embedding -> dropout -> LSTM (dropout between layers) -> dropout -> linear head."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed_dim)
        self.lstm = nn.LSTM(
            config.embed_dim,
            config.hidden_size,
            num_layers=config.num_layers,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden_size, config.vocab_size)
        if config.tie_weights:
            self.head.weight = self.embed.weight
        self.step_path = "auto"  # see step()
        self._cell_cache: _CellWeights | None = None  # see _cell_weights()

    def init_state(self, batch: int, device: torch.device | str | None = None) -> State:
        """A zero ``(h, c)`` for ``batch`` rows, on the model's device unless told otherwise."""
        device = device if device is not None else self.head.weight.device
        shape = (self.config.num_layers, batch, self.config.hidden_size)
        dtype = self.head.weight.dtype
        return torch.zeros(shape, device=device, dtype=dtype), torch.zeros(shape, device=device, dtype=dtype)

    def forward(self, ids: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """``ids`` [batch, time] -> logits [batch, time, vocab] and the state after the last step."""
        if state is None:
            state = self.init_state(ids.shape[0], ids.device)
        x = self.drop(self.embed(ids))  # [batch, time, embed_dim]
        out, state = self.lstm(x, state)  # out: [batch, time, hidden]
        return self.head(self.drop(out)), state

    def step(self, ids: Tensor, state: State, path: str | None = None) -> tuple[Tensor, State]:
        """One character per row: ``ids`` [batch] -> logits [batch, vocab] and the next state.

        Two paths give the same numbers (tests/model/test_network.py): ``fused`` calls ``nn.LSTM``;
        ``cell`` applies the same weights as plain LSTM-cell arithmetic, one matrix product per layer
        (weights rearranged once, see ``_cell_weights``), much cheaper for small CPU batches. ``auto``
        takes ``cell`` on the CPU in eval mode below ``CELL_PATH_MAX_BATCH`` rows and ``fused``
        otherwise (training, GPUs). The measurements behind it: docs/design-notes.md.
        """
        path = path or self.step_path
        if path == "auto":
            on_cpu = ids.device.type == "cpu" and not self.training
            path = "cell" if on_cpu and ids.shape[0] < CELL_PATH_MAX_BATCH else "fused"
        if path == "fused":
            logits, state = self(ids[:, None], state)
            return logits[:, 0], state
        if path != "cell":
            raise ValueError(f"unknown step path {path!r}; use auto, fused or cell")
        return self._cell_step(ids, state)

    def _cell_step(self, ids: Tensor, state: State) -> tuple[Tensor, State]:
        if self.training or torch.is_grad_enabled():
            return self._plain_cell_step(ids, state)
        weights = self._cell_weights()
        h, c = state  # each [num_layers, batch, hidden]
        # Layer 0: the input's product is a row of the precomputed table, so one matmul, for h.
        gates = weights.table.index_select(0, ids).addmm_(h[0], weights.w_hh0)  # [batch, 4 * hidden]
        x, c_next = _lstm_cell(gates, c[0], _fast_tanh)
        new_h, new_c = [x], [c_next]
        for layer in range(1, self.config.num_layers):  # one matmul of [x, h] instead of two
            xh = torch.cat((x, h[layer]), dim=1)  # [batch, 2 * hidden]
            gates = torch.addmm(weights.bias[layer - 1], xh, weights.stacked[layer - 1])
            x, c_next = _lstm_cell(gates, c[layer], _fast_tanh)
            new_h.append(x)
            new_c.append(c_next)
        return self.head(x), (torch.stack(new_h), torch.stack(new_c))

    def _cell_weights(self) -> _CellWeights:
        """The cell path's weights, rearranged for inference; rebuilt whenever a parameter changes.

        Layer 0's input product depends only on the character, so ``embedding @ W_ih0^T + biases`` is
        a [vocab, 4 * hidden] table; the other layers get ``[W_ih | W_hh]`` side by side, so that one
        matmul of ``[x, h]`` replaces two.
        A parameter's storage and version counter change on every in-place update (an optimiser
        step, ``load_state_dict``, ``.to()``), so comparing them keeps the cache honest.
        """
        params = [self.embed.weight, *self.lstm.parameters()]
        key = tuple((p.data_ptr(), p._version) for p in params)
        cache = self._cell_cache
        if cache is not None and cache.key == key:
            return cache
        lstm = self.lstm
        with torch.inference_mode(False), torch.no_grad():  # plain tensors, usable in any mode later
            bias = [
                getattr(lstm, f"bias_ih_l{n}") + getattr(lstm, f"bias_hh_l{n}")
                for n in range(self.config.num_layers)
            ]
            table = torch.addmm(bias[0], self.embed.weight, lstm.weight_ih_l0.t())  # [vocab, 4 * hidden]
            stacked = [
                torch.cat((getattr(lstm, f"weight_ih_l{n}"), getattr(lstm, f"weight_hh_l{n}")), dim=1).t()
                for n in range(1, self.config.num_layers)
            ]  # each [2 * hidden, 4 * hidden]
            cache = _CellWeights(key, table, lstm.weight_hh_l0.detach().t(), stacked, bias[1:])
        self._cell_cache = cache
        return cache

    def _plain_cell_step(self, ids: Tensor, state: State) -> tuple[Tensor, State]:
        """The cell path straight from the parameters (training, or gradients wanted)."""
        h, c = state  # each [num_layers, batch, hidden]
        x = self.drop(self.embed(ids))  # [batch, embed_dim]
        new_h, new_c = [], []
        for layer in range(self.config.num_layers):
            w_ih = getattr(self.lstm, f"weight_ih_l{layer}")  # [4 * hidden, input]
            w_hh = getattr(self.lstm, f"weight_hh_l{layer}")  # [4 * hidden, hidden]
            bias = getattr(self.lstm, f"bias_ih_l{layer}") + getattr(self.lstm, f"bias_hh_l{layer}")
            gates = torch.addmm(bias, x, w_ih.t()).addmm_(h[layer], w_hh.t())  # [batch, 4 * hidden]
            x, c_next = _lstm_cell(gates, c[layer])
            new_h.append(x)
            new_c.append(c_next)
        return self.head(self.drop(x)), (torch.stack(new_h), torch.stack(new_c))

    def prime(self, sequences: list[list[int]]) -> tuple[Tensor, State]:
        """Run rows of different lengths in one pass from a zero state.

        Returns the logits after each row's last id, [batch, vocab], and each row's state after its
        own last id (padding never touches it: the rows are packed).
        """
        if not sequences or any(len(s) == 0 for s in sequences):
            raise ValueError("prime needs at least one row and no empty row")
        device = self.head.weight.device
        lengths = torch.tensor([len(s) for s in sequences])
        padded = torch.zeros(len(sequences), int(lengths.max()), dtype=torch.long)
        for row, seq in enumerate(sequences):
            padded[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        x = self.drop(self.embed(padded.to(device)))
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, state = self.lstm(packed, self.init_state(len(sequences), device))
        out, _ = pad_packed_sequence(out, batch_first=True)  # [batch, max_len, hidden]
        last = out[torch.arange(len(sequences), device=device), (lengths - 1).to(device)]
        return self.head(self.drop(last)), state

    def grow_vocab(self, new_size: int) -> None:
        """Add embedding and output rows for new characters, keeping every old row unchanged."""
        old = self.config.vocab_size
        if new_size < old:
            raise ValueError(f"cannot shrink the vocabulary from {old} to {new_size}")
        if new_size == old:
            return
        embed = nn.Embedding(new_size, self.config.embed_dim).to(self.embed.weight)
        head = nn.Linear(self.config.hidden_size, new_size).to(self.head.weight)
        with torch.no_grad():
            embed.weight[:old] = self.embed.weight
            head.weight[:old] = self.head.weight
            head.bias[:old] = self.head.bias
            # New characters start unlikely, so the old text's distribution barely moves.
            head.bias[old:] = self.head.bias.min() - 2.0
        self.embed, self.head = embed, head
        if self.config.tie_weights:
            self.head.weight = self.embed.weight
        self.config = ModelConfig(**{**self.config.to_dict(), "vocab_size": new_size})

    def num_parameters(self) -> int:
        """Count of distinct trainable parameters."""
        return sum(p.numel() for p in self.parameters())
