import { defineConfig } from "vitest/config";

// Integration tests run real processes as PID 1 of fresh namespaces on a 2-core machine: one file at
// a time keeps them from starving each other (timing is measured in benchmarks, never asserted).
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    pool: "forks",
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // The JSON report lets .ci/run print the plain "N passed, N failed" closing line.
    reporters: ["default", ["json", { outputFile: "build/test-results.json" }]],
    setupFiles: ["test/setup.ts"],
  },
});
