// Job types live in src/shared (the renderer shows plans, steps and logs); re-exported here so
// main-side code keeps importing from its own folder.
export * from '@shared/jobs';

import type { StepContext } from '@shared/jobs';

/** Main-side extras a job declaration may carry (not part of what the renderer sees). */
export interface JobDefExtras<C> {
  /**
   * Best-effort tidy-up after a failed or cancelled run, after any rollback (e.g. remove copies
   * uploaded to nodes). Its errors are logged, never change the job's status or outcome.
   */
  tidyUp?: (ctx: C, step: StepContext) => Promise<void>;
  /**
   * Re-read what the job may have changed (the facts behind the mode badge, node chips, member
   * lists) once everything else is over — steps, rollback, tidy-up, end tasks — on every outcome,
   * while the job still shows as running: screens that reload when it ends see the cluster as it
   * now is. Logged under `refresh`; its errors never change the job's status. Skipped when no step
   * was done (nothing changed) or when the job's own step `refresh` did it.
   */
  refreshAtEnd?: (ctx: C, step: StepContext) => Promise<void>;
}
