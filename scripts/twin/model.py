"""A PyTorch twin of the project's arithmetic model, for fast recipe search (never part of the product).

Same Llama semantics as the engine (src/model/*, and Hugging Face's modeling_llama.py): RMSNorm, RoPE with
rotate-half, grouped-query attention, SwiGLU, tied embeddings; same initialisation (normal 0.02, residual
projections 0.02 / sqrt(2 L), norms 1); same AdamW (decay on matrices only), warmup + cosine schedule and
gradient clipping as src/train/. Weights are saved as safetensors with the engine's Hugging Face names, so
`npm run star -- eval --model DIR` scores them.
"""

import json
import math
import os
import struct

os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')  # one core per experiment: two run side by side on two cores
import torch  # noqa: E402
import torch.nn.functional as F

from tokenizer import BOS, EOS, PAD  # noqa: E402

PRESETS = {
    'micro': dict(dModel=16, nLayers=2, nHeads=2, nKvHeads=1, dFF=40, maxSeq=128),
    'arithmetic': dict(dModel=128, nLayers=4, nHeads=4, nKvHeads=2, dFF=384, maxSeq=256),
    'arithmetic-tiny': dict(dModel=64, nLayers=2, nHeads=4, nKvHeads=2, dFF=128, maxSeq=160),
    'arithmetic-small': dict(dModel=64, nLayers=3, nHeads=4, nKvHeads=2, dFF=192, maxSeq=256),
}


def config(preset=None, **over):
    cfg = dict(vocab=32, dModel=128, nLayers=4, nHeads=4, nKvHeads=2, dFF=384, maxSeq=256, ropeTheta=10000.0,
               normEps=1e-5)
    if preset:
        cfg.update(PRESETS[preset])
    cfg.update(over)
    return cfg


class Twin(torch.nn.Module):
    def __init__(self, cfg, seed=0):
        super().__init__()
        self.cfg = cfg
        C, L, H, Hkv, Fd, V = cfg['dModel'], cfg['nLayers'], cfg['nHeads'], cfg['nKvHeads'], cfg['dFF'], cfg['vocab']
        D = C // H
        self.D = D
        g = torch.Generator().manual_seed(seed)
        std, resid = 0.02, 0.02 / math.sqrt(2 * L)

        def mat(r, c, s=std):
            return torch.nn.Parameter(torch.randn(r, c, generator=g) * s)

        self.embed = mat(V, C)
        self.layers = torch.nn.ModuleList()
        for _ in range(L):
            m = torch.nn.Module()
            m.ln1 = torch.nn.Parameter(torch.ones(C))
            m.q = mat(H * D, C)
            m.k = mat(Hkv * D, C)
            m.v = mat(Hkv * D, C)
            m.o = mat(C, H * D, resid)
            m.ln2 = torch.nn.Parameter(torch.ones(C))
            m.gate = mat(Fd, C)
            m.up = mat(Fd, C)
            m.down = mat(C, Fd, resid)
            self.layers.append(m)
        self.norm = torch.nn.Parameter(torch.ones(C))
        inv = 1.0 / (cfg['ropeTheta'] ** (torch.arange(0, D, 2, dtype=torch.float32) / D))
        pos = torch.arange(cfg['maxSeq'], dtype=torch.float32)
        fr = torch.outer(pos, inv)
        emb = torch.cat([fr, fr], dim=-1)
        self.register_buffer('cos', emb.cos(), persistent=False)
        self.register_buffer('sin', emb.sin(), persistent=False)

    # ---- names as the engine and Hugging Face spell them ----
    def named_tensors(self):
        out = {'model.embed_tokens.weight': self.embed}
        for i, m in enumerate(self.layers):
            p = f'model.layers.{i}.'
            out.update({
                p + 'input_layernorm.weight': m.ln1, p + 'self_attn.q_proj.weight': m.q,
                p + 'self_attn.k_proj.weight': m.k, p + 'self_attn.v_proj.weight': m.v,
                p + 'self_attn.o_proj.weight': m.o, p + 'post_attention_layernorm.weight': m.ln2,
                p + 'mlp.gate_proj.weight': m.gate, p + 'mlp.up_proj.weight': m.up, p + 'mlp.down_proj.weight': m.down,
            })
        out['model.norm.weight'] = self.norm
        return out

    def rms(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.cfg['normEps']) * w

    def rope(self, x, pos):
        # x [B, h, T, D]; pos [T] or [B, T]
        cos, sin = self.cos[pos], self.sin[pos]
        if cos.dim() == 2:
            cos, sin = cos[None, None], sin[None, None]
        else:
            cos, sin = cos[:, None], sin[:, None]
        h = x.shape[-1] // 2
        rot = torch.cat([-x[..., h:], x[..., :h]], dim=-1)
        return x * cos + rot * sin

    def forward(self, ids, pos0=0, cache=None, key_mask=None):
        """ids [B, T]. With `cache` (a list of (k, v) per layer, or [] to start one) the new keys/values are
        appended. key_mask [B, S_total] (True = attend) masks left padding."""
        cfg = self.cfg
        B, T = ids.shape
        H, Hkv, D = cfg['nHeads'], cfg['nKvHeads'], self.D
        x = self.embed[ids]
        pos = torch.arange(pos0, pos0 + T)
        for li, m in enumerate(self.layers):
            h = self.rms(x, m.ln1)
            q = (h @ m.q.T).view(B, T, H, D).transpose(1, 2)
            k = (h @ m.k.T).view(B, T, Hkv, D).transpose(1, 2)
            v = (h @ m.v.T).view(B, T, Hkv, D).transpose(1, 2)
            q, k = self.rope(q, pos), self.rope(k, pos)
            if cache is not None:
                if len(cache) > li:
                    pk, pv = cache[li]
                    k = torch.cat([pk, k], dim=2)
                    v = torch.cat([pv, v], dim=2)
                    cache[li] = (k, v)
                else:
                    cache.append((k, v))
            S = k.shape[2]
            rep = H // Hkv
            k2 = k.repeat_interleave(rep, dim=1)
            v2 = v.repeat_interleave(rep, dim=1)
            att = (q @ k2.transpose(-1, -2)) / math.sqrt(D)
            # causal: query t (absolute S - T + t) sees keys <= it
            qi = torch.arange(S - T, S)[:, None]
            ki = torch.arange(S)[None, :]
            mask = ki <= qi
            if key_mask is not None:
                mask = mask[None, None] & key_mask[:, None, None, :S]
            att = att.masked_fill(~mask, float('-inf'))
            y = F.softmax(att, dim=-1) @ v2
            x = x + y.transpose(1, 2).reshape(B, T, H * D) @ m.o.T
            h = self.rms(x, m.ln2)
            x = x + (F.silu(h @ m.gate.T) * (h @ m.up.T)) @ m.down.T
        x = self.rms(x, self.norm)
        return x @ self.embed.T


def param_count(model):
    return sum(p.numel() for p in model.parameters())


def make_optimizer(model, lr, wd=0.1, betas=(0.9, 0.95), eps=1e-8):
    decay = [p for p in model.parameters() if p.dim() == 2]
    other = [p for p in model.parameters() if p.dim() != 2]
    return torch.optim.AdamW([{'params': decay, 'weight_decay': wd}, {'params': other, 'weight_decay': 0.0}],
                             lr=lr, betas=betas, eps=eps)


def lr_at(step, lr, warmup, total, min_ratio=0.1):
    """1-based step; as src/train/schedule.ts (cosine)."""
    if step <= warmup:
        return lr * step / warmup
    prog = min(1.0, (step - warmup) / max(1, total - warmup))
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * prog)))


# ---- safetensors (f32), by hand ----

def save_safetensors(model, path):
    tensors = {k: v.detach().float().contiguous() for k, v in model.named_tensors().items()}
    header, off, blobs = {}, 0, []
    for name, t in tensors.items():
        b = t.numpy().tobytes()
        header[name] = {'dtype': 'F32', 'shape': list(t.shape), 'data_offsets': [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    header['__metadata__'] = {'format': 'pt'}
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_safetensors(model, path):
    with open(path, 'rb') as f:
        data = f.read()
    (n,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8:8 + n])
    named = model.named_tensors()
    with torch.no_grad():
        for name, p in named.items():
            info = header[name]
            b, e = info['data_offsets']
            t = torch.frombuffer(bytearray(data[8 + n + b:8 + n + e]), dtype=torch.float32).reshape(info['shape'])
            p.copy_(t)


def hf_config(cfg):
    """config.json as the engine's model folders write it (a LlamaForCausalLM config)."""
    return {
        'architectures': ['LlamaForCausalLM'], 'model_type': 'llama', 'vocab_size': cfg['vocab'],
        'hidden_size': cfg['dModel'], 'num_hidden_layers': cfg['nLayers'], 'num_attention_heads': cfg['nHeads'],
        'num_key_value_heads': cfg['nKvHeads'], 'intermediate_size': cfg['dFF'],
        'max_position_embeddings': cfg['maxSeq'], 'rope_theta': cfg['ropeTheta'], 'rms_norm_eps': cfg['normEps'],
        'tie_word_embeddings': True, 'hidden_act': 'silu', 'attention_bias': False, 'torch_dtype': 'float32',
        'bos_token_id': BOS, 'eos_token_id': EOS, 'pad_token_id': PAD,
    }
