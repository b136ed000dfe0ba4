// testcontainers reads these when it first talks to the engine: import this module before it.
// No Ryuk (its image cannot be pulled here: the tests remove what they start), and the engine's
// published ports are on this machine.
process.env.TESTCONTAINERS_RYUK_DISABLED = "true";
process.env.TESTCONTAINERS_HOST_OVERRIDE = "localhost";

export {};
