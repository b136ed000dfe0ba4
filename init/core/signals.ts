// Signal numbers and names: a static table (os.constants.signals), no I/O.

import { constants } from "node:os";

const NAMES = new Map(Object.entries(constants.signals).map(([name, number]) => [number as number, name]));

/** "SIGKILL" for 9; "signal 99" for a number without a name. */
export function signalName(signal: number): string {
  return NAMES.get(signal) ?? `signal ${signal}`;
}
