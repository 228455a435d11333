// Job types live in src/shared (the renderer shows plans, steps and logs); re-exported here so
// main-side code keeps importing from its own folder.
export * from '@shared/jobs';
