// A progress bar per phase on stderr: redrawn in place on a terminal; otherwise (logs, CI) a line per 10%, and
// at least one a minute while a long phase goes on (a seed phase of 12,000 steps takes over an hour on a CPU).

export interface Bar {
  update(done: number, total: number, note?: string): void;
  end(note?: string): void;
}

/** Without a terminal, the longest a phase goes without a line. */
export const LOG_EVERY_MS = 60_000;

export function progressBar(label: string, stream: Pick<NodeJS.WriteStream, 'write' | 'isTTY'> = process.stderr, now: () => number = () => performance.now()): Bar {
  const tty = !!stream.isTTY;
  const t0 = now();
  let lastLine = t0;
  let lastDecile = -1;
  let lastDraw = 0;
  const line = (done: number, total: number, note = '') => {
    const frac = total > 0 ? Math.min(1, done / total) : 0;
    const width = 24;
    const fill = Math.round(frac * width);
    const secs = (now() - t0) / 1000;
    const eta = frac > 0 && frac < 1 ? ` eta ${Math.round((secs / frac) * (1 - frac))}s` : '';
    return `${label.padEnd(22)} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${done}/${total} ${secs.toFixed(1)}s${eta}${note ? ` ${note}` : ''}`;
  };
  return {
    update(done, total, note) {
      if (tty) {
        const t = now();
        if (t - lastDraw < 100 && done < total) return;
        lastDraw = t;
        stream.write(`\r${line(done, total, note)}\x1b[K`);
      } else {
        const decile = total > 0 ? Math.floor((10 * done) / total) : 10;
        const t = now();
        if (decile > lastDecile || t - lastLine >= LOG_EVERY_MS) {
          lastDecile = Math.max(lastDecile, decile);
          lastLine = t;
          stream.write(`${line(done, total, note)}\n`);
        }
      }
    },
    end(note) {
      if (tty) stream.write(`\r${line(1, 1, note)}\x1b[K\n`);
      else stream.write(`${label.padEnd(22)} done in ${((now() - t0) / 1000).toFixed(1)}s${note ? ` ${note}` : ''}\n`);
    },
  };
}
