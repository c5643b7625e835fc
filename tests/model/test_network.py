import pytest
import torch

from model.network import FAST_TANH_MIN_ELEMENTS, CharLSTM, ModelConfig, _fast_tanh


def test_forward_shapes_and_init_state():
    model = CharLSTM(ModelConfig(vocab_size=20, embed_dim=8, hidden_size=12, num_layers=3))
    ids = torch.randint(0, 20, (4, 7))
    logits, (h, c) = model(ids)
    assert logits.shape == (4, 7, 20)
    assert h.shape == c.shape == (3, 4, 12)
    h0, c0 = model.init_state(5)
    assert h0.shape == (3, 5, 12) and not h0.any() and not c0.any()


def test_tied_weights_share_one_matrix():
    model = CharLSTM(ModelConfig(vocab_size=20, embed_dim=16, hidden_size=16, tie_weights=True))
    assert model.head.weight is model.embed.weight
    with pytest.raises(ValueError, match="tie_weights"):
        ModelConfig(vocab_size=20, embed_dim=8, hidden_size=16, tie_weights=True)


@pytest.mark.parametrize("field,value", [("vocab_size", 0), ("hidden_size", -1), ("dropout", 1.0)])
def test_config_is_validated(field, value):
    with pytest.raises(ValueError, match=field):
        ModelConfig(**{"vocab_size": 10, field: value})


def test_prime_matches_separate_forward_passes_for_rows_of_different_length():
    torch.manual_seed(1)
    model = CharLSTM(ModelConfig(vocab_size=15, embed_dim=8, hidden_size=10, dropout=0.5)).eval()
    rows = [[1, 5, 6, 7, 8], [1, 9], [1, 4, 4, 4]]
    logits, (h, c) = model.prime(rows)
    for i, row in enumerate(rows):
        one_logits, (one_h, one_c) = model(torch.tensor([row]))
        torch.testing.assert_close(logits[i], one_logits[0, -1], rtol=0, atol=1e-5)
        torch.testing.assert_close(h[:, i], one_h[:, 0], rtol=0, atol=1e-5)
        torch.testing.assert_close(c[:, i], one_c[:, 0], rtol=0, atol=1e-5)


def test_grow_vocab_keeps_old_logits_for_old_text():
    torch.manual_seed(2)
    model = CharLSTM(ModelConfig(vocab_size=12, embed_dim=8, hidden_size=10)).eval()
    ids = torch.randint(0, 12, (2, 9))
    before, _ = model(ids)
    model.grow_vocab(15)
    after, _ = model(ids)
    assert model.config.vocab_size == 15 and after.shape[-1] == 15
    torch.testing.assert_close(after[..., :12], before, rtol=0, atol=0)
    with pytest.raises(ValueError, match="shrink"):
        model.grow_vocab(10)


@pytest.mark.parametrize("path", ["fused", "cell", "auto"])
@pytest.mark.parametrize("batch", [1, 5])
def test_step_paths_match_a_full_forward_pass(path, batch):
    torch.manual_seed(3)
    model = CharLSTM(
        ModelConfig(vocab_size=15, embed_dim=8, hidden_size=10, num_layers=3, dropout=0.4)
    ).eval()
    ids = torch.randint(0, 15, (batch, 6))
    with torch.no_grad():
        full, full_state = model(ids)
        state = model.init_state(batch)
        for t in range(ids.shape[1]):
            logits, state = model.step(ids[:, t], state, path=path)
            torch.testing.assert_close(logits, full[:, t], rtol=0, atol=1e-5)
    torch.testing.assert_close(state[0], full_state[0], rtol=0, atol=1e-5)
    torch.testing.assert_close(state[1], full_state[1], rtol=0, atol=1e-5)


def test_unknown_step_path_is_refused():
    model = CharLSTM(ModelConfig(vocab_size=15, embed_dim=8, hidden_size=10))
    with pytest.raises(ValueError, match="step path"):
        model.step(torch.tensor([1]), model.init_state(1), path="warp")


def test_cell_path_follows_weights_changed_in_place():
    """The cell path keeps rearranged weights between steps; an in-place update must reach them."""
    torch.manual_seed(4)
    model = CharLSTM(ModelConfig(vocab_size=15, embed_dim=8, hidden_size=10, num_layers=2)).eval()
    ids = torch.randint(0, 15, (3,))
    with torch.no_grad():
        state = model.init_state(3)
        before, _ = model.step(ids, state, path="cell")
        for param in (model.embed.weight, model.lstm.weight_hh_l0, model.lstm.bias_ih_l1):
            param.mul_(0.5).add_(0.1)  # as an optimiser step or load_state_dict would, in place
        after, _ = model.step(ids, state, path="cell")
        fused, _ = model.step(ids, state, path="fused")
    torch.testing.assert_close(after, fused, rtol=0, atol=1e-5)
    assert not torch.allclose(after, before)


def test_cell_path_with_gradients_matches_and_lets_them_flow():
    torch.manual_seed(5)
    model = CharLSTM(ModelConfig(vocab_size=15, embed_dim=8, hidden_size=10, num_layers=2)).eval()
    ids = torch.randint(0, 15, (2,))
    logits, _ = model.step(ids, model.init_state(2), path="cell")
    with torch.no_grad():
        fused, _ = model.step(ids, model.init_state(2), path="fused")
    torch.testing.assert_close(logits, fused, rtol=0, atol=1e-5)
    logits.sum().backward()
    assert model.lstm.weight_hh_l1.grad is not None and model.embed.weight.grad is not None


def test_fast_tanh_matches_tanh():
    x = torch.linspace(-12, 12, 100_001)
    assert x.numel() >= FAST_TANH_MIN_ELEMENTS
    torch.testing.assert_close(_fast_tanh(x.clone()), torch.tanh(x), rtol=0, atol=3e-7)


def test_cell_path_matches_a_full_forward_pass_for_a_large_batch():
    """Large enough for the cell path's cheaper tanh (batch x hidden >= FAST_TANH_MIN_ELEMENTS)."""
    torch.manual_seed(6)
    model = CharLSTM(ModelConfig(vocab_size=15, embed_dim=8, hidden_size=64, num_layers=2)).eval()
    ids = torch.randint(0, 15, (FAST_TANH_MIN_ELEMENTS // 64 + 3, 8))
    with torch.no_grad():
        full, _ = model(ids)
        state = model.init_state(ids.shape[0])
        for t in range(ids.shape[1]):
            logits, state = model.step(ids[:, t], state, path="cell")
            torch.testing.assert_close(logits, full[:, t], rtol=0, atol=1e-5)
