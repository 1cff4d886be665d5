#!/usr/bin/python3
"""Expected logits for the tiny checkpoints of scripts/make_fixture.py, from an independent implementation.

    /usr/bin/python3 scripts/reference_logits.py    # needs PyTorch (apt-get install -y python3-torch)

Writes tests/fixtures/hub/reference.json (token ids of two texts, every position's logits of the first
text and the top 10 at the last position of the second, per model) and tests/fixtures/hub/lora_grad.json.
CI has no PyTorch: the tests read the committed JSON.

Everything here is written from Hugging Face's Llama/Qwen2 semantics (transformers' modeling_llama.py), not
from our TypeScript: safetensors parsed by hand, byte-level BPE by hand, and the model in float64 torch:
  RMSNorm      x * rsqrt(mean(x^2) + eps) * weight
  RoPE         inv_freq = theta^(-2i/D); cos/sin of cat(freqs, freqs); x*cos + rotate_half(x)*sin,
               rotate_half(x) = cat(-x[D/2:], x[:D/2])  (pairs i and i + D/2, not adjacent elements)
  GQA          repeat_kv: query head h reads kv head h // (H / Hkv)
  attention    causal softmax(q k^T / sqrt(D)) v
  MLP          down(silu(gate(x)) * up(x))
  head         lm_head, or embed_tokens when tie_word_embeddings
The LoRA gradient is for a rank-2 adapter on every layer's q_proj of tiny-llama-f32, PEFT's convention:
q = x Wq^T + (alpha / r) * (x A^T) B^T with fixed A [r, C] and B [H*D, r]; L = sum(logits * R) for a fixed
R [T, V]; dL/dA and dL/dB per layer.
"""

import json
import os
import random
import re
import struct

import torch

torch.set_default_dtype(torch.float64)
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'fixtures', 'hub')
MODELS = ['tiny-llama-f32', 'tiny-llama-bf16', 'tiny-qwen2-sharded']
TEXTS = ['Where is the cat?', 'Q: What do people use to stay dry in the rain?\nA: an umbrella']


# ---- safetensors, by hand ----

def read_safetensors(path):
    with open(path, 'rb') as f:
        data = f.read()
    (n,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        b, e = info['data_offsets']
        raw = data[8 + n + b:8 + n + e]
        if info['dtype'] == 'F32':
            vals = struct.unpack(f'<{len(raw) // 4}f', raw)
        elif info['dtype'] == 'BF16':
            # bfloat16 is the top half of a float32.
            vals = [struct.unpack('<f', struct.pack('<I', h << 16))[0] for h in struct.unpack(f'<{len(raw) // 2}H', raw)]
        else:
            raise ValueError(info['dtype'])
        out[name] = torch.tensor(vals).reshape(info['shape'])
    return out


def read_weights(folder):
    index = os.path.join(folder, 'model.safetensors.index.json')
    if not os.path.exists(index):
        return read_safetensors(os.path.join(folder, 'model.safetensors'))
    with open(index) as f:
        shards = sorted(set(json.load(f)['weight_map'].values()))
    w = {}
    for s in shards:
        w.update(read_safetensors(os.path.join(folder, s)))
    return w


# ---- byte-level BPE, by hand (ASCII text: GPT-2's split pattern in ASCII classes) ----

def bytes_to_unicode():
    bs = list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) + list(range(ord('®'), ord('ÿ') + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


SPLIT = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+""")


def bpe_encode(text, tok):
    vocab, ranks = tok['model']['vocab'], {m: i for i, m in enumerate(tok['model']['merges'])}
    byte_map = bytes_to_unicode()
    ids = []
    for piece in SPLIT.findall(text):
        word = [byte_map[b] for b in piece.encode('utf-8')]
        while len(word) > 1:
            pairs = [(ranks.get(f'{word[i]} {word[i + 1]}', 1 << 30), i) for i in range(len(word) - 1)]
            rank, i = min(pairs)
            if rank == 1 << 30:
                break
            word = word[:i] + [word[i] + word[i + 1]] + word[i + 2:]
        ids += [vocab[w] for w in word]
    return ids


# ---- the model ----

def rms_norm(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    d = x.shape[-1] // 2
    return torch.cat([-x[..., d:], x[..., :d]], dim=-1)


def forward(cfg, W, ids, lora=None):
    """Logits [T, V]. lora: {layer: (A, B, scale)} adds (scale * x A^T) B^T to q_proj."""
    C, H, KV = cfg['hidden_size'], cfg['num_attention_heads'], cfg['num_key_value_heads']
    D, T, eps = C // H, len(ids), cfg['rms_norm_eps']
    inv_freq = 1.0 / (cfg['rope_theta'] ** (torch.arange(0, D, 2, dtype=torch.float64) / D))
    freqs = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq)
    emb = torch.cat([freqs, freqs], dim=-1)
    cos, sin = emb.cos(), emb.sin()
    mask = torch.full((T, T), float('-inf')).triu(1)
    h = W['model.embed_tokens.weight'][torch.tensor(ids)]
    for l in range(cfg['num_hidden_layers']):
        p = f'model.layers.{l}.'

        def lin(x, name):
            y = x @ W[p + name + '.weight'].T
            return y + W[p + name + '.bias'] if p + name + '.bias' in W else y

        x = rms_norm(h, W[p + 'input_layernorm.weight'], eps)
        q = lin(x, 'self_attn.q_proj')
        if lora is not None:
            A, B, scale = lora[l]
            q = q + scale * (x @ A.T) @ B.T
        k, v = lin(x, 'self_attn.k_proj'), lin(x, 'self_attn.v_proj')
        q = q.view(T, H, D).transpose(0, 1)
        k = k.view(T, KV, D).transpose(0, 1)
        v = v.view(T, KV, D).transpose(0, 1)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // KV, dim=0)  # repeat_kv
        v = v.repeat_interleave(H // KV, dim=0)
        att = torch.softmax(q @ k.transpose(1, 2) / D ** 0.5 + mask, dim=-1) @ v
        h = h + att.transpose(0, 1).reshape(T, H * D) @ W[p + 'self_attn.o_proj.weight'].T
        x = rms_norm(h, W[p + 'post_attention_layernorm.weight'], eps)
        gate, up = lin(x, 'mlp.gate_proj'), lin(x, 'mlp.up_proj')
        h = h + (torch.nn.functional.silu(gate) * up) @ W[p + 'mlp.down_proj.weight'].T
    h = rms_norm(h, W['model.norm.weight'], eps)
    head = W['model.embed_tokens.weight'] if cfg['tie_word_embeddings'] else W['lm_head.weight']
    return h @ head.T


def r8(xs):
    return [float(f'{x:.9g}') for x in xs]


def top10(row):
    vals, idx = torch.sort(row, descending=True, stable=True)
    return [{'id': int(i), 'logit': float(f'{float(v):.9g}')} for v, i in zip(vals[:10], idx[:10])]


def main():
    with open(os.path.join(ROOT, MODELS[0], 'tokenizer.json')) as f:
        tok = json.load(f)
    tokens = [bpe_encode(t, tok) for t in TEXTS]
    ref = {'script': 'scripts/reference_logits.py', 'texts': TEXTS, 'tokens': tokens, 'models': {}}
    for name in MODELS:
        folder = os.path.join(ROOT, name)
        with open(os.path.join(folder, 'config.json')) as f:
            cfg = json.load(f)
        W = read_weights(folder)
        logits = forward(cfg, W, tokens[0])
        ref['models'][name] = {
            'vocab': cfg['vocab_size'],
            'logits': [r8(row.tolist()) for row in logits],
            'top': top10(forward(cfg, W, tokens[1])[-1]),
        }
        print(f'{name}: logits {tuple(logits.shape)}, max |logit| {logits.abs().max().item():.3f}')
    with open(os.path.join(ROOT, 'reference.json'), 'w') as f:
        json.dump(ref, f, separators=(',', ':'))

    # One LoRA gradient, for the LoRA work to check against later.
    name = 'tiny-llama-f32'
    folder = os.path.join(ROOT, name)
    with open(os.path.join(folder, 'config.json')) as f:
        cfg = json.load(f)
    W = read_weights(folder)
    r, alpha = 2, 4.0
    C, HD, V, T = cfg['hidden_size'], cfg['hidden_size'], cfg['vocab_size'], len(tokens[0])
    g = random.Random(7)
    lora = {}
    for l in range(cfg['num_hidden_layers']):
        A = torch.tensor([g.gauss(0, 0.2) for _ in range(r * C)]).reshape(r, C).requires_grad_()
        B = torch.tensor([g.gauss(0, 0.2) for _ in range(HD * r)]).reshape(HD, r).requires_grad_()
        lora[l] = (A, B, alpha / r)
    R = torch.tensor([g.gauss(0, 1) for _ in range(T * V)]).reshape(T, V)
    loss = (forward(cfg, W, tokens[0], lora) * R).sum()
    loss.backward()
    out = {
        'script': 'scripts/reference_logits.py', 'model': name, 'tokens': tokens[0], 'rank': r, 'alpha': alpha,
        'scale': alpha / r, 'target': 'self_attn.q_proj', 'loss': float(loss),
        'R': {'shape': [T, V], 'data': r8(R.flatten().tolist())},
        'layers': [
            {'layer': l, 'A': {'shape': [r, C], 'data': r8(A.detach().flatten().tolist())},
             'B': {'shape': [HD, r], 'data': r8(B.detach().flatten().tolist())},
             'dA': r8(A.grad.flatten().tolist()), 'dB': r8(B.grad.flatten().tolist())}
            for l, (A, B, _) in lora.items()
        ],
    }
    with open(os.path.join(ROOT, 'lora_grad.json'), 'w') as f:
        json.dump(out, f, separators=(',', ':'))
    print(f'lora: loss {float(loss):.6f}, |dB| max {max(float(B.grad.abs().max()) for _, B, _ in lora.values()):.4f}')


if __name__ == '__main__':
    main()
