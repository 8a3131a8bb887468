"""The shared transformer, gpt and bert: attention, causality, padding, the two pretext losses."""

import math

import pytest
import torch

from replab.config import ConfigError
from replab.data.base import DataInfo
from replab.methods import configure
from replab.methods.bert import BERT, BERTConfig, mask_tokens, segment_pair
from replab.methods.gpt import GPT, GPTConfig
from replab.nn.transformer import Transformer

INFO = DataInfo(shape=(12,), kind="tokens", vocab_size=20, token_counts=(0,) + (1,) * 19)


def test_attention_matches_a_hand_written_softmax():
    torch.manual_seed(0)
    net = Transformer(20, 8, 16, 1, 2, causal=True).eval()
    attn = net.blocks[0].attn
    x = torch.randn(3, 8, 16)
    q, k, v = attn.qkv(x).view(3, 8, 3, 2, 8).permute(2, 0, 3, 1, 4)
    scores = q @ k.transpose(-1, -2) / math.sqrt(8)
    scores = scores.masked_fill(~torch.ones(8, 8, dtype=torch.bool).tril(), -math.inf)
    y = (scores.softmax(-1) @ v).transpose(1, 2).reshape(3, 8, 16)
    assert torch.allclose(attn(x, causal=True), attn.proj(y), atol=1e-5)


def test_gpt_is_causal_and_its_loss_starts_near_log_vocab():
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=2, n_embd=32, n_head=2), INFO).eval()
    x = torch.randint(1, 20, (4, 12))
    y = x.clone()
    y[:, 7:] = torch.randint(1, 20, (4, 5))
    assert torch.allclose(model.logits(x)[:, :7], model.logits(y)[:, :7], atol=1e-5)
    with torch.no_grad():
        loss = float(model.loss({"x": x}, 0)["loss"])
    assert abs(loss - math.log(20)) < 0.3
    total, n = model.nll(x)
    assert n == 4 * 11 and total / n == pytest.approx(loss, rel=1e-5)


def test_gpt_encode_is_the_mean_hidden_state_of_the_real_tokens():
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=1, n_embd=16, n_head=2), INFO).eval()
    x = torch.tensor([[3, 4, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0]])
    h = model.transformer(x[:, :3])  # the row alone, without its padding
    assert torch.allclose(model.encode(x), h.mean(1), atol=1e-5)


def test_gpt_learns_a_repeating_sequence_and_continues_it():
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=1, n_embd=32, n_head=2), INFO)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    base = torch.arange(1, 7).repeat(4)  # 1 2 3 4 5 6 1 2 ...
    x = torch.stack([base[i : i + 12] for i in range(6)])
    for step in range(40):
        opt.zero_grad()
        out = model.loss({"x": x}, step)
        out["loss"].backward()
        opt.step()
    assert float(out["bits_per_token"]) < 0.5  # far below log2(20) = 4.3 bits
    model.eval()
    g = torch.Generator().manual_seed(0)
    cont = model.generate(torch.tensor([[2, 3, 4]]), 6, temperature=0.5, generator=g)
    assert cont[0].tolist() == [2, 3, 4, 5, 6, 1, 2, 3, 4]


def test_gpt_config_is_checked():
    with pytest.raises(ConfigError, match="model.n_embd: 30 is not divisible by n_head 4"):
        configure("gpt", "bilingual_a", overrides={"n_embd": 30})
    with pytest.raises(ConfigError, match="gpt needs token data"):
        GPT(GPTConfig(), DataInfo(shape=(1, 8, 8)))


def brute_force_pair(row, cut, swap, cls, sep):
    real = [t for t in row if t]
    a, b = real[:cut], real[cut:]
    first, second = (b, a) if swap else (a, b)
    ids = [cls, *first, sep, *second, sep]
    types = [0] * (len(first) + 2) + [1] * (len(second) + 1)
    pad = len(row) + 3 - len(ids)
    return ids + [0] * pad, types + [0] * pad


def test_segment_pair_builds_cls_a_sep_b_sep_or_the_swap():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(1, 20, (8, 10), generator=g)
    x[2, 6:] = 0
    n = (x != 0).sum(1)
    cut = 1 + (torch.rand(8, generator=g) * (n - 1)).long()
    swap = torch.rand(8, generator=g) < 0.5
    ids, types = segment_pair(x, cut, swap, 20, 21)
    for i in range(8):
        want_ids, want_types = brute_force_pair(x[i].tolist(), int(cut[i]), bool(swap[i]), 20, 21)
        assert ids[i].tolist() == want_ids and types[i].tolist() == want_types


def test_masking_is_15_percent_then_80_10_10():
    torch.manual_seed(0)
    ids = torch.randint(1, 50, (400, 100))
    maskable = torch.ones_like(ids, dtype=torch.bool)
    maskable[:, :10] = False
    out, selected = mask_tokens(ids, maskable, 0.15, 99, 50)
    n = maskable.sum().item()
    assert not selected[:, :10].any()
    assert abs(selected.sum().item() / n - 0.15) < 0.005
    sel = selected.sum().item()
    masked = (out[selected] == 99).float().mean().item()
    kept = (out[selected] == ids[selected]).float().mean().item()
    assert abs(masked - 0.8) < 0.01
    assert abs(kept - (0.1 + 0.1 / 49)) < 0.01  # unchanged, or a random id that happens to match
    assert torch.equal(out[~selected], ids[~selected]) and sel > 0


def test_bert_loss_and_pooled_encoding_ignore_padding():
    torch.manual_seed(0)
    model = BERT(BERTConfig(n_layer=1, dim=32, n_head=2), INFO)
    x = torch.randint(1, 20, (6, 12))
    out = model.loss({"x": x}, 0)
    assert set(out) >= {"loss", "mlm_loss", "sop_loss", "sop_accuracy"}
    assert float(out["sop_loss"]) == pytest.approx(math.log(2), abs=0.2)
    out["loss"].backward()
    assert model.sop_head.weight.grad is not None
    model.eval()
    short = torch.tensor([[5, 6, 7] + [0] * 9])
    ids = torch.tensor([[20, 5, 6, 7, 21]])  # [CLS] 5 6 7 [SEP] without padding
    h = model.transformer(ids, token_types=torch.zeros_like(ids))
    assert torch.allclose(model.encode(short), model.pooler(h[:, 0]), atol=1e-5)
    assert model.encode(x).shape == (6, 32)


def test_bert_learns_to_fill_in_masked_tokens():
    """Each row repeats one token, so a masked token is any of its neighbours."""
    torch.manual_seed(0)
    model = BERT(BERTConfig(n_layer=1, dim=32, n_head=2, dropout=0.0), INFO)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    x = torch.arange(1, 20)[:, None].repeat(2, 12)
    for step in range(40):
        opt.zero_grad()
        out = model.loss({"x": x}, step)
        out["loss"].backward()
        opt.step()
    assert float(out["mlm_loss"]) < 0.5  # from log(19) = 2.9 nats
