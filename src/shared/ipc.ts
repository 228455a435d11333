// Electron IPC channel names. Kept import-free: the sandboxed preload bundles this file and may
// require nothing but `electron`.
export const IPC_INVOKE = 'kes:invoke';
export const IPC_EVENT = 'kes:event';
