// testcontainers reads these when it first talks to the engine: import this module before it.
// No Ryuk (its image cannot be pulled here: the tests remove what they start), and the engine's
// published ports are on this machine.
process.env.TESTCONTAINERS_RYUK_DISABLED = "true";
process.env.TESTCONTAINERS_HOST_OVERRIDE = "localhost";

/**
 * Tag of the images the tests build: STARTER_TEST_TAG lets two checkouts run their Docker tests on one
 * engine at the same time without building over each other's images.
 */
export const IMAGE_TAG = process.env.STARTER_TEST_TAG ?? "test";
