// The hidden arguments of an in-place upgrade (runtime/reexec.ts), apart so that main.ts can look for
// them without loading the supervisor.

/** The new init's way in: `starter-init --resume-state-fd N`, N the fd of the state. */
export const RESUME_ARG = "--resume-state-fd";
/** The check the old init runs on a binary before it execs it: one JSON line (reexec.ts checkAnswer). */
export const CHECK_ARG = "--reexec-check";
