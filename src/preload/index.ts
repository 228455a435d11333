// Transport only: exposes invoke/on over two fixed channels. No ipcRenderer, no Node, nothing
// else reaches the page. Runs sandboxed, so it must stay CommonJS with only `electron` imported.
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import { IPC_EVENT, IPC_INVOKE } from '../shared/ipc';

type Listener = (payload: unknown) => void;
const listeners = new Map<string, Set<Listener>>();

ipcRenderer.on(IPC_EVENT, (_e: IpcRendererEvent, event: string, payload: unknown) => {
  for (const l of listeners.get(event) ?? []) l(payload);
});

contextBridge.exposeInMainWorld('kesBridge', {
  invoke: (method: string, input: unknown) => ipcRenderer.invoke(IPC_INVOKE, method, input),
  on: (event: string, listener: Listener) => {
    if (typeof listener !== 'function') throw new TypeError('listener must be a function');
    let set = listeners.get(event);
    if (!set) listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  },
});
