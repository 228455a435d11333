// "Busy, then maybe an error" for a form's one action: the button spins while `run` is in
// flight, and a failure is kept as a message next to the form instead of closing the dialog.
import { errorMessage, isCancelled } from './errors';

export class Pending {
  busy = $state(false);
  error = $state<string | null>(null);

  /** Run `fn`; true when it succeeded. Nothing runs while a previous call is in flight. */
  async run(fn: () => Promise<unknown>): Promise<boolean> {
    if (this.busy) return false;
    this.busy = true;
    this.error = null;
    try {
      await fn();
      return true;
    } catch (e) {
      // Dismissed by the user (a host-key prompt): nothing to report.
      if (!isCancelled(e)) this.error = errorMessage(e);
      return false;
    } finally {
      this.busy = false;
    }
  }
}
