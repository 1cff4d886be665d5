"""Training, greedy generation and scoring for the twin (scripts/twin/model.py)."""

import random
import time

from model import lr_at, make_optimizer  # first: it pins OpenBLAS to one thread before torch loads it
import task
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
from tokenizer import BOS, EOS, PAD, VOCAB_SIZE, decode, encode

DIGITS = set(encode('0123456789'))
SPACE, COMMA, COLON = encode(' ,:')


def is_key(ids, t):
    """As src/star/tasks/arithmetic_task.ts arithmeticKeyToken: a new sum digit or a carry."""
    return t >= 2 and ids[t] in DIGITS and ids[t - 1] == SPACE and ids[t - 2] in (COMMA, COLON)


def encode_example(prompt, target):
    p = encode(prompt)
    t = encode(target)
    return [BOS] + p + t + [EOS], len(p)


def batches(encoded, B, rng, group=32):
    """Endless shuffled epochs of B examples, padded to the batch's longest. Within each window of `group`
    batches the examples are sorted by length first, so a batch of short ones is not padded to a long one."""
    while True:
        order = list(range(len(encoded)))
        rng.shuffle(order)
        out = []
        for w in range(0, len(order), B * group):
            win = sorted(order[w:w + B * group], key=lambda j: len(encoded[j][0]))
            out += [win[i:i + B] for i in range(0, len(win), B) if len(win[i:i + B]) == B or len(order) < B]
        rng.shuffle(out)
        for bt in out:
            yield [encoded[j] for j in bt]


def collate(rows, weighting='token', key_weight=1.0):
    T = max(len(ids) for ids, _ in rows) - 1
    x = torch.full((len(rows), T), PAD, dtype=torch.long)
    y = torch.full((len(rows), T), PAD, dtype=torch.long)
    w = torch.zeros((len(rows), T))
    for r, (ids, pl) in enumerate(rows):
        n = len(ids) - 1
        x[r, :n] = torch.tensor(ids[:-1])
        y[r, :n] = torch.tensor(ids[1:])
        w[r, pl:n] = 1.0
        if key_weight != 1.0:
            for t in range(pl, n):
                if is_key(ids, t + 1):
                    w[r, t] = key_weight
        if weighting == 'example':
            w[r] /= max(1.0, w[r].sum())
    return x, y, w / w.sum()


def train(model, examples, steps, B=32, lr=2e-3, warmup=20, seed=0, weighting='token', wd=0.1, clip=1.0,
          min_ratio=0.1, log_every=0, on_log=None, key_weight=1.0):
    """AdamW from whatever weights the model holds; examples are (prompt, target) pairs."""
    enc = [encode_example(p, t) for p, t in examples]
    opt = make_optimizer(model, lr, wd)
    it = batches(enc, min(B, len(enc)), random.Random(seed))
    losses = []
    model.train()
    for step in range(1, steps + 1):
        for g in opt.param_groups:
            g['lr'] = lr_at(step, lr, warmup, steps, min_ratio)
        x, y, w = collate(next(it), weighting, key_weight)
        logits = model(x)
        loss = (F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction='none') * w.reshape(-1)).sum()
        opt.zero_grad()
        loss.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        losses.append(loss.item())
        if log_every and step % log_every == 0 and on_log:
            on_log(step, sum(losses[-log_every:]) / log_every)
    return losses


@torch.no_grad()
def generate(model, prompts, max_new, batch=512):
    """Greedy completions (text up to EOS), grouped by prompt length so no padding is needed."""
    model.eval()
    out = [None] * len(prompts)
    groups = {}
    for i, p in enumerate(prompts):
        ids = [BOS] + encode(p)
        groups.setdefault(len(ids), []).append((i, ids))
    for L, items in groups.items():
        for s in range(0, len(items), batch):
            chunk = items[s:s + batch]
            ids = torch.tensor([c[1] for c in chunk])
            cache = []
            logits = model(ids, 0, cache)[:, -1]
            done = torch.zeros(len(chunk), dtype=torch.bool)
            gen = []
            pos = L
            n = min(max_new, model.cfg['maxSeq'] - L)
            for _ in range(n):
                nxt = logits[:, :VOCAB_SIZE].argmax(-1)  # as the engine: never an id past the tokenizer's
                nxt = torch.where(done, torch.full_like(nxt, EOS), nxt)
                gen.append(nxt)
                done |= nxt == EOS
                if bool(done.all()):
                    break
                logits = model(nxt[:, None], pos, cache)[:, -1]
                pos += 1
            G = torch.stack(gen, 1).tolist()
            for (i, _), g in zip(chunk, G):
                if EOS in g:
                    g = g[:g.index(EOS)]
                out[i] = decode(g)
    return out


def max_new_tokens(d):
    n = 10 ** d - 1
    return int(len(encode(task.scratchpad(n, n))) * 1.25) + 1


def completions(model, problems, hint=False, mode='scratch'):
    by_d = {}
    for k, p in enumerate(problems):
        by_d.setdefault(task.digits(p), []).append(k)
    texts = [None] * len(problems)
    for d, idx in by_d.items():
        mn = max_new_tokens(d) if mode == 'scratch' else d + 4
        outs = generate(model, [task.prompt(*problems[k], hint) for k in idx], mn)
        for k, t in zip(idx, outs):
            texts[k] = t
    return texts


def score(problems, texts):
    """Per digit count: answer accuracy and rationale accuracy."""
    res = {}
    for p, t in zip(problems, texts):
        d = task.digits(p)
        r = res.setdefault(d, [0, 0, 0])
        r[0] += 1
        r[1] += task.answer_ok(*p, t)
        r[2] += task.rationale_ok(*p, t)
    return {d: (c / n, rr / n) for d, (n, c, rr) in sorted(res.items())}


def evaluate(model, problems, hint=False):
    return score(problems, completions(model, problems, hint))


def fmt(sc, which=0):
    return '/'.join(f'{100 * v[which]:.0f}' for d, v in sorted(sc.items()))


def overall(sc):
    return sum(v[0] for v in sc.values()) / len(sc)


def eval_set(n_per_digit, lo, hi, seed, split='eval'):
    """n problems of each digit count from one split (held out from every training split)."""
    rng = random.Random(seed)
    return [p for d in range(lo, hi + 1) for p in task.sample(rng, n_per_digit, d, d, split=split)]


class Timer:
    def __init__(self):
        self.t = time.time()

    def __call__(self):
        return f'{time.time() - self.t:.0f}s'
