"""The arithmetic task's char tokenizer (src/star/tasks/char_tokenizer.ts): the same ids, in the same order."""

PAD, BOS, EOS = 0, 1, 2
PIECES = list('0123456789 +,C:\n') + ['<scratch>', '</scratch>', 'Input:', 'Target:']
TEXTS = ['<pad>', '<bos>', '<eos>'] + PIECES
VOCAB_SIZE = len(TEXTS)
_ID = {p: i + 3 for i, p in enumerate(PIECES)}
_WORDS = sorted([p for p in PIECES if len(p) > 1], key=len, reverse=True)


def encode(text):
    ids, i = [], 0
    while i < len(text):
        for w in _WORDS:
            if text.startswith(w, i):
                ids.append(_ID[w])
                i += len(w)
                break
        else:
            ids.append(_ID[text[i]])
            i += 1
    return ids


def decode(ids):
    return ''.join(TEXTS[i] for i in ids if i > EOS)
