/**
 * Training progress: a bar redrawn in place on a terminal (steps, loss, rate, time left), or a
 * plain line every 2 seconds otherwise (CI logs, pipes), counted in the run's steps (a resumed
 * run goes on from its checkpoint's step).
 *
 * @module
 */

import type { CliIO } from "./io.ts";

/** The least time between two progress lines off a terminal. */
const LINE_INTERVAL_MS = 2000;

/** Reports the steps of a run of `total` steps that started at step `first`. */
export class Progress {
  #io: CliIO;
  #total: number;
  #first: number;
  #started = performance.now();
  #lastDraw = -Infinity;

  /** Starts reporting; `first` is the step a resumed run starts from. */
  constructor(io: CliIO, total: number, first: number) {
    this.#io = io;
    this.#total = total;
    this.#first = first;
  }

  /** Reports that `step` steps are done, the last with training loss `loss`. */
  update(step: number, loss: number): void {
    const now = performance.now();
    const done = step - this.#first;
    const rate = done / Math.max(1e-9, (now - this.#started) / 1000);
    const left = (this.#total - step) / Math.max(rate, 1e-9);
    const status = `${step}/${this.#total}  loss ${loss.toFixed(4)}  ${rate.toFixed(2)} steps/s  ` +
      `ETA ${duration(left)}`;
    if (this.#io.isTerminal) {
      if (now - this.#lastDraw < 100 && step < this.#total) return;
      this.#lastDraw = now;
      const width = 24;
      const filled = Math.round((step / this.#total) * width);
      this.#io.stderr(`\r[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${status}\x1b[K`);
      if (step === this.#total) this.#io.stderr("\n");
      return;
    }
    if (now - this.#lastDraw < LINE_INTERVAL_MS && step < this.#total) return;
    this.#lastDraw = now;
    this.#io.stderr(`step ${status}\n`);
  }

  /** Prints a line between bar updates without leaving the bar half-drawn. */
  line(text: string): void {
    this.#io.stderr(this.#io.isTerminal ? `\r${text}\x1b[K\n` : `${text}\n`);
  }
}

/** `seconds` as `m:ss` (or `h:mm:ss`). */
export function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.round(seconds);
  const [h, m, rest] = [Math.floor(s / 3600), Math.floor(s / 60) % 60, s % 60];
  const mmss = `${String(m).padStart(h > 0 ? 2 : 1, "0")}:${String(rest).padStart(2, "0")}`;
  return h > 0 ? `${h}:${mmss}` : mmss;
}
