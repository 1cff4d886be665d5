// A progress bar per phase on stderr: redrawn in place on a terminal, a line per 10% otherwise (logs, CI).

export interface Bar {
  update(done: number, total: number, note?: string): void;
  end(note?: string): void;
}

export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr): Bar {
  const tty = !!stream.isTTY;
  const t0 = performance.now();
  let lastDecile = -1;
  let lastDraw = 0;
  const line = (done: number, total: number, note = '') => {
    const frac = total > 0 ? Math.min(1, done / total) : 0;
    const width = 24;
    const fill = Math.round(frac * width);
    const secs = (performance.now() - t0) / 1000;
    const eta = frac > 0 && frac < 1 ? ` eta ${Math.round((secs / frac) * (1 - frac))}s` : '';
    return `${label.padEnd(22)} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${done}/${total} ${secs.toFixed(1)}s${eta}${note ? ` ${note}` : ''}`;
  };
  return {
    update(done, total, note) {
      if (tty) {
        const now = performance.now();
        if (now - lastDraw < 100 && done < total) return;
        lastDraw = now;
        stream.write(`\r${line(done, total, note)}\x1b[K`);
      } else {
        const decile = total > 0 ? Math.floor((10 * done) / total) : 10;
        if (decile > lastDecile) {
          lastDecile = decile;
          stream.write(`${line(done, total, note)}\n`);
        }
      }
    },
    end(note) {
      if (tty) stream.write(`\r${line(1, 1, note)}\x1b[K\n`);
      else stream.write(`${label.padEnd(22)} done in ${((performance.now() - t0) / 1000).toFixed(1)}s${note ? ` ${note}` : ''}\n`);
    },
  };
}
