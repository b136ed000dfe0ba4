// Runs in every test file: no init started by a test file outlives it, whatever the outcome.
// (After the file, not after each test: some files share one init across their tests.)
import { afterAll } from "vitest";
import { killStartedInits } from "./integration/helpers";

afterAll(() => killStartedInits());
