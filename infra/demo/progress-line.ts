/**
 * The demo's terminal output: plain lines, and one live status line that is rewritten in
 * place on a terminal and printed every few seconds otherwise (CI logs, pipes).
 */
export class DemoOutput {
  readonly #stream: NodeJS.WriteStream;
  readonly #tty: boolean;
  #live = false;
  #lastPrinted = 0;
  #lastText = '';

  constructor(stream: NodeJS.WriteStream, readonly quiet = false) {
    this.#stream = stream;
    this.#tty = Boolean(stream.isTTY);
  }

  line(text = ''): void {
    if (this.quiet) return;
    this.#endLive();
    this.#stream.write(text + '\n');
  }

  /** Replaces the live line (rate-limited to one line per 5 s when not a terminal). */
  status(text: string): void {
    if (this.quiet) return;
    this.#lastText = text;
    if (this.#tty) {
      this.#stream.write(`\r\x1b[K${text}`);
      this.#live = true;
    } else if (performance.now() - this.#lastPrinted > 5000) {
      this.#lastPrinted = performance.now();
      this.#stream.write(text + '\n');
    }
  }

  /** Ends the live line with its final text, kept on screen. */
  done(text: string): void {
    if (this.quiet) return;
    if (this.#tty) this.#stream.write(`\r\x1b[K${text}\n`);
    else this.#stream.write(text + '\n');
    this.#live = false;
    this.#lastPrinted = 0;
    this.#lastText = '';
  }

  #endLive(): void {
    if (!this.#live) return;
    this.#stream.write(`\r\x1b[K${this.#lastText}\n`);
    this.#live = false;
  }
}

/** `[████████░░░░░░░░]` */
export function bar(fraction: number, width = 24): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}]`;
}

export const thousands = (n: number): string => Math.round(n).toLocaleString('en');
