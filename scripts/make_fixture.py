#!/usr/bin/env python3
"""Tiny random Llama-family checkpoints for tests/fixtures/hub/ (standard library only).

    python3 scripts/make_fixture.py                # writes tests/fixtures/hub/<model>/
    /usr/bin/python3 scripts/reference_logits.py   # then the expected logits, with PyTorch

Each model folder is laid out as on the Hugging Face Hub: config.json, model.safetensors (or shards plus
model.safetensors.index.json), tokenizer.json, tokenizer_config.json. The three variants cover what the
loader and the engine must get right:

  tiny-llama-f32      llama, F32, untied lm_head, GQA 4 query / 2 kv heads, rope_theta 1e5, rms_norm_eps 1e-3
  tiny-llama-bf16     llama, BF16, tied embeddings (no lm_head.weight), MQA 4 / 1, rope_theta 5e5, eps 2e-3
  tiny-qwen2-sharded  qwen2 (q/k/v biases), F32 in two shards, untied, 4 / 2, rope_theta 1e6, eps 1e-5,
                      vocab_size padded past the tokenizer (as Qwen2.5's is)

Weights are drawn from a seeded generator at a scale (std 0.25 for matrices, norm weights 1 +- 0.2) where
every convention matters: a different RoPE pairing, GQA head mapping or RMSNorm epsilon moves the logits by
far more than 1e-4. The tokenizer is a byte-level BPE (GPT-2 / SmolLM2 style) with 256 byte tokens, a few
dozen merges and three special tokens.
"""

import json
import os
import random
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'fixtures', 'hub')

# ---- The tokenizer: byte-level BPE. ----


def bytes_to_unicode():
    """GPT-2's reversible map from bytes to printable unicode characters."""
    bs = list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) + list(range(ord('®'), ord('ÿ') + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


# Merges in priority order; each joins two existing tokens ("Ġ" is the byte-level space).
MERGES = [
    'Ġ t', 'h e', 'Ġt he', 'i n', 'Ġ a', 'e r', 'o n', 'Ġ s', 'a t', 'r e', 'Ġ w', 'Ġ c', 'o u', 'e n', 'i s',
    'Ġ o', 'a n', 'Ġ b', 'Ġ i', 'o r', 'Ġ p', 'e s', 'Ġa n', 'Ġan d', 'in g', 'Ġ f', 'l l', 'Ġ m',
    'Ġ A', 'Ġ Q', 'Ġ (', 'Ġw h', 'Ġwh at', 'Ġ d', 'Ġ h', 'Ġo f', 'e d', 'Ġt o',
]
SPECIAL = ['<|endoftext|>', '<|im_start|>', '<|im_end|>']


def make_tokenizer():
    byte_map = bytes_to_unicode()
    vocab = {byte_map[b]: b for b in range(256)}
    merges = []
    for m in MERGES:
        a, b = m.split(' ')
        assert a in vocab and b in vocab, m
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
        merges.append(m)
    specials = {s: len(vocab) + i for i, s in enumerate(SPECIAL)}
    byte_level = {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': True, 'use_regex': True}
    tokenizer = {
        'version': '1.0',
        'truncation': None,
        'padding': None,
        'added_tokens': [
            {'id': i, 'content': s, 'single_word': False, 'lstrip': False, 'rstrip': False, 'normalized': False, 'special': True}
            for s, i in specials.items()
        ],
        'normalizer': None,
        'pre_tokenizer': byte_level,
        'post_processor': byte_level,
        'decoder': byte_level,
        'model': {
            'type': 'BPE', 'dropout': None, 'unk_token': None, 'continuing_subword_prefix': None,
            'end_of_word_suffix': None, 'fuse_unk': False, 'byte_fallback': False, 'ignore_merges': False,
            'vocab': vocab, 'merges': merges,
        },
    }
    # As SmolLM2-Instruct's: BOS <|im_start|>, EOS and padding <|im_end|>.
    tokenizer_config = {
        'add_prefix_space': False,
        'added_tokens_decoder': {
            str(i): {'content': s, 'lstrip': False, 'normalized': False, 'rstrip': False, 'single_word': False, 'special': True}
            for s, i in specials.items()
        },
        'bos_token': '<|im_start|>',
        'eos_token': '<|im_end|>',
        'pad_token': '<|im_end|>',
        'unk_token': '<|endoftext|>',
        'clean_up_tokenization_spaces': False,
        'model_max_length': 256,
        'tokenizer_class': 'GPT2Tokenizer',
    }
    return tokenizer, tokenizer_config, len(vocab) + len(SPECIAL), specials


# ---- Weights. ----

def bf16_bits(x):
    """float32 -> bfloat16 bits, round to nearest even (as torch does)."""
    b = struct.unpack('<I', struct.pack('<f', x))[0]
    return ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) & 0xFFFF


def tensor_specs(cfg):
    """(name, shape, kind) in Hugging Face names; kind picks the init."""
    C, H, KV, F, V = cfg['hidden_size'], cfg['num_attention_heads'], cfg['num_key_value_heads'], cfg['intermediate_size'], cfg['vocab_size']
    D = C // H
    specs = [('model.embed_tokens.weight', [V, C], 'mat')]
    for l in range(cfg['num_hidden_layers']):
        p = f'model.layers.{l}.'
        specs += [(p + 'input_layernorm.weight', [C], 'norm'),
                  (p + 'self_attn.q_proj.weight', [H * D, C], 'mat'),
                  (p + 'self_attn.k_proj.weight', [KV * D, C], 'mat'),
                  (p + 'self_attn.v_proj.weight', [KV * D, C], 'mat')]
        if cfg['model_type'] == 'qwen2':
            specs += [(p + 'self_attn.q_proj.bias', [H * D], 'bias'),
                      (p + 'self_attn.k_proj.bias', [KV * D], 'bias'),
                      (p + 'self_attn.v_proj.bias', [KV * D], 'bias')]
        specs += [(p + 'self_attn.o_proj.weight', [C, H * D], 'mat'),
                  (p + 'post_attention_layernorm.weight', [C], 'norm'),
                  (p + 'mlp.gate_proj.weight', [F, C], 'mat'),
                  (p + 'mlp.up_proj.weight', [F, C], 'mat'),
                  (p + 'mlp.down_proj.weight', [C, F], 'mat')]
    specs.append(('model.norm.weight', [C], 'norm'))
    if not cfg['tie_word_embeddings']:
        specs.append(('lm_head.weight', [V, C], 'mat'))
    return specs


def draw(shape, kind, r):
    n = 1
    for d in shape:
        n *= d
    if kind == 'mat':
        return [r.gauss(0, 0.25) for _ in range(n)]
    if kind == 'norm':
        return [1 + r.gauss(0, 0.2) for _ in range(n)]
    return [r.gauss(0, 0.3) for _ in range(n)]


def safetensors_bytes(tensors, dtype):
    """tensors: [(name, shape, values)] -> file bytes; data back to back, header padded to 8 bytes."""
    header, blobs, offset = {'__metadata__': {'format': 'pt'}}, [], 0
    for name, shape, values in tensors:
        if dtype == 'F32':
            blob = struct.pack(f'<{len(values)}f', *values)
        else:
            blob = struct.pack(f'<{len(values)}H', *[bf16_bits(v) for v in values])
        header[name] = {'dtype': dtype, 'shape': shape, 'data_offsets': [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * (-len(h) % 8)
    return struct.pack('<Q', len(h)) + h + b''.join(blobs)


MODELS = {
    'tiny-llama-f32': dict(model_type='llama', architectures=['LlamaForCausalLM'], num_key_value_heads=2, rope_theta=100000.0,
                           rms_norm_eps=1e-3, tie_word_embeddings=False, dtype='F32', torch_dtype='float32', seed=1, shards=1),
    'tiny-llama-bf16': dict(model_type='llama', architectures=['LlamaForCausalLM'], num_key_value_heads=1, rope_theta=500000.0,
                            rms_norm_eps=2e-3, tie_word_embeddings=True, dtype='BF16', torch_dtype='bfloat16', seed=2, shards=1),
    'tiny-qwen2-sharded': dict(model_type='qwen2', architectures=['Qwen2ForCausalLM'], num_key_value_heads=2, rope_theta=1000000.0,
                               rms_norm_eps=1e-5, tie_word_embeddings=False, dtype='F32', torch_dtype='float32', seed=3, shards=2,
                               vocab_pad=5),
}


def write_model(name, m, tok, tok_cfg, tok_vocab, specials):
    out = os.path.join(ROOT, name)
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(out):
        os.remove(os.path.join(out, f))
    cfg = {
        'architectures': m['architectures'], 'model_type': m['model_type'],
        'vocab_size': tok_vocab + m.get('vocab_pad', 0), 'hidden_size': 32, 'intermediate_size': 48,
        'num_hidden_layers': 2, 'num_attention_heads': 4, 'num_key_value_heads': m['num_key_value_heads'],
        'max_position_embeddings': 256, 'rope_theta': m['rope_theta'], 'rms_norm_eps': m['rms_norm_eps'],
        'tie_word_embeddings': m['tie_word_embeddings'], 'hidden_act': 'silu', 'attention_bias': m['model_type'] == 'qwen2',
        'bos_token_id': specials['<|im_start|>'], 'eos_token_id': specials['<|im_end|>'], 'torch_dtype': m['torch_dtype'],
    }
    r = random.Random(m['seed'])
    tensors = [(n, s, draw(s, k, r)) for n, s, k in tensor_specs(cfg)]
    if m['shards'] == 1:
        with open(os.path.join(out, 'model.safetensors'), 'wb') as f:
            f.write(safetensors_bytes(tensors, m['dtype']))
    else:
        per = -(-len(tensors) // m['shards'])
        weight_map = {}
        for s in range(m['shards']):
            fname = f'model-{s + 1:05d}-of-{m["shards"]:05d}.safetensors'
            part = tensors[s * per:(s + 1) * per]
            with open(os.path.join(out, fname), 'wb') as f:
                f.write(safetensors_bytes(part, m['dtype']))
            weight_map.update({n: fname for n, _, _ in part})
        total = sum(4 * len(v) for _, _, v in tensors)
        with open(os.path.join(out, 'model.safetensors.index.json'), 'w') as f:
            json.dump({'metadata': {'total_size': total}, 'weight_map': weight_map}, f, indent=2)
    for fname, obj in [('config.json', cfg), ('tokenizer.json', tok), ('tokenizer_config.json', tok_cfg)]:
        with open(os.path.join(out, fname), 'w') as f:
            json.dump(obj, f, indent=None if fname == 'tokenizer.json' else 2, ensure_ascii=False)


def main():
    tok, tok_cfg, tok_vocab, specials = make_tokenizer()
    for name, m in MODELS.items():
        write_model(name, m, tok, tok_cfg, tok_vocab, specials)
        print(f'wrote {os.path.relpath(os.path.join(ROOT, name))}')


if __name__ == '__main__':
    main()
