// The signals an init answers. Node delivers them on the event loop (libuv's own self-pipe), so a
// handler here may do anything. SIGCHLD is not among them: the addon's reaper owns it.
//
// As PID 1 the kernel drops every signal without a handler, so each one listed here must have one,
// and one with no meaning in the current mode is logged and ignored rather than left to kill us.

export const HANDLED_SIGNALS = [
  "SIGTERM",
  "SIGINT",
  "SIGHUP",
  "SIGQUIT",
  "SIGUSR1",
  "SIGUSR2",
  "SIGWINCH",
  "SIGPWR",
] as const satisfies readonly NodeJS.Signals[];

export type HandledSignal = (typeof HANDLED_SIGNALS)[number];

export function installSignalHandlers(onSignal: (signal: HandledSignal) => void): () => void {
  const handlers = HANDLED_SIGNALS.map((signal) => {
    const handler = () => onSignal(signal);
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  return () => {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  };
}
