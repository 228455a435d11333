// How much of a file being written has reached it, for a reader that follows the writer: the
// snapshot status walk reads a streamed snapshot while it arrives, so the status is there as soon
// as the last byte is (instead of one more pass over the file after it).
import { SnapshotInvalid } from './snapfile';

interface Waiter {
  end: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

export class WrittenSoFar {
  private bytes = 0;
  /** undefined: still writing; null: finished; an Error: failed. */
  private outcome: Error | null | undefined;
  private waiters: Waiter[] = [];

  /** The writer: the file's first `bytes` bytes are written. */
  advance(bytes: number): void {
    if (bytes <= this.bytes) return;
    this.bytes = bytes;
    if (!this.waiters.length) return;
    const still: Waiter[] = [];
    for (const w of this.waiters) {
      if (w.end <= bytes) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }

  /** The writer is done: no byte beyond those written will come. */
  finish(): void {
    this.settle(null);
  }

  /** The writer failed: every wait fails with its error. */
  fail(e: Error): void {
    this.settle(e);
  }

  /** Resolves once the file's first `end` bytes are written; rejects if they never will be. */
  until(end: number): Promise<void> {
    if (end <= this.bytes) return Promise.resolve();
    if (this.outcome !== undefined) return Promise.reject(this.why(end));
    return new Promise((resolve, reject) => this.waiters.push({ end, resolve, reject }));
  }

  private settle(outcome: Error | null): void {
    if (this.outcome !== undefined) return;
    this.outcome = outcome;
    for (const w of this.waiters) w.reject(this.why(w.end));
    this.waiters = [];
  }

  private why(end: number): Error {
    return (
      this.outcome ??
      new SnapshotInvalid(`Truncated snapshot: the file ends at ${this.bytes} bytes, ${end} were expected`)
    );
  }
}
