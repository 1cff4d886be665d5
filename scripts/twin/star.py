"""The STaR loop on the twin, for recipe search (the project's own loop is src/star/loop.ts).

    /usr/bin/python3 scripts/twin/star.py --base DIR/model.safetensors --preset arithmetic-small [options]

Every iteration: draw problems, generate with M_{n-1} (greedy), keep by the filter, rationalize the failures
with the hint, fine-tune from the base model on what was kept (with hinted copies when --hint-replay), and
score M_n on a held-out set that no iteration ever trains on.
"""

import argparse
import copy
import json
import random

import lab
import task
from model import Twin, config, load_safetensors, save_safetensors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--base', required=True)
    ap.add_argument('--preset', default='arithmetic-small')
    ap.add_argument('--mode', default='star', choices=['star', 'star-no-rationalization', 'direct'])
    ap.add_argument('--iterations', type=int, default=8)
    ap.add_argument('--n', type=int, default=1000, help='problems per iteration')
    ap.add_argument('--lo', type=int, default=1)
    ap.add_argument('--hi', type=int, default=5)
    ap.add_argument('--filter', default='rationale', choices=['answer', 'rationale'])
    ap.add_argument('--hint-replay', action='store_true')
    ap.add_argument('--accumulate', action='store_true')
    ap.add_argument('--sampling', default='uniform', choices=['uniform', 'frontier'])
    ap.add_argument('--epochs', type=float, default=2.0)
    ap.add_argument('--min-steps', type=int, default=100)
    ap.add_argument('--max-steps', type=int, default=2000)
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--warmup', type=int, default=20)
    ap.add_argument('--weighting', default='token', choices=['token', 'example'])
    ap.add_argument('--eval-per-digit', type=int, default=60)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--save', default='')
    a = ap.parse_args()
    print(json.dumps(vars(a)), flush=True)

    cfg = config(a.preset)
    base = Twin(cfg)
    load_safetensors(base, a.base)
    T = lab.Timer()
    ev = lab.eval_set(a.eval_per_digit, a.lo, a.hi, 12345)
    rng = random.Random(a.seed)
    model = base
    sc = lab.evaluate(model, ev)
    print(f'it 0 plain {lab.fmt(sc)} overall {100 * lab.overall(sc):.1f}', T(), flush=True)
    acc = {d: v[0] for d, v in sc.items()}
    kept_all = {}
    for it in range(1, a.iterations + 1):
        if a.sampling == 'frontier':
            w = [max(0.05, 1 - acc[d]) for d in range(a.lo, a.hi + 1)]
        else:
            w = None
        probs = task.sample(rng, a.n, a.lo, a.hi, w, split='train')
        check = task.rationale_ok if a.filter == 'rationale' else task.answer_ok
        kept = {}
        stats = {}
        if a.mode == 'direct':
            examples = [(task.prompt(*p), task.direct(*p)) for p in probs]
        else:
            texts = lab.completions(model, probs)
            fails = []
            for p, t in zip(probs, texts):
                s = stats.setdefault(task.digits(p), [0, 0, 0, 0])
                s[0] += task.answer_ok(*p, t)
                if check(*p, t):
                    kept[p] = t
                    s[1] += 1
                else:
                    fails.append(p)
            if a.mode == 'star' and fails:
                rt = lab.completions(model, fails, hint=True)
                for p, t in zip(fails, rt):
                    s = stats[task.digits(p)]
                    s[2] += task.answer_ok(*p, t)
                    if check(*p, t):
                        kept[p] = t
                        s[3] += 1
            if a.accumulate:
                kept_all.update(kept)
                kept = dict(kept_all)
            examples = [(task.prompt(*p), t) for p, t in kept.items()]
            if a.hint_replay:
                examples += [(task.prompt(*p, True), t) for p, t in kept.items()]
        steps = max(a.min_steps, min(a.max_steps, int(a.epochs * len(examples) / a.batch)))
        model = copy.deepcopy(base)
        losses = lab.train(model, examples, steps, B=a.batch, lr=a.lr, warmup=a.warmup, seed=it, weighting=a.weighting) if examples else [0]
        sc = lab.evaluate(model, ev)
        acc = {d: v[0] for d, v in sc.items()}
        st = ' '.join(f'{d}:{v[1]}/{v[3]}({v[0]}/{v[2]})' for d, v in sorted(stats.items()))
        print(f'it {it} kept {len(kept)} ex {len(examples)} steps {steps} loss {sum(losses[-20:]) / len(losses[-20:]):.4f} '
              f'| gen/rat(ans) {st} | plain {lab.fmt(sc)} rat {lab.fmt(sc, 1)} overall {100 * lab.overall(sc):.1f}', T(), flush=True)
        if a.save:
            save_safetensors(model, f'{a.save}-it{it}.safetensors')


if __name__ == '__main__':
    main()
