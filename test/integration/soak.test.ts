// The chaos soak (test/soak/soak.mjs), short: about 2 minutes of random faults against 50 servers with
// the built binary as PID 1, every invariant checked all along. `npm run soak -- --minutes 60` is the
// long run.

import { describe, expect, it } from "vitest";
import path from "node:path";
import { ROOT, run } from "./helpers";

interface SoakSummary {
  faults: number;
  faultsByKind: Record<string, number>;
  violations: number;
  violationList: { atS: number; what: string }[];
  controlRequests: number;
  zombieSamples: number;
  shutdownMs: number;
}

describe("chaos soak", () => {
  it(
    "two minutes of faults against 50 servers: no invariant violated",
    async () => {
      const result = await run(process.execPath, [path.join(ROOT, "test", "soak", "soak.mjs"), "--minutes", "2", "--json"], { timeoutMs: 5 * 60_000 });
      const summary = JSON.parse(result.stdout.trim().split("\n").at(-1)!) as SoakSummary;
      console.log(`soak: ${JSON.stringify(summary)}`);
      expect(summary.violationList).toEqual([]);
      expect(summary.violations).toBe(0);
      expect(result.code).toBe(0);
      // It did what it claims: faults of every kind, requests answered, /proc watched.
      expect(summary.faults).toBeGreaterThan(200);
      for (const kind of ["kill -9", "reload (SIGHUP)", "reload (control)", "orphan storm", "SIGHUP burst"])
        expect(summary.faultsByKind[kind]).toBeGreaterThan(0);
      expect(summary.controlRequests).toBeGreaterThan(100);
      expect(summary.zombieSamples).toBeGreaterThan(1000);
    },
    6 * 60_000,
  );
});
