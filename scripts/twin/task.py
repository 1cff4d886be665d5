"""The arithmetic task's text format (src/star/tasks/arithmetic.ts), written again in Python for the twin."""

import random


def spaced(s):
    return ' '.join(str(s))


def prompt(a, b, hint=False):
    t = f'Target: {spaced(a + b)}\n' if hint else 'Target:\n'
    return f'Input:\n{spaced(a)} + {spaced(b)}\n{t}'


def scratchpad(a, b):
    A, B = [int(c) for c in str(a)], [int(c) for c in str(b)]
    n = len(A)
    s, carry, lines = [], 0, ['<scratch>']
    for left in range(n, -1, -1):
        rem = f"{' '.join(map(str, A[:left]))} + {' '.join(map(str, B[:left]))}" if left > 0 else ''
        parts = [rem, ',', ' '.join(map(str, s)), 'C:', str(carry)]
        lines.append(' '.join(p for p in parts if p != ''))
        if left > 0:
            t = A[left - 1] + B[left - 1] + carry
            s.insert(0, t % 10)
            carry = t // 10
    lines += [' '.join(map(str, [carry] + s)), '</scratch>', spaced(a + b)]
    return '\n'.join(lines) + '\n'


def direct(a, b):
    return spaced(a + b) + '\n'


def answer_of(text):
    close = text.find('</scratch>\n')
    if close >= 0:
        rest = text[close + len('</scratch>\n'):]
    elif '<scratch>' in text:
        return None
    else:
        rest = text
    nl = rest.find('\n')
    if nl < 0:
        return None
    line = rest[:nl]
    return line if line and all(c.isdigit() for c in line.split(' ')) and all(len(c) == 1 for c in line.split(' ')) else None


def answer_ok(a, b, text):
    return answer_of(text) == spaced(a + b)


def rationale_ok(a, b, text):
    """Every scratch line exactly as the task's own scratchpad (each follows from the previous), then the answer."""
    want = scratchpad(a, b)
    return text[:len(want)] == want


def split_of(a, b):
    """As src/star/tasks/arithmetic.ts splitOf: FNV-1a of "a+b", a tenth 'eval', a tenth 'check', the rest 'train'."""
    if a < 10:
        return 'train'
    h = 0x811c9dc5
    for ch in f'{a}+{b}':
        h = ((h ^ ord(ch)) * 0x01000193) & 0xffffffff
    return {0: 'eval', 1: 'check'}.get(h % 10, 'train')


def sample(rng, n, lo, hi, weights=None, split=None):
    out = []
    for _ in range(n):
        d = rng.choices(range(lo, hi + 1), weights=weights)[0] if weights else rng.randint(lo, hi)
        while True:
            a = rng.randint(10 ** (d - 1), 10 ** d - 1)
            b = rng.randint(10 ** (d - 1), 10 ** d - 1)
            if split is None or d == 1 or split_of(a, b) == split:
                break
        out.append((a, b))
    return out


def digits(p):
    return len(str(p[0]))
