"""Seed training on the twin: the base model, trained until it masters its seed range.

    /usr/bin/python3 scripts/twin/pretrain.py --preset arithmetic-small --out /tmp/base [options]

The seed set: `--n` problems of `--lo`..`--hi` digits, every other one shown with the hint; plus `--n-hint`
problems of `--lo`..`--hint-hi` digits shown with the hint only (worked examples of longer problems whose
scratchpad the answer in the prompt pins down, as the paper's rationalization prompt shows). Training stops
once greedy accuracy on held-out seed-range problems reaches `--target`, or at `--steps`.
"""

import argparse
import json
import os
import random

import lab
import task
from model import Twin, config, hf_config, load_safetensors, param_count, save_safetensors


def seed_examples(a, rng):
    if a.seed_file:
        # The exact seed set of a run preset, as scripts/export_seed.ts writes it: one {"prompt", "target"} per line.
        with open(a.seed_file) as f:
            return [(r['prompt'], r['target']) for r in map(json.loads, f) if r]
    ex = [(task.prompt(x, y, i % 2 == 1), task.scratchpad(x, y)) for i, (x, y) in enumerate(task.sample(rng, a.n, a.lo, a.hi, split='train'))]
    if a.n_hint:
        ex += [(task.prompt(x, y, True), task.scratchpad(x, y)) for (x, y) in task.sample(rng, a.n_hint, a.lo, a.hint_hi, split='train')]
    if a.n_long:
        ex += [(task.prompt(x, y, i % 2 == 1), task.scratchpad(x, y))
               for i, (x, y) in enumerate(task.sample(rng, a.n_long, a.hi + 1, a.hint_hi, split='train'))]
    return ex


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--preset', default='arithmetic-small')
    ap.add_argument('--d-model', type=int, default=0)
    ap.add_argument('--layers', type=int, default=0)
    ap.add_argument('--heads', type=int, default=0)
    ap.add_argument('--kv-heads', type=int, default=0)
    ap.add_argument('--ffn', type=int, default=0)
    ap.add_argument('--out', required=True)
    ap.add_argument('--init', default='', help='start from these weights (model.safetensors) instead of a fresh model')
    ap.add_argument('--seed-file', default='', help='train on these examples (JSONL) instead of drawing a seed set')
    ap.add_argument('--hint-target', type=float, default=0.0, help='also wait for this hinted accuracy on longer problems')
    ap.add_argument('--n', type=int, default=2000)
    ap.add_argument('--lo', type=int, default=1)
    ap.add_argument('--hi', type=int, default=2)
    ap.add_argument('--n-hint', type=int, default=0)
    ap.add_argument('--n-long', type=int, default=0)
    ap.add_argument('--hint-hi', type=int, default=5)
    ap.add_argument('--steps', type=int, default=4000)
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--lr', type=float, default=2e-3)
    ap.add_argument('--warmup', type=int, default=30)
    ap.add_argument('--weighting', default='token', choices=['token', 'example'])
    ap.add_argument('--check-every', type=int, default=250)
    ap.add_argument('--target', type=float, default=0.99)
    ap.add_argument('--report-hi', type=int, default=5)
    ap.add_argument('--seed', type=int, default=1)
    a = ap.parse_args()
    over = {k: v for k, v in dict(dModel=a.d_model, nLayers=a.layers, nHeads=a.heads, nKvHeads=a.kv_heads, dFF=a.ffn).items() if v}
    cfg = config(a.preset, **over)
    model = Twin(cfg, seed=a.seed)
    if a.init:
        load_safetensors(model, a.init)
    print(json.dumps(vars(a)), 'params', param_count(model), flush=True)
    rng = random.Random(a.seed)
    ex = seed_examples(a, rng)
    # Held-out checks from the 'check' split: never trained on, never the STaR evaluation set.
    val = lab.eval_set(100, a.lo, a.hi, 777, split='check')
    val_hint = lab.eval_set(100, a.hi + 1, a.hint_hi, 778, split='check') if a.hint_hi > a.hi else []
    rep = lab.eval_set(30, 1, a.report_hi, 999, split='check')
    T = lab.Timer()
    os.makedirs(a.out, exist_ok=True)
    curve = []

    class Stop(Exception):
        pass

    def check(step, loss):
        v = lab.overall(lab.evaluate(model, val))
        vh = sum(s[1] for s in lab.evaluate(model, val_hint, hint=True).values()) / max(1, a.hint_hi - a.hi) if val_hint else 1.0
        sp = lab.evaluate(model, rep)
        sh = lab.evaluate(model, rep, hint=True)
        curve.append({'step': step, 'loss': loss, 'seedRange': v, 'hintedLonger': vh})
        print(f'{step} loss {loss:.4f} val {100 * v:.1f} hinted-longer {100 * vh:.1f} | plain {lab.fmt(sp)} rat {lab.fmt(sp, 1)} '
              f'| hinted {lab.fmt(sh)} rat {lab.fmt(sh, 1)}', T(), flush=True)
        if v >= a.target and vh >= a.hint_target:
            raise Stop()

    try:
        lab.train(model, ex, a.steps, B=a.batch, lr=a.lr, warmup=a.warmup, seed=a.seed, weighting=a.weighting,
                  log_every=a.check_every, on_log=check)
    except Stop:
        pass
    save_safetensors(model, os.path.join(a.out, 'model.safetensors'))
    with open(os.path.join(a.out, 'config.json'), 'w') as f:
        json.dump({**hf_config(cfg), 'star_tokenizer': 'arithmetic-char'}, f, indent=2)
    with open(os.path.join(a.out, 'curve.json'), 'w') as f:
        json.dump(curve, f)


if __name__ == '__main__':
    main()
