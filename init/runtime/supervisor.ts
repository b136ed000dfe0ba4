// Placeholder until the supervisor runtime lands (issue 3).
import type { Logger } from "../log/logger";
import type { Invocation } from "../cli/args";
import type { Role } from "../pid1/environment";

export async function runSupervisor(log: Logger, _ctx: { role: Role; kernel: Map<string, string>; invocation: Extract<Invocation, { mode: "supervisor" }> }): Promise<void> {
  log.error("supervisor mode is not built yet");
}
export function printPlan(log: Logger, _invocation: Extract<Invocation, { mode: "plan" }>): number {
  log.error("plan is not built yet");
  return 1;
}
