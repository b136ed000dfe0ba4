// Runs in every test file: no init started by a test outlives it, whatever the test's outcome.
import { afterEach } from "vitest";
import { killStartedInits } from "./integration/helpers";

afterEach(() => killStartedInits());
