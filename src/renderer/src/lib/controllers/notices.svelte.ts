// Toast notifications: short-lived messages for results and errors that have no field to sit next to.
import { errorMessage, isCancelled } from '../errors';

export type NoticeKind = 'info' | 'success' | 'error';
export interface Notice {
  id: number;
  kind: NoticeKind;
  text: string;
}

export class NoticesController {
  items = $state<Notice[]>([]);
  private seq = 0;

  push(kind: NoticeKind, text: string, ttlMs = kind === 'error' ? 9000 : 4000): void {
    const id = ++this.seq;
    this.items.push({ id, kind, text });
    if (this.items.length > 5) this.items.shift();
    setTimeout(() => this.dismiss(id), ttlMs);
  }

  info(text: string): void {
    this.push('info', text);
  }

  success(text: string): void {
    this.push('success', text);
  }

  /** Report a failure, unless the user cancelled it themselves. */
  error(e: unknown, prefix?: string): void {
    if (isCancelled(e)) return;
    this.push('error', prefix ? `${prefix}: ${errorMessage(e)}` : errorMessage(e));
  }

  dismiss(id: number): void {
    this.items = this.items.filter((n) => n.id !== id);
  }
}
